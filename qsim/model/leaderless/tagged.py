"""Replies that say which replica sent them, and what the coordinator does with that.

A reply carries its sender when read repair needs the versions by replica, when a learning
replica selection scores each replica, when a per-region level counts replies by region, or when
a quorum system's attempt completes once the nodes that answered hold a quorum
(:func:`tagged_replies`). Plain strict quorums take untagged replies, counted by number only
(:meth:`qsim.model.leaderless.coordinator.Coordinator.on_write_ack`).
"""

from __future__ import annotations

from qsim.model.leaderless.levels import count_in_region
from qsim.model.leaderless.op import Op, newer
from qsim.model.leaderless.quorums import QuorumChooser, counts_repliers
from qsim.model.leaderless.selection import TRACKING, selection_matters
from qsim.scenario.schema import Scenario
from qsim.scenario.systems import uses_system


def tagged_replies(scenario: Scenario) -> bool:
    """Whether replies must say which replica sent them (repair, learning selection, region levels,
    a quorum system's attempts that complete when the repliers hold a quorum)."""
    quorum = scenario.quorum
    return (
        scenario.repair.read_repair != "off"
        or (uses_system(quorum) and counts_repliers(quorum))
        or (quorum.replica_selection in TRACKING and selection_matters(scenario))
        or isinstance(quorum.r, str)
        or isinstance(quorum.w, str)
    )


class TaggedReplies:
    """The coordinator's handlers of tagged replies (a mixin of
    :class:`~qsim.model.leaderless.coordinator.Coordinator`, whose state they read: ``_env``,
    ``_ewma``, ``_alpha``, ``_counting``, ``selector``, ``_node_region``, ``_read_repair`` and
    ``_answer``)."""

    __slots__ = ()  # the coordinator keeps its attributes in slots

    def _counted(self, op: Op, node: int) -> bool:
        """Count a reply from ``node``; return True when it completes the quorum."""
        need = op.need
        if need is None:
            op.replies += 1
            return op.replies == op.needed
        if type(need) is dict:
            return count_in_region(op, self._node_region[node])
        return QuorumChooser.heard(op, node)

    def _learn(self, op: Op, node: int) -> None:
        """What a reply teaches the selector: a response time, or one request fewer in flight."""
        if self._ewma is not None:  # every request of an attempt leaves at op.begun, a hedge later
            sent_at = op.hedged[1] if op.hedged is not None and op.hedged[0] == node else op.begun
            rtt = self._env.now - sent_at
            scores = self._ewma[op.coordinator_endpoint]
            old = scores[node]
            scores[node] = rtt if old == 0.0 else old + self._alpha * (rtt - old)
        elif self._counting:
            self.selector.replied(op, node)

    def _on_ack_tagged(self, message) -> None:
        """Count a write acknowledgement whose ``arg`` says which replica sent it."""
        op, node = message.op, message.arg
        self._learn(op, node)
        if op.reached or op.done:
            return
        if self._counted(op, node):
            op.reached = True
            if op.commit != op.commit:
                op.commit = self._env.now
            self._answer(op)

    def _on_read_tagged(self, message) -> None:
        """Count a read response that says which replica sent it; read repair sees it too, if on.

        Responses after the quorum (until the coordinator forgets the read) go to read repair only.
        """
        op, (version, node) = message.op, message.arg
        self._learn(op, node)
        if op.orphaned:
            return
        repair = self._read_repair
        if op.reached or op.done:
            if repair is not None:
                repair.late(op, node, version)
            return
        if repair is not None:
            op.responses.append((node, version))
        if newer(version, op.best):
            op.best = version
        if not self._counted(op, node):
            return
        op.reached = True
        if repair is None:
            self._answer(op)
        else:
            repair.at_quorum(op)
