"""The leader protocol as the rest of the model sees it: clients, their attempts, and outcomes.

A client sends each operation to the node it believes leads (at first a random node; follower
reads go to a random node each attempt). A node that is not the leader answers with a redirect
naming the leader it knows; the client follows it at once (after ``quorum.retry_backoff``, at
least 1 ms, once an attempt has followed more redirects than there are nodes: stale leaders may
point in a circle), or, when the node knows none, tries a random other node after that backoff.
An attempt that times out (``quorum.timeout``) is retried on another node, up to
``quorum.retries`` times, then recorded as failed.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

import simpy

from qsim.distributions import spec_sampler, uniform_sampler
from qsim.model.clock import call_later
from qsim.model.leader.election import LEADER
from qsim.model.leader.metrics import LeaderMetrics
from qsim.model.leader.node import Node
from qsim.model.leader.op import Attempt, Op
from qsim.model.leader.replication import IN_FLIGHT
from qsim.model.network import CLIENT_REQUEST, CLIENT_RESPONSE, Network
from qsim.model.recorder import COORDINATOR_CRASHED, NO_VERSION, OK, QUORUM_TIMEOUT, REQUEST_LOST, Recorder
from qsim.model.timeouts import Deadlines
from qsim.rng import RandomStreams
from qsim.scenario.faults import ClockSkew
from qsim.scenario.schema import Scenario

LEASE_DRAWS = 1000  # the lease is the smallest of this many election-timeout draws


def _at_least(sampler: Callable[[], float], floor: float) -> Callable[[], float]:
    """Draws of ``sampler``, none below ``floor`` (an election timeout is never shorter than the lease)."""
    return lambda: max(sampler(), floor)


class Committed:
    """The (term, op id) of every committed log index, in two arrays (16 bytes an entry)."""

    def __init__(self):
        self.terms = array("q", [0])  # index 0: the sentinel
        self.ops = array("q", [-1])  # -1: a no-op entry

    def __len__(self) -> int:
        return len(self.terms)

    def __getitem__(self, index: int) -> tuple[int, int | None]:
        op = self.ops[index]
        return self.terms[index], op if op >= 0 else None

    def agrees(self, index: int, term: int, op: int) -> bool:
        """Record index's entry if new; return False if another entry was committed there before."""
        if index < len(self.terms):
            return self.terms[index] == term and self.ops[index] == op
        self.terms.append(term)
        self.ops.append(op)
        return True


