"""The leaderless (Dynamo/Cassandra-style) coordinator: fan out, wait for R or W replies, time out.

One Coordinator object runs every operation of a simulation; each operation names the endpoint
that coordinates it (the client itself, or a node), so the quorum logic exists once.

Failover (``quorum.failover``) decides which replicas an attempt uses, from what its coordinator's
failure detector suspects: ``strict`` always the key's N replicas; ``sloppy`` the first N
unsuspected nodes of the key's ring order, a stand-in for a suspected owner carrying a hint for
it; ``shrink`` the unsuspected replicas only, with R and W cut to a majority of them (or, with
``quorum.shrink: drop``, by one per suspected replica).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from itertools import count

import simpy

from qsim.distributions import uniform_sampler
from qsim.model.clock import call_later
from qsim.model.leaderless.failover import shrunk_targets, sloppy_targets
from qsim.model.leaderless.hedging import Hedger
from qsim.model.leaderless.levels import level_targets
from qsim.model.leaderless.op import CLIENT, Op
from qsim.model.leaderless.quorums import QuorumChooser
from qsim.model.leaderless.readrepair import ReadRepair
from qsim.model.leaderless.ring import Ring
from qsim.model.leaderless.selection import Selector
from qsim.model.leaderless.tagged import TaggedReplies, tagged_replies
from qsim.model.network import (
    CLIENT_REQUEST,
    CLIENT_RESPONSE,
    READ_REQUEST,
    WRITE_REQUEST,
    Network,
)
from qsim.model.recorder import (
    COORDINATOR_CRASHED,
    NO_VERSION,
    OK,
    QUORUM_TIMEOUT,
    REQUEST_LOST,
    RESPONSE_LOST,
    Recorder,
)
from qsim.model.timeouts import Deadlines, FailureDetector
from qsim.rng import RandomStreams
from qsim.scenario.schema import Scenario
from qsim.scenario.systems import uses_system


class Coordinator(TaggedReplies):
    """Runs the quorum protocol for every operation and records each one when it ends."""

    # Slots: it has more attributes than Python 3.11 keeps in a shared-key instance dict (30),
    # and a slot is read faster than a key of an unshared dict (every operation reads dozens).
    # __dict__ holds the handlers that __init__ puts in place of methods.
    __slots__ = (
        "__dict__", "_alpha", "_backoff", "_choice", "_chooser", "_client_coordinates",
        "_client_endpoint", "_counting", "_counts", "_deadlines", "_detector", "_endpoint_region",
        "_env", "_ewma", "_extras", "_failover", "_first", "_hedger", "_ids", "_levels",
        "_local_nodes", "_mode", "_network", "_node_region", "_on_read", "_on_write", "_plain",
        "_read_all", "_read_repair", "_recorder", "_repairing", "_replicas", "_ring", "_shrink_drop",
        "_timeout", "_write_all", "clock_offset", "hedged", "on_idle", "outstanding", "selector",
        "tracer",
    )  # fmt: skip

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        network: Network,
        ring: Ring,
        replicas: list,
        recorder: Recorder,
        streams: RandomStreams,
        detector: FailureDetector | None = None,
    ):
        quorum = scenario.quorum
        self._env = env
        self._network = network
        self._ring = ring
        self._replicas = replicas
        self._recorder = recorder
        self._detector = detector
        self._read_all = quorum.read_fanout == "all"
        self._write_all = quorum.write_fanout == "all"
        self.selector = Selector(env, scenario, network, streams)
        self._counting = self.selector.counting
        learning_latency = self.selector.tracking and self.selector.strategy == "latency_ewma"
        self._ewma = self.selector.ewma if learning_latency else None
        self._alpha = self.selector.alpha
        self._mode = quorum.coordinator
        self._client_coordinates = quorum.coordinator == "client"
        self._failover = quorum.failover
        self._shrink_drop = quorum.shrink == "drop"
        self._timeout = quorum.timeout
        self._backoff = quorum.retry_backoff
        hooks = (detector.check, detector.settled) if detector is not None else ()
        self._deadlines = [Deadlines(env, self._expire, *hooks) for _ in range(quorum.retries + 1)]
        self._first = self._deadlines[0]  # first attempts
        self._repairing = scenario.repair.read_repair != "off"
        self._levels = {True: quorum.w if isinstance(quorum.w, str) else None,
                        False: quorum.r if isinstance(quorum.r, str) else None}  # fmt: skip
        if tagged_replies(scenario):
            self.on_write_ack, self.on_read_response = self._on_ack_tagged, self._on_read_tagged
        # Handlers of the requests to each replica, indexed by node, as Network.fanout takes them.
        self._on_write = [(replica.on_write,) for replica in replicas]
        self._on_read = [(replica.on_read,) for replica in replicas]
        self._node_region = [node.region for node in scenario.cluster.nodes]
        self._endpoint_region = network.endpoint_regions
        self._hedger = Hedger(quorum.hedge) if quorum.hedge else None
        if self._hedger is None and quorum.coordinator == "client":
            self._answer = self._finish  # nothing to observe, no response to send: the client has it
        self._read_repair = ReadRepair(scenario, network, replicas, self._answer) if self._repairing else None
        # Replies needed for a plain count, by write (0 for a per-region level: see op.need).
        self._counts = {
            kind: needed if isinstance(needed, int) else 0
            for kind, needed in ((True, quorum.w), (False, quorum.r))
        }
        # Quorums of a quorum system, drawn from its strategy (else r or w of a key's replicas).
        self._chooser = (
            QuorumChooser(scenario, network, ring, detector, streams) if uses_system(quorum) else None
        )
        # Anything beyond plain strict quorums, checked once per operation instead of one by one.
        self._plain = quorum.failover == "strict" and not any(self._levels.values()) and self._chooser is None
        self._extras = self._counting or self._hedger is not None
        self.hedged = 0  # extra requests sent by hedging
        self._choice = uniform_sampler(streams.generator("coordinator.choice"))
        regions = scenario.client_regions
        self._client_endpoint = [network.client_endpoint(region) for region in regions]
        nodes = scenario.cluster.nodes
        self._local_nodes = [[i for i, n in enumerate(nodes) if n.region == region] for region in regions]
        self.clock_offset = [0.0] * len(network.endpoint_regions)  # clock skew per endpoint, ms
        self.outstanding = 0
        self.on_idle: Callable[[], None] | None = None
        self.tracer = None  # set when messages are traced
        self._ids = count()  # operation ids, from 0

    # --- issuing -------------------------------------------------------------------------------

    def submit(self, client: int, write: bool, key: int, on_done: Callable | None = None) -> Op:
        """Start an operation now; ``on_done(op)`` is called when the client has its outcome."""
        # env._now, not env.now: a property call costs as much as the rest of a line here.
        op = Op(next(self._ids), client, write, key, self._env._now, self._counts[write], on_done)
        self.outstanding += 1
        self._first.add(op, op.start + self._timeout)
        if self._client_coordinates:  # _dispatch, inlined for the common case
            op.coordinator = CLIENT
            op.coordinator_endpoint = self._client_endpoint[client]
            self._begin(op)
        else:
            self._dispatch(op)
        return op

    def _dispatch(self, op: Op) -> None:
        node = op.coordinator = CLIENT if self._client_coordinates else self._pick_coordinator(op)
        if node == CLIENT:
            op.coordinator_endpoint = self._client_endpoint[op.client]
            self._begin(op)
        else:
            op.coordinator_endpoint = node
            self._network.send(
                self._client_endpoint[op.client], node, CLIENT_REQUEST, self._on_request, op, None
            )

    def _pick_coordinator(self, op: Op) -> int:
        mode = self._mode
        if mode == "random":
            return int(self._choice() * len(self._replicas))
        choices = self._local_nodes[op.client] if mode == "local" else self._ring.replicas(op.key)
        return choices[int(self._choice() * len(choices))]

    def _on_request(self, message) -> None:
        """The client's request reached its coordinator node."""
        self._begin(message.op)

    def _begin(self, op: Op) -> None:
        if op.done:
            return
        op.arrived = True
        op.begun = self._env._now
        src = op.coordinator_endpoint
        write = op.write
        fan_all = self._write_all if write else self._read_all
        hints = None
        if self._plain:
            targets = op.pool = self._ring.replicas(op.key)
            if not fan_all:
                targets = self._select(src, targets, op.needed, write)
        else:
            targets, hints = self._failover_targets(op, src, fan_all)
        op.targets = targets
        if self._extras:
            self._begin_extras(op, targets, fan_all)
        if not write:
            if self._repairing:
                op.responses = []
            self._network.fanout(src, targets, READ_REQUEST, self._on_read, op, None)
            return
        if op.ts != op.ts:  # NaN: no earlier attempt began, so this one stamps the version
            op.ts = op.begun + self.clock_offset[src]
        version = (op.ts, op.client, op.id)
        if hints:
            self._send_hinted(op, src, targets, version, hints)
        else:
            self._network.fanout(src, targets, WRITE_REQUEST, self._on_write, op, version)

    def _failover_targets(self, op: Op, src: int, fan_all: bool) -> tuple[list[int], dict[int, int] | None]:
        """The targets of an attempt beyond plain strict quorums, and the stand-ins' hints (sloppy)."""
        if self._chooser is not None:
            return self._chooser.targets(op, src)
        if self._failover == "strict":
            replicas = op.pool = self._ring.replicas(op.key)
            level, region = self._levels[op.write], self._endpoint_region[src]
            select = partial(self._select, src)
            return level_targets(op, level, region, replicas, self._node_region, fan_all, select), None
        if self._failover == "sloppy":
            return sloppy_targets(op, src, self._ring, self._detector, fan_all)
        shrunk = shrunk_targets(
            op, src, self._ring, self._detector, self.selector, fan_all, self._shrink_drop
        )
        return shrunk, None

    def _send_hinted(self, op: Op, src: int, targets, version: tuple, hints: dict[int, int]) -> None:
        """Send a write to its targets, and to each stand-in the owner it holds a hint for."""
        for node in targets:
            replica = self._replicas[node]
            if node in hints:
                self._network.send(
                    src, node, WRITE_REQUEST, replica.on_hinted_write, op, (version, hints[node])
                )
            else:
                self._network.send(src, node, WRITE_REQUEST, replica.on_write, op, version)

    # --- choosing replicas ---------------------------------------------------------------------

    def _begin_extras(self, op: Op, targets, fan_all: bool) -> None:
        """Count the requests in flight, and schedule a hedge, for the strategies that want them."""
        if self._counting:
            op.pending = set()
            for node in targets:
                self.selector.sent(op, node)
        if self._hedger is not None and not fan_all and (self._hedger.writes or not op.write):
            self._schedule_hedge(op)

    def _select(self, src: int, replicas, count: int, write: bool = False) -> list[int]:
        """Return ``count`` replicas, unsuspected ones first, each group ordered by the strategy."""
        detector, pick = self._detector, self.selector.pick
        if detector is not None and detector.suspects_any(src):
            trusted = [r for r in replicas if not detector.suspects(src, r)]
            if len(trusted) < len(replicas):
                rest = [r for r in replicas if r not in trusted]
                return (pick(src, trusted, count, write) + pick(src, rest, count - len(trusted), write))[
                    :count
                ]
        return pick(src, replicas, count, write)

    # --- replies -------------------------------------------------------------------------------

    # Handlers of replies (qsim.model.network.Message): each reads message.op and message.arg.

    def on_write_ack(self, message) -> None:
        """Count a write acknowledgement; the write commits at the W-th."""
        op = message.op
        if op.reached or op.done:
            return
        op.replies += 1
        if op.replies == op.needed:
            op.reached = True
            if op.commit != op.commit:  # NaN: the first attempt to reach W acks commits the write
                op.commit = self._env._now
            self._answer(op)

    def on_read_response(self, message) -> None:
        """Count a read response, ``arg`` the replica's version; the read completes at the R-th."""
        op = message.op
        if op.reached or op.done:
            return
        version = message.arg
        op.replies += 1
        if version is not None and (op.best is None or version > op.best):
            op.best = version
        if op.replies == op.needed:
            op.reached = True
            self._answer(op)

    def on_repair_ack(self, message) -> None:
        """Count a read-repair acknowledgement (foreground and write-back reads wait for them)."""
        self._read_repair.on_ack(message)

    # --- hedged requests -----------------------------------------------------------------------

    def _schedule_hedge(self, op: Op) -> None:
        after = self._hedger.delay(op.write)
        if after < math.inf:
            call_later(self._env, after, self._send_hedge, op)

    def _send_hedge(self, event) -> None:
        """Still short of its quorum: ask the best replica not asked yet."""
        op = event.value
        if op.reached or op.done or op.orphaned:
            return
        src = op.coordinator_endpoint
        spare = [node for node in op.pool if node not in op.targets]
        if op.need is not None:
            spare = [node for node in spare if op.need.get(self._node_region[node], 0) > 0]
        chosen = self._select(src, spare, 1, op.write)
        if not chosen:
            return
        node = chosen[0]
        op.targets = (*op.targets, node)
        op.hedged = (node, self._env.now)
        self.hedged += 1
        if self._counting:
            self.selector.sent(op, node)
        replica = self._replicas[node]
        if op.write:
            self._network.send(src, node, WRITE_REQUEST, replica.on_write, op, (op.ts, op.client, op.id))
        else:
            self._network.send(src, node, READ_REQUEST, replica.on_read, op, None)

    def _answer(self, op: Op) -> None:
        if self._hedger is not None:
            self._hedger.observe(op.write, self._env.now - op.begun)
        if op.coordinator == CLIENT:
            self._finish(op)
        else:
            self._network.send(
                op.coordinator, self._client_endpoint[op.client], CLIENT_RESPONSE, self._on_response, op, None
            )

    def _on_response(self, message) -> None:
        """The coordinator node's answer reached the client (unless the client gave up first)."""
        if not message.op.done:
            self._finish(message.op)

    # --- outcomes ------------------------------------------------------------------------------

    def _finish(self, op: Op) -> None:
        """The client has its answer (every caller checked that the op is not done yet)."""
        op.done = True
        version = op.id if op.write else op.best[2] if op.best is not None else NO_VERSION
        self._recorder.record(op, self._env._now, OK, version)
        if self._counting or self.tracer is not None:
            self._ended(op)
            return
        self.outstanding -= 1  # _ended, inlined for the common case
        if op.on_done is not None:
            op.on_done(op)
        if self.outstanding == 0 and self.on_idle is not None:
            self.on_idle()

    def _expire(self, op: Op) -> None:
        op.done = True
        if op.attempt + 1 < len(self._deadlines):
            retry = op.retry(self._counts[op.write])
            backoff = self._backoff * 2**op.attempt
            self._deadlines[retry.attempt].add(retry, self._env.now + backoff + self._timeout)
            call_later(self._env, backoff, self._redispatch, retry)
            return
        if op.orphaned:
            error = COORDINATOR_CRASHED
        else:
            error = RESPONSE_LOST if op.reached else QUORUM_TIMEOUT if op.arrived else REQUEST_LOST
        self._recorder.record(op, self._env.now, error, NO_VERSION)
        self._ended(op)

    def _redispatch(self, event) -> None:
        op = event.value
        if not op.done:
            self._dispatch(op)

    def _ended(self, op: Op) -> None:
        self.outstanding -= 1
        if self._counting and op.arrived:
            self.selector.settle(op)
        if self.tracer is not None:
            self.tracer.ended(op)
        if op.on_done is not None:
            op.on_done(op)
        if self.outstanding == 0 and self.on_idle is not None:
            self.on_idle()

    def summary(self) -> dict:
        """The protocol's own section of summary.json: hedged requests, and the quorum system's load."""
        section = {"hedging": {"extra_requests": self.hedged}}
        if self._chooser is not None:
            section["quorum_system"] = self._chooser.summary()
        return section

    def settle(self) -> None:
        """The run is over: nothing to do (replicas apply what they receive at once)."""

    def recovered(self, node: int, amnesia: bool) -> None:
        """A node is back: nothing to do here (its replica keeps or lost its store on its own)."""

    def orphan(self, node: int) -> None:
        """Forget the operations ``node`` coordinates (it crashed): their clients will time out."""
        for deadlines in self._deadlines:
            for op in deadlines.pending():
                if op.coordinator == node and not op.done:
                    op.orphaned = op.reached = True
