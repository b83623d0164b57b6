"""The leaderless (Dynamo/Cassandra-style) coordinator: fan out, wait for R or W replies, time out.

One Coordinator object runs every operation of a simulation; each operation names the endpoint
that coordinates it (the client itself, or a node), so the quorum logic exists once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import simpy

from qsim.distributions import uniform_sampler
from qsim.model.clock import call_later
from qsim.model.network import CLIENT_REQUEST, CLIENT_RESPONSE, READ_REQUEST, WRITE_REQUEST, Network
from qsim.model.recorder import NO_VERSION, OK, QUORUM_TIMEOUT, REQUEST_LOST, RESPONSE_LOST, Recorder
from qsim.model.ring import Ring
from qsim.rng import RandomStreams
from qsim.scenario.schema import Scenario

CLIENT = -1  # the coordinator column's value when the client coordinates its own operation
_NAN = float("nan")


class Op:
    """The in-flight state of one operation."""

    __slots__ = (
        "arrived",
        "best",
        "client",
        "commit",
        "coordinator",
        "coordinator_endpoint",
        "deadline",
        "done",
        "id",
        "key",
        "needed",
        "on_done",
        "reached",
        "replies",
        "start",
        "ts",
        "write",
    )

    def __init__(self, op_id: int, client: int, write: bool, key: int, start: float, needed: int, on_done):
        self.id = op_id
        self.client = client
        self.write = write
        self.key = key
        self.start = start
        self.needed = needed
        self.on_done = on_done
        self.replies = 0
        self.best = None
        self.commit = self.ts = _NAN
        self.arrived = self.reached = self.done = False


class Coordinator:
    """Runs the quorum protocol for every operation and records each one when it ends."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        network: Network,
        ring: Ring,
        replicas: list,
        recorder: Recorder,
        streams: RandomStreams,
    ):
        quorum = scenario.quorum
        self._env = env
        self._network = network
        self._ring = ring
        self._replicas = replicas
        self._recorder = recorder
        self._r, self._w = quorum.r, quorum.w
        self._read_all = quorum.read_fanout == "all"
        self._write_all = quorum.write_fanout == "all"
        self._random_selection = quorum.replica_selection == "random"
        self._mode = quorum.coordinator
        self._client_coordinates = quorum.coordinator == "client"
        self._choice = uniform_sampler(streams.generator("coordinator.choice"))
        self._selection = uniform_sampler(streams.generator("coordinator.selection"))
        regions = scenario.client_regions
        self._client_endpoint = [network.client_endpoint(region) for region in regions]
        nodes = scenario.cluster.nodes
        self._local_nodes = [[i for i, n in enumerate(nodes) if n.region == region] for region in regions]
        self._deadlines = _Deadlines(env, quorum.timeout, self._expire)
        self._next_id = 0

    def submit(self, client: int, write: bool, key: int, on_done: Callable | None = None) -> Op:
        """Start an operation now; ``on_done(op)`` is called when the client has its outcome."""
        op = Op(self._next_id, client, write, key, self._env.now, self._w if write else self._r, on_done)
        self._next_id += 1
        self._deadlines.add(op)
        node = op.coordinator = CLIENT if self._client_coordinates else self._pick_coordinator(op)
        if node == CLIENT:
            op.coordinator_endpoint = self._client_endpoint[client]
            self._begin(op)
        else:
            op.coordinator_endpoint = node
            self._network.send(self._client_endpoint[client], node, CLIENT_REQUEST, self._begin, op, None)
        return op

    def _pick_coordinator(self, op: Op) -> int:
        mode = self._mode
        if mode == "random":
            return int(self._choice() * len(self._replicas))
        choices = self._local_nodes[op.client] if mode == "local" else self._ring.replicas(op.key)
        return choices[int(self._choice() * len(choices))]

    def _begin(self, op: Op, _=None) -> None:
        if op.done:
            return
        op.arrived = True
        replicas = self._ring.replicas(op.key)
        src = op.coordinator_endpoint
        send = self._network.send
        if op.write:
            op.ts = self._env.now
            version = (op.ts, op.client, op.id)
            targets = replicas if self._write_all else self._select(replicas, op.needed)
            for node in targets:
                send(src, node, WRITE_REQUEST, self._replicas[node].on_write, op, version)
        else:
            targets = replicas if self._read_all else self._select(replicas, op.needed)
            for node in targets:
                send(src, node, READ_REQUEST, self._replicas[node].on_read, op, None)

    def _select(self, replicas: tuple[int, ...], count: int) -> list[int]:
        """Return ``count`` of the replicas: uniformly at random, or the first in ring order."""
        chosen = list(replicas)
        if not self._random_selection:
            return chosen[:count]
        u, size = self._selection, len(chosen)
        for i in range(count):  # a partial Fisher-Yates shuffle
            j = i + int(u() * (size - i))
            chosen[i], chosen[j] = chosen[j], chosen[i]
        return chosen[:count]

    def on_write_ack(self, op: Op, _=None) -> None:
        """Count a write acknowledgement; the write commits at the W-th."""
        if op.reached or op.done:
            return
        op.replies += 1
        if op.replies == op.needed:
            op.reached = True
            op.commit = self._env.now
            self._answer(op)

    def on_read_response(self, op: Op, version: tuple | None) -> None:
        """Count a read response, keeping the newest version; the read completes at the R-th."""
        if op.reached or op.done:
            return
        op.replies += 1
        if version is not None and (op.best is None or version > op.best):
            op.best = version
        if op.replies == op.needed:
            op.reached = True
            self._answer(op)

    def _answer(self, op: Op) -> None:
        if op.coordinator == CLIENT:
            self._finish(op)
        else:
            self._network.send(
                op.coordinator, self._client_endpoint[op.client], CLIENT_RESPONSE, self._finish, op, None
            )

    def _finish(self, op: Op, _=None) -> None:
        if op.done:
            return
        op.done = True
        version = op.id if op.write else op.best[2] if op.best is not None else NO_VERSION
        self._recorder.record(op, self._env.now, OK, version)
        if op.on_done is not None:
            op.on_done(op)

    def _expire(self, op: Op) -> None:
        op.done = True
        error = RESPONSE_LOST if op.reached else QUORUM_TIMEOUT if op.arrived else REQUEST_LOST
        self._recorder.record(op, self._env.now, error, NO_VERSION)
        if op.on_done is not None:
            op.on_done(op)


class _Deadlines:
    """Expires operations at start + timeout with one pending timer, not one timer per operation.

    Deadlines are added in increasing order (the timeout is a constant), so the earliest one is
    always at the head of a FIFO; operations that finished are skipped when the timer fires.
    """

    _EPSILON_MS = 1e-9  # the timer's time may differ from the deadline in the last bit

    def __init__(self, env: simpy.Environment, timeout_ms: float, expire: Callable[[Op], None]):
        self._env = env
        self._timeout = timeout_ms
        self._expire = expire
        self._pending: deque[Op] = deque()
        self._armed = False

    def add(self, op: Op) -> None:
        op.deadline = op.start + self._timeout
        self._pending.append(op)
        if not self._armed:
            self._arm(op.deadline)

    def _arm(self, at: float) -> None:
        self._armed = True
        call_later(self._env, max(at - self._env.now, 0.0), self._fire)

    def _fire(self, _event) -> None:
        self._armed = False
        pending = self._pending
        limit = self._env.now + self._EPSILON_MS
        while pending and (pending[0].done or pending[0].deadline <= limit):
            op = pending.popleft()
            if not op.done:
                self._expire(op)
        if pending:
            self._arm(pending[0].deadline)