class LeaderProtocol:
    """Runs the clients' side of the leader protocol, and holds what the nodes share."""

    # Slots: it has more attributes than Python 3.11 keeps in a shared-key instance dict (30),
    # and a slot is read faster than a key of an unshared dict (every operation reads dozens).
    # __dict__ takes any attribute not listed (none in a run: tests/test_leader_perf.py).
    __slots__ = (
        "__dict__", "_answered", "_answers", "_backoff", "_believed", "_choice", "_client_endpoint",
        "_deadlines", "_next_id", "_on_client", "_recorder", "_reply", "_timeout", "ack_callbacks",
        "append_handler", "apply_span", "check_quorum", "clock_offset", "commit_conflicts",
        "committed", "election_timeout", "env", "heartbeat_ms", "lease_followers", "lease_ms",
        "max_batch", "metrics", "names", "network", "nodes", "on_idle", "others", "outstanding",
        "pre_vote", "q1", "q2", "read_lease_ms", "read_mode", "skewed", "snapshot_every", "tracer",
        "unique_terms", "window",
    )  # fmt: skip

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        network: Network,
        replicas: list,
        recorder: Recorder,
        streams: RandomStreams,
    ):
        quorum, settings = scenario.quorum, scenario.quorum.leader
        count = len(replicas)
        self.env = env
        self.network = network
        self._recorder = recorder
        self.q1, self.q2 = settings.quorums(count)
        self.unique_terms = 2 * self.q1 <= count  # election quorums need not meet: terms per candidate
        self.heartbeat_ms = settings.heartbeat
        self.pre_vote = settings.pre_vote
        self.check_quorum = settings.check_quorum
        self.read_mode = settings.read_mode
        self.max_batch = settings.max_batch
        self.snapshot_every = settings.snapshot_every
        # A follower applies what it learns is committed once this many entries past its log's
        # base (where it would compact), or at once when it answers reads: see Node.apply.
        self.apply_span = 0 if self.read_mode == "follower" else 2 * settings.snapshot_every
        self.window = IN_FLIGHT * settings.max_batch  # entries a follower may have unacknowledged
        self.names = names = [node.name for node in scenario.cluster.nodes]
        lease_rng = streams.generator("leader.lease")
        self.lease_ms = float(settings.election_timeout.sample(lease_rng, LEASE_DRAWS).min())
        self.election_timeout = [
            _at_least(spec_sampler(settings.election_timeout, streams.generator(f"leader.election.{name}")),
                      self.lease_ms)
            for name in names
        ]  # fmt: skip
        self.read_lease_ms = settings.lease if settings.lease is not None else self.lease_ms
        self.lease_followers = count - self.q1  # who must have heard a leader for no other to win
        self.others = [[o for o in range(count) if o != i] for i in range(count)]
        self.metrics = LeaderMetrics(
            lambda node: self.nodes[node].last_quorum_ms(),
            lambda node: self.nodes[node].sent + network.received(node),
            count,
        )
        self.committed = Committed()  # (term, op id) of every committed index
        self.commit_conflicts = 0  # a committed index later committed with another entry
        self.nodes = [Node(i, self, replica) for i, replica in enumerate(replicas)]
        for node in self.nodes:
            if node.replica.queued:
                node.queue_messages()
        self.append_handler = [node.on_append for node in self.nodes]
        self._reply = network.reply
        self._answers = [network.row(CLIENT_RESPONSE, node) for node in range(count)]  # reply() rows
        self._answered = (self._on_answer,)  # network.reply's form
        self.ack_callbacks = [(node.on_ack,) for node in self.nodes]  # network.reply's form
        self._choice = uniform_sampler(streams.generator("leader.clients"))
        self._client_endpoint = [network.client_endpoint(r) for r in scenario.client_regions]
        self._believed = [self._random_node() for _ in self._client_endpoint]
        self._on_client = [node.on_client for node in self.nodes]
        self._timeout = quorum.timeout
        self._backoff = max(quorum.retry_backoff, 1.0)
        self._deadlines = [Deadlines(env, self._expire) for _ in range(quorum.retries + 1)]
        self.clock_offset = [0.0] * len(network.endpoint_regions)  # set by the clock-skew fault
        self.skewed = any(isinstance(fault, ClockSkew) for fault in scenario.faults)
        self.outstanding = 0
        self.on_idle: Callable[[], None] | None = None
        self.tracer = None
        self._next_id = 0

    def call_later(self, delay: float, callback, value=None) -> None:
        """Call ``callback(event)`` after ``delay`` ms (the nodes' timers)."""
        call_later(self.env, delay, callback, value)

    def start(self) -> None:
        """Start every node's election timer (a background process of the model)."""
        for node in self.nodes:
            node.start()

    def _random_node(self, other_than: int = -1) -> int:
        count = len(self.others)
        if count == 1:
            return 0
        node = int(self._choice() * (count - 1 if other_than >= 0 else count))
        return node + 1 if 0 <= other_than <= node else node

    # --- clients -------------------------------------------------------------------------------

    def submit(self, client: int, write: bool, key: int, on_done: Callable | None = None) -> Op:
        """Start an operation now; ``on_done(op)`` is called when the client has its outcome."""
        op = Op(self._next_id, client, write, key, self.env.now, on_done)
        self._next_id += 1
        self.outstanding += 1
        self._attempt(op)
        return op

    def _attempt(self, op: Op) -> None:
        if not op.write and self.read_mode == "follower":
            node = self._random_node()
        else:
            node = self._believed[op.client]
        attempt = Attempt(op, node)
        self._deadlines[op.attempt].add(attempt, self.env._now + self._timeout)
        op.coordinator = node
        endpoint = self._client_endpoint[op.client]
        self.network.send(endpoint, node, CLIENT_REQUEST, self._on_client[node], attempt, None)

    def _send(self, attempt: Attempt) -> None:
        attempt.op.coordinator = attempt.node
        endpoint = self._client_endpoint[attempt.op.client]
        self.network.send(
            endpoint, attempt.node, CLIENT_REQUEST, self._on_client[attempt.node], attempt, None
        )

    def answer(self, node: int, attempt: Attempt, version: tuple | None) -> None:
        """``node`` answers the client: ``version`` written, or read (None: the initial value).

        The answer travels in the request's own message (delivered, so SimPy is done with it).
        """
        endpoint = self._client_endpoint[attempt.op.client]
        self.nodes[node].sent += 1
        self._reply(attempt.message, self._answers[node], endpoint, self._answered, (node, version))

    def redirect(self, node: int, attempt: Attempt, leader: int | None) -> None:
        """``node`` is not the leader: it names the one it knows (None: none)."""
        endpoint = self._client_endpoint[attempt.op.client]
        self.nodes[node].sent += 1
        self.network.send(node, endpoint, CLIENT_RESPONSE, self._on_redirect, attempt, leader)

    def _on_answer(self, message) -> None:
        attempt = message.op
        op = attempt.op
        if attempt.done or op.done:
            return
        node, version = message.arg
        attempt.done = op.done = True
        attempt.message = None  # the message holds the attempt: no cycle left for the collector
        op.replies, op.coordinator = 1, node
        if op.write:
            self._believed[op.client] = node
            metrics = self.metrics
            if metrics.awaiting:
                metrics.write_acknowledged(self.env._now)
            metrics.last_write_ms = self.env._now
        elif self.read_mode != "follower":
            self._believed[op.client] = node
        self._recorder.record(op, self.env.now, OK, version[2] if version is not None else NO_VERSION)
        self._ended(op)

    def _on_redirect(self, message) -> None:
        attempt, leader = message.op, message.arg
        if attempt.done:
            return
        attempt.redirects += 1
        if leader is not None and leader != attempt.node:
            attempt.node = self._believed[attempt.op.client] = leader
            if attempt.redirects <= len(self.nodes):
                self._send(attempt)
            else:  # going round in circles: wait for the election to settle
                call_later(self.env, self._backoff, self._resend, attempt)
        else:
            attempt.node = self._believed[attempt.op.client] = self._random_node(attempt.node)
            call_later(self.env, self._backoff, self._resend, attempt)

    def _resend(self, event) -> None:
        if not event.value.done:
            self._send(event.value)

    def _expire(self, attempt: Attempt) -> None:
        attempt.done = True
        op = attempt.op
        if op.attempt + 1 < len(self._deadlines):
            op.attempt += 1
            self._believed[op.client] = self._random_node(attempt.node)
            self._attempt(op)
            return
        op.done = True
        error = (
            COORDINATOR_CRASHED if attempt.orphaned else QUORUM_TIMEOUT if attempt.arrived else REQUEST_LOST
        )
        self._recorder.record(op, self.env.now, error, NO_VERSION)
        self._ended(op)

    def _ended(self, op: Op) -> None:
        self.outstanding -= 1
        if self.tracer is not None:
            self.tracer.ended(op)
        if op.on_done is not None:
            op.on_done(op)
        if self.outstanding == 0 and self.on_idle is not None:
            self.on_idle()

    # --- the model's interface -----------------------------------------------------------------

    def learned_commit(self, log: list, base: int, old: int, new: int, now: float) -> None:
        """A leader learned at ``now`` that its log (``log[0]`` is index ``base``) committed to ``new``.

        From ``old`` + 1: a write committed first here has its commit time and timestamp (its
        index); each entry is kept, and a conflict with what was committed at its index before is
        counted.
        """
        committed = self.committed
        terms, ops = committed.terms, committed.ops
        for index in range(old + 1, new + 1):
            term, op = log[index - base]
            if op is None:
                op_id = -1
            else:
                op_id = op.id
                if op.write and op.commit != op.commit:  # NaN: not committed anywhere before
                    op.commit = now
                    op.ts = float(index)
            if index == len(terms):  # the common case: committed for the first time
                terms.append(term)
                ops.append(op_id)
            else:
                self.commit_conflicts += not committed.agrees(index, term, op_id)

    def orphan(self, node: int) -> None:
        """``node`` crashed: it stops, and the attempts it was serving will time out."""
        self.nodes[node].crash()
        for deadlines in self._deadlines:
            for attempt in deadlines.pending():
                if attempt.node == node and not attempt.done:
                    attempt.orphaned = True

    def leading(self) -> int | None:
        """The node that leads now (of the highest term, if two think they lead), or None."""
        leaders = [node for node in self.nodes if node.role == LEADER]
        return max(leaders, key=lambda node: node.term).index if leaders else None

    def recovered(self, node: int, amnesia: bool) -> None:
        """``node`` is back (its replica's store emptied first if ``amnesia``)."""
        self.nodes[node].recover(amnesia)

    def settle(self) -> None:
        """Apply every committed entry that a follower has not applied yet (the run is over)."""
        for node in self.nodes:
            node.apply()

    def summary(self) -> dict:
        """The ``leader`` section of summary.json."""
        section = self.metrics.summary(self.env.now, self.names)
        section["lease_reads"] = sum(node.lease_reads for node in self.nodes)
        section["snapshots_sent"] = sum(node.snapshots_sent for node in self.nodes)
        section["commit_conflicts"] = self.commit_conflicts
        section["committed_entries"] = len(self.committed) - 1
        return {"leader": section}
