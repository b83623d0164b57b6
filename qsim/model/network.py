"""Messages between endpoints: a latency draw, a loss draw, then the receiver's handler.

Endpoints are the nodes (0..K-1) followed by one endpoint per client region (clients in one region
share their latency and loss). A message is a :class:`Message`, an already-triggered event that
SimPy's ``step`` hands straight to the receiver's handler, ``handler(message)``, which reads
``message.op`` and ``message.arg``: no process, no dispatch call in between.

Counts are derived, not counted at delivery: a message is counted when it is sent (after the loss
draw), and the messages still in flight are found on SimPy's heap when someone asks, so that
delivered = sent - dropped at delivery - in flight.

Faults act here through one mechanism each. A scenario with faults (or a failover strategy that
needs a failure detector) uses the *checked* send and delivery: a message is dropped at delivery if
its destination is down, crashed since the message was sent (the epoch changed), or cut off from
its source by a partition; and each delivery records when the receiver last heard from the
sender. Degraded links swap their route entries, so they cost nothing per message. A fault-free
scenario takes the unchecked path and pays for none of this.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from heapq import heappush

import numpy as np
import simpy
from simpy.events import NORMAL

from qsim.distributions import uniform_sampler
from qsim.model.routes import RouteTable, degraded_route
from qsim.rng import RandomStreams
from qsim.scenario.schema import MESSAGE_KINDS, Scenario

(
    WRITE_REQUEST,
    WRITE_ACK,
    READ_REQUEST,
    READ_RESPONSE,
    CLIENT_REQUEST,
    CLIENT_RESPONSE,
    READ_REPAIR,
    READ_REPAIR_ACK,
    HINT,
    HINT_ACK,
    ANTI_ENTROPY,
    APPEND_ENTRIES,
    APPEND_ACK,
    REQUEST_VOTE,
    VOTE,
) = range(len(MESSAGE_KINDS))


class Message:
    """A message in flight: SimPy calls ``callbacks`` (the receiver's handler) when it is due.

    ``slot`` is ``kind * endpoints + dst``. Four slots: with its headers a message fills one
    64-byte cache line.
    """

    __slots__ = ("arg", "callbacks", "op", "slot")
    _ok = True  # step() reads it after the callbacks: a message never fails


class CheckedMessage(Message):
    """A message on the checked path: ``handler`` is the receiver, and ``src``, ``epoch`` (the
    link's epoch when sent) and ``trace`` are what delivery checks."""

    __slots__ = ("epoch", "handler", "src", "trace")


class _Sender:
    """On the checked path, what :meth:`Network.reply` takes instead of a route row."""

    __slots__ = ("kind", "src")

    def __init__(self, src: int, kind: int):
        self.src, self.kind = src, kind


class Network:
    """Sends messages along routes resolved once from the scenario."""

    def __init__(
        self, env: simpy.Environment, scenario: Scenario, streams: RandomStreams, checked: bool = False
    ):
        self._env = env
        self._queue, self._eid = env._queue, env._eid  # SimPy's heap and event ids (never replaced)
        self.regions = list(dict.fromkeys([*scenario.cluster.regions, *scenario.client_regions]))
        self.node_count = len(scenario.cluster.nodes)
        self.endpoint_regions = [n.region for n in scenario.cluster.nodes] + self.regions
        self._endpoints = size = len(self.endpoint_regions)
        self._table = RouteTable(scenario, streams, self.endpoint_regions)
        self._routes = self._table.build()  # [kind][src][dst] -> (latency sampler, loss, counter slot)
        self._uniform = uniform_sampler(streams.generator("network.loss"))
        self._sent = [0] * (len(MESSAGE_KINDS) * size)  # [kind * endpoints + dst], loss excluded
        self._lost = [0] * (len(MESSAGE_KINDS) * size)  # dropped at delivery (checked path)
        self.dropped = [0] * len(MESSAGE_KINDS)
        self._on_checked = (self._deliver_checked,)
        self._checked = checked
        if checked:
            self.send, self.fanout, self.reply = self._send_checked, self._fanout_checked, self._reply_checked
            self.send_ordered = self._send_checked
        self.down = [False] * size
        self.epoch = [0] * size
        self._cuts = [[0] * size for _ in range(size)]  # how many partitions cut src -> dst now
        self._cut_starts = [[0] * size for _ in range(size)]  # how many cuts of src -> dst ever began
        # What delivery checks, folded from the above: is src -> dst blocked now, and how many
        # crashes of dst and cuts of the link began (a message sent before one of them is lost).
        self._blocked = [[False] * size for _ in range(size)]
        self._link_epoch = [[0] * size for _ in range(size)]
        self.heard = [[-math.inf] * size for _ in range(size)]  # [receiver][sender]: last delivery, ms
        self._degraded: dict[int, list] = {}  # fault id -> its (src, dst) pairs and extras
        self.tracer = None  # a qsim.model.tracer.Tracer when messages are traced (checked path only)

    def client_endpoint(self, region: str) -> int:
        """Return the endpoint that stands for clients in ``region``."""
        return self.node_count + self.regions.index(region)

    def send(self, src: int, dst: int, kind: int, handler: Callable, op, arg) -> None:
        """Call ``handler(message)`` at ``dst`` after the route's latency, unless the message is lost."""
        message = Message()
        message.op = op
        self.reply(message, self._routes[kind][src], dst, (handler,), arg)

    def row(self, kind: int, src: int):
        """What :meth:`reply` takes for messages of ``kind`` from ``src``: their routes, by destination.

        A sender that replies often (a replica's acks) looks its row up once. On the checked path
        it is a :class:`_Sender`, which the checked send reads.
        """
        return _Sender(src, kind) if self._checked else self._routes[kind][src]

    def reply(self, message: Message, row, dst: int, callbacks: tuple, arg) -> None:
        """Send ``message`` (delivered: SimPy is done with it) on, with a new ``arg``, to ``callbacks``.

        A replica answers a request with the request's own message, so the reply costs no new
        object. ``row`` is :meth:`row` of the reply's kind and sender; ``callbacks`` is the
        receiver's handler in a 1-tuple, made once by the caller.
        """
        latency, loss, slot = row[dst]
        if loss and self._uniform() < loss:
            self.dropped[slot // self._endpoints] += 1
            return
        try:
            delay = latency.pop()
        except IndexError:
            delay = latency.refill()
        self._sent[slot] += 1
        message.callbacks = callbacks
        message.arg = arg
        message.slot = slot
        heappush(self._queue, (self._env._now + delay, NORMAL, next(self._eid), message))

    def send_ordered(self, src: int, dst: int, kind: int, handler: Callable, op, arg, after: float) -> float:
        """:meth:`send`, delivered no earlier than ``after`` (ms): a link that keeps order, as TCP does.

        Returns when the message arrives (``after`` if it is lost), the ``after`` of the next one.
        """
        latency, loss, slot = self._routes[kind][src][dst]
        if loss and self._uniform() < loss:
            self.dropped[kind] += 1
            return after
        try:
            delay = latency.pop()
        except IndexError:
            delay = latency.refill()
        self._sent[slot] += 1
        message = Message()
        message.callbacks = (handler,)
        message.op = op
        message.arg = arg
        message.slot = slot
        env = self._env
        at = env._now + delay
        if at < after:
            at = after
        heappush(env._queue, (at, NORMAL, next(env._eid), message))
        return at

    def fanout(self, src: int, targets, kind: int, callbacks: list[tuple], op, arg) -> None:
        """Send ``op`` and ``arg`` to each of ``targets``, to its handler ``callbacks[target]`` (a 1-tuple).

        The same messages as a :meth:`send` per target, in target order, in one call: the route
        row and the counters are looked up once, and no loss is drawn on lossless routes.
        """
        row, sent, queue, eid = self._routes[kind][src], self._sent, self._queue, self._eid
        now = self._env._now
        for dst in targets:
            latency, loss, slot = row[dst]
            if loss and self._uniform() < loss:
                self.dropped[kind] += 1
                continue
            try:
                delay = latency.pop()
            except IndexError:
                delay = latency.refill()
            sent[slot] += 1
            message = Message()
            message.callbacks = callbacks[dst]
            message.op = op
            message.arg = arg
            message.slot = slot
            heappush(queue, (now + delay, NORMAL, next(eid), message))

    def _send_checked(
        self, src: int, dst: int, kind: int, handler: Callable, op, arg, after: float = -math.inf
    ) -> float:
        latency, loss, slot = self._routes[kind][src][dst]
        tracer = self.tracer
        trace = tracer.sent(op, kind, src, dst, self._env.now) if tracer and tracer.wants(op) else None
        if loss and self._uniform() < loss:
            self.dropped[kind] += 1
            if trace is not None:
                tracer.dropped(trace, "loss")
            return after
        try:
            delay = latency.pop()
        except IndexError:
            delay = latency.refill()
        self._sent[slot] += 1
        message = CheckedMessage()
        message.callbacks = self._on_checked
        message.handler, message.op, message.arg, message.slot = handler, op, arg, slot
        message.src, message.epoch = src, self._link_epoch[src][dst]
        # A traced message keeps what tells its fate apart: the destination's crashes and the cuts.
        message.trace = None if trace is None else (trace, self.epoch[dst], self._cut_starts[src][dst])
        env = self._env
        at = max(env._now + delay, after)
        heappush(env._queue, (at, NORMAL, next(env._eid), message))
        return at

    def _reply_checked(self, message: Message, sender: _Sender, dst: int, callbacks: tuple, arg) -> None:
        self._send_checked(sender.src, dst, sender.kind, callbacks[0], message.op, arg)

    def _fanout_checked(self, src: int, targets, kind: int, callbacks: list[tuple], op, arg) -> None:
        for dst in targets:
            self._send_checked(src, dst, kind, callbacks[dst][0], op, arg)

    def _deliver_checked(self, message: CheckedMessage) -> None:
        src, slot = message.src, message.slot
        dst = slot % self._endpoints
        if message.trace is not None:
            self._trace_delivery(*message.trace, src, dst)
        # Lost if the link is blocked now (destination down, or cut), or the destination crashed or
        # a cut of the link began since sending (the link's epoch moved on).
        if self._blocked[src][dst] or self._link_epoch[src][dst] != message.epoch:
            self._lost[slot] += 1
            self.dropped[slot // self._endpoints] += 1
            return
        self.heard[dst][src] = self._env._now
        message.handler(message)

    def _trace_delivery(self, trace: int, epoch: int, cuts: int, src: int, dst: int) -> None:
        if self.down[dst]:
            self.tracer.dropped(trace, "down", self._env.now)
        elif self.epoch[dst] != epoch:
            self.tracer.dropped(trace, "crashed", self._env.now)
        elif self._cuts[src][dst] or self._cut_starts[src][dst] != cuts:
            self.tracer.dropped(trace, "partition", self._env.now)
        else:
            self.tracer.delivered(trace, self._env.now)

    def route_mean(self, kind: int, src: int, dst: int) -> float:
        """The configured mean latency of a route (ms), for ``nearest`` replica selection."""
        return self._table.mean(MESSAGE_KINDS[kind], src, dst)

    def endpoint_names(self, node_names: list[str]) -> list[str]:
        """Names of all endpoints: the nodes, then ``clients@<region>`` for each region."""
        return [*node_names, *(f"clients@{region}" for region in self.regions)]

    def delivered(self, kind: int) -> int:
        """Messages of ``kind`` delivered so far."""
        span = slice(kind * self._endpoints, (kind + 1) * self._endpoints)
        return sum(self._sent[span]) - sum(self._lost[span]) - sum(self._in_flight()[span])

    def received(self, endpoint: int) -> int:
        """Messages of every kind delivered to ``endpoint`` so far."""
        span = slice(endpoint, None, self._endpoints)
        return sum(self._sent[span]) - sum(self._lost[span]) - sum(self._in_flight()[span])

    def _in_flight(self) -> list[int]:
        """Messages sent but not yet delivered (nor dropped), by slot: those still on SimPy's heap."""
        flying = [0] * len(self._sent)
        for entry in self._env._queue:
            if isinstance(entry[3], Message):
                flying[entry[3].slot] += 1
        return flying

    # --- faults (only with the checked path) ---------------------------------------------------

    def crash(self, endpoint: int) -> None:
        """Take ``endpoint`` down: it receives nothing, and what is in flight to it is lost."""
        self.down[endpoint] = True
        self.epoch[endpoint] += 1
        for src in range(self._endpoints):
            self._link_epoch[src][endpoint] += 1
            self._block(src, endpoint)

    def recover(self, endpoint: int) -> None:
        """Bring ``endpoint`` back up."""
        self.down[endpoint] = False
        for src in range(self._endpoints):
            self._block(src, endpoint)

    def cut(self, pairs: list[tuple[int, int]], by: int = 1) -> None:
        """Cut (``by=1``) or restore (``by=-1``) the directed links ``pairs``."""
        for src, dst in pairs:
            self._cuts[src][dst] += by
            if by > 0:
                self._cut_starts[src][dst] += 1
                self._link_epoch[src][dst] += 1
            self._block(src, dst)

    def _block(self, src: int, dst: int) -> None:
        """Recompute whether the link delivers nothing now (its destination down, or cut)."""
        self._blocked[src][dst] = self.down[dst] or self._cuts[src][dst] > 0

    def degrade(
        self,
        fault_id: int,
        pairs: list[tuple[int, int]],
        extra: Callable[[int], np.ndarray] | None,
        loss: float,
    ) -> None:
        """Add ``extra(size)`` latency and ``loss`` on ``pairs`` until :meth:`undegrade`."""
        self._degraded[fault_id] = [pairs, extra, loss]
        self._rebuild({pair for pair in pairs})

    def undegrade(self, fault_id: int) -> None:
        """End the degradation ``fault_id``."""
        pairs, _, _ = self._degraded.pop(fault_id)
        self._rebuild(set(pairs))

    def _rebuild(self, pairs: set[tuple[int, int]]) -> None:
        base = self._table.build()
        active = list(self._degraded.values())
        for src, dst in pairs:
            extras = [(extra, loss) for links, extra, loss in active if (src, dst) in links]
            for kind in range(len(MESSAGE_KINDS)):
                self._routes[kind][src][dst] = degraded_route(base[kind][src][dst], extras)
