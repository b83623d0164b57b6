"""Read repair: what a read does, once it has its R responses, about the replicas it found behind.

``repair.read_repair`` picks the mode:

- ``background``: every responder that answered with an older version (or none) is sent the
  newest one (``read_repair``), and the read answers at once.
- ``foreground``: the same, but the read answers when every repair is acknowledged.
- ``write_back`` (ABD: Attiya, Bar-Noy and Dolev 1995): the read answers only once W replicas are
  known to hold the version it returns (or a newer one). Responders that answered with it are
  holders; if fewer than W, every other replica of the attempt's pool (the key's N replicas, or
  those its failover mode chose) gets the version with an ack request, and each acknowledgement,
  or late response at least as new, adds a holder. Reads whose responses hold no version answer
  at once. With R + W > N (and no clock skew) each key is then a linearizable register.

In every mode the responses that arrive after the quorum (until the coordinator forgets the read)
are compared too: one behind the newest version seen is repaired, and one newer than everything
seen means every earlier responder was behind it. The read's answer stays what it had at its
quorum. A read that timed out before its quorum repairs nothing.

Bookkeeping on the read's :class:`~qsim.model.leaderless.op.Op`: ``responses`` lists (replica, version) per
response, and for a write-back read per acknowledgement too (with the version written back);
``repairs`` counts what the read still waits for: acknowledgements (foreground) or holders
(write_back: 0 once answered, :data:`NO_WRITE_BACK` if its responses had W holders).
"""

from __future__ import annotations

from collections.abc import Callable

from qsim.model.leaderless.op import Op, newer
from qsim.model.network import READ_REPAIR, Network
from qsim.scenario.schema import Scenario

NO_WRITE_BACK = -1  # op.repairs of a write-back read whose responses already had W holders


class ReadRepair:
    """Repairs the replicas each read finds behind, in the scenario's ``read_repair`` mode."""

    def __init__(self, scenario: Scenario, network: Network, replicas: list, answer: Callable[[Op], None]):
        quorum = scenario.quorum
        self._mode = scenario.repair.read_repair
        self._write_back = self._mode == "write_back"
        self._network = network
        self._replicas = replicas
        self._answer = answer
        self._w, self._n = quorum.w, quorum.n  # write_back refuses per-region levels: w is a count
        self._shrink = quorum.failover == "shrink"
        self._drop = quorum.shrink == "drop"

    def at_quorum(self, op: Op) -> None:
        """The read has its R responses (``op.responses``, ``op.best``): repair, answer now or later."""
        op.newest = best = op.best
        behind = [n for n, v in op.responses if newer(best, v)]
        if self._write_back:
            self._start_write_back(op, behind)
            return
        foreground = self._mode == "foreground" and bool(behind)
        op.repairs = len(behind)
        for node in behind:
            self._send(op, node, best, ack=foreground)
        if not foreground:
            self._answer(op)

    def _start_write_back(self, op: Op, behind: list[int]) -> None:
        """Send the version to every replica not known to hold it, unless W already do (or it is none)."""
        best = op.best
        holders = {n for n, v in op.responses if v == best}
        missing = self._write_quorum(op) - len(holders)
        if best is not None and missing > 0:
            op.repairs = missing
            for node in op.pool:
                if node not in holders:
                    self._send(op, node, best, ack=True)
            return
        op.repairs = NO_WRITE_BACK
        for node in behind:
            self._send(op, node, best, ack=False)
        self._answer(op)

    def _write_quorum(self, op: Op) -> int:
        """The acknowledgements a write from this coordinator would need now (W, or W shrunk).

        The rule of :func:`qsim.model.leaderless.failover.shrunk_targets`, applied to W.
        """
        failed = self._n - len(op.pool)
        if not self._shrink or failed <= 0:
            return self._w
        return max(1, self._w - failed) if self._drop else min(self._w, len(op.pool) // 2 + 1)

    def late(self, op: Op, node: int, version: tuple | None) -> None:
        """A response after the quorum (or after the read gave up): repair what it shows behind."""
        if not op.reached:
            return  # the attempt timed out before its quorum: it has no newest version to spread
        waiting = self._write_back and op.repairs > 0 and not op.done
        if waiting and not newer(op.best, version) and not _holds(op, node):
            self._count_holder(op)
        if newer(version, op.newest):
            op.newest = version
            for n, held in _newest_by_node(op).items():
                if n != node and newer(version, held):
                    self._send(op, n, version, ack=False)
        elif newer(op.newest, version) and not self._written_back(op):
            self._send(op, node, op.newest, ack=False)
        op.responses.append((node, version))

    def _written_back(self, op: Op) -> bool:
        """Whether the write-back already sent ``op.newest`` to every replica that had not answered."""
        return self._write_back and op.repairs != NO_WRITE_BACK and op.newest == op.best

    def on_ack(self, message) -> None:
        """Count a repair's acknowledgement (``arg``: the replica) for a read that waits for them."""
        op = message.op
        if op.done or op.orphaned:
            return
        if not self._write_back:
            op.repairs -= 1
            if op.repairs == 0:
                self._answer(op)
        elif op.repairs > 0 and not _holds(op, message.arg):
            op.responses.append((message.arg, op.best))
            self._count_holder(op)

    def _count_holder(self, op: Op) -> None:
        """One more replica holds the write-back read's version: answer at the W-th."""
        op.repairs -= 1
        if op.repairs == 0:
            self._answer(op)

    def _send(self, op: Op, node: int, version: tuple, ack: bool) -> None:
        replica = self._replicas[node]
        self._network.send(op.coordinator_endpoint, node, READ_REPAIR, replica.on_repair, op, (version, ack))


def _holds(op: Op, node: int) -> bool:
    """Whether ``node`` is known to hold the read's version or a newer one."""
    best = op.best
    return any(n == node and not newer(best, v) for n, v in op.responses)


def _newest_by_node(op: Op) -> dict[int, tuple | None]:
    """The newest version each responder is known to hold, in order of first response."""
    known: dict[int, tuple | None] = {}
    for node, version in op.responses:
        if node not in known or newer(version, known[node]):
            known[node] = version
    return known
