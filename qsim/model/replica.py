"""A replica: a last-writer-wins versioned store behind a service queue."""

from __future__ import annotations

from collections import deque

import simpy

from qsim.distributions import Sampler
from qsim.model.clock import call_later
from qsim.model.network import HINT, HINT_ACK, READ_REPAIR_ACK, READ_RESPONSE, WRITE_ACK, Network


class Replica:
    """Stores the newest version of each key it has seen and answers reads and writes.

    Requests wait in a FIFO queue for one of ``concurrency`` servers and hold it for a service
    time (times the current slowdown factor); the write is applied (and the read answered) when
    service ends. With a zero service time a request is handled on arrival. Versions are tuples
    (timestamp, writer, op_id), compared as tuples, so the newest version wins whatever order
    writes arrive in. A stand-in (sloppy quorum) also keeps the writes it holds for another node
    as hints, and offers them to that node every handoff interval.
    """

    def __init__(
        self,
        index: int,
        env: simpy.Environment,
        network: Network,
        service: Sampler | None,
        concurrency: int | None,
        tag_replies: bool = False,
    ):
        self.index = index
        self.store: dict[int, tuple] = {}
        self.hints: dict[int, dict[int, tuple]] = {}  # owner -> key -> newest version held for it
        self.slowdown = 1.0
        self._busy = 0  # servers busy now
        self._busy_area = 0.0  # integral of busy servers over time, ms, up to _since
        self._since = 0.0
        self._env = env
        self._network = network
        self._send = network.send
        self._acks = network.row(WRITE_ACK, index)  # what reply() takes: the routes of its replies
        self._responses = network.row(READ_RESPONSE, index)
        self._service = service
        self._concurrency = concurrency if concurrency is not None else float("inf")
        self._free = self._concurrency
        self._queue: deque = deque()
        self._epoch = 0  # advances at each crash, so service that straddles one is dropped
        self._tag = index if tag_replies else None  # what an ack carries: who sent it, if asked
        if tag_replies:  # repair, learning selection and region levels need to know who answered
            self._read = self._read_tagged
        if service is None:  # answered on arrival, without the queue
            self.on_write, self.on_read = self._write, self._read

    @property
    def queue_length(self) -> int:
        """Requests waiting for a server now."""
        return len(self._queue)

    @property
    def servers(self) -> float:
        """Parallel servers (1 when unbounded, so utilization is the mean number busy)."""
        return self._concurrency if self._concurrency != float("inf") else 1

    def connect(self, coordinator) -> None:
        """Send replies to ``coordinator`` (which is built after the replicas)."""
        # 1-tuples, as Network.reply takes handlers (SimPy's callbacks of the message).
        self._ack = (coordinator.on_write_ack,)
        self._respond = (coordinator.on_read_response,)
        self._repaired = (coordinator.on_repair_ack,)

    # --- requests: handlers of messages (qsim.model.network.Message), reading .op and .arg -------
    # Each answers with the request's own message (Network.reply): no new object per reply.

    def on_write(self, message) -> None:
        """Receive a write request, ``arg`` its version (queued for service)."""
        self._enqueue((self._write, message, self._epoch))

    def on_read(self, message) -> None:
        """Receive a read request (queued for service)."""
        self._enqueue((self._read, message, self._epoch))

    def _write(self, message) -> None:
        """Keep a write request's version if it is newer than the one held (last writer wins); ack it."""
        op, version = message.op, message.arg
        store = self.store
        current = store.get(op.key)  # _merge, inlined: every write passes here
        if current is None or version > current:
            store[op.key] = version
        self._network.reply(message, self._acks, op.coordinator_endpoint, self._ack, self._tag)

    def _read(self, message) -> None:
        """Answer a read request with the version held."""
        op = message.op
        self._network.reply(
            message, self._responses, op.coordinator_endpoint, self._respond, self.store.get(op.key)
        )

    def _read_tagged(self, message) -> None:
        """Answer a read request with the version held and who holds it."""
        op = message.op
        reply = (self.store.get(op.key), self.index)
        self._network.reply(message, self._responses, op.coordinator_endpoint, self._respond, reply)

    def on_hinted_write(self, message) -> None:
        """Receive a write meant for a node that is down: ``arg`` is (version, owner).

        It is applied here, and a hint kept for the owner.
        """
        op, (version, owner) = message.op, message.arg
        held = self.hints.setdefault(owner, {})
        if op.key not in held or version > held[op.key]:
            held[op.key] = version
        message.arg = version
        if self._service is None:
            self._write(message)
        else:
            self.on_write(message)

    def on_repair(self, message) -> None:
        """Receive a read-repair write, ``arg`` (version, ack); if asked, acknowledge it with its index."""
        op, (version, ack) = message.op, message.arg
        self._merge(op.key, version)
        if ack:
            self._send(
                self.index, op.coordinator_endpoint, READ_REPAIR_ACK, self._repaired[0], op, self.index
            )

    def _merge(self, key: int, version: tuple) -> bool:
        current = self.store.get(key)
        if current is None or version > current:
            self.store[key] = version
            return True
        return False

    # --- the service queue ---------------------------------------------------------------------

    @property
    def queued(self) -> bool:
        """True if requests wait for service (a non-zero service time), False if handled on arrival."""
        return self._service is not None

    def serve(self, handler, message) -> None:
        """Call ``handler(message)`` once a server has served it (the leader protocol's messages)."""
        self._enqueue((handler, message, self._epoch))

    def _enqueue(self, job: tuple) -> None:
        if self._free > 0:
            self._start(job)
        else:
            self._queue.append(job)

    @property
    def busy_ms(self) -> float:
        """Server-milliseconds spent serving so far (the integral of busy servers over time)."""
        return self._busy_area + self._busy * (self._env.now - self._since)

    def _busy_by(self, change: int) -> None:
        now = self._env.now
        self._busy_area += self._busy * (now - self._since)
        self._since = now
        self._busy += change

    def _start(self, job: tuple) -> None:
        self._free -= 1
        self._busy_by(+1)
        call_later(self._env, self._service() * self.slowdown, self._finish, job)

    def _finish(self, event) -> None:
        action, message, epoch = event.value
        if epoch != self._epoch:
            return  # it was in service when the node crashed
        action(message)
        self._free += 1
        self._busy_by(-1)
        if self._queue:
            self._start(self._queue.popleft())

    # --- faults --------------------------------------------------------------------------------

    def crash(self) -> None:
        """Drop the queue and the requests in service (the network stops delivering to the node)."""
        self._epoch += 1
        self._queue.clear()
        self._free = self._concurrency
        self._busy_by(-self._busy)

    def recover(self, amnesia: bool) -> None:
        """Come back; with ``amnesia`` the store and hints are empty (volatile state lost)."""
        if amnesia:
            self.store.clear()
            self.hints.clear()

    # --- hinted handoff and anti-entropy -------------------------------------------------------

    def offer_hints(self, replicas: list[Replica]) -> None:
        """Send each owner the hints held for it (one message per owner)."""
        for owner, held in self.hints.items():
            if held:
                self._send(self.index, owner, HINT, replicas[owner].on_hints, None, (self, dict(held)))

    def on_hints(self, message) -> None:
        """Apply hints handed off by a stand-in, ``arg`` (holder, hints), and acknowledge them."""
        holder, hints = message.arg
        for key, version in hints.items():
            self._merge(key, version)
        self._send(self.index, holder.index, HINT_ACK, holder.on_hints_ack, None, (self.index, hints))

    def on_hints_ack(self, message) -> None:
        """Forget the hints the owner confirmed, ``arg`` (owner, hints), unless a newer one came meanwhile."""
        owner, hints = message.arg
        held = self.hints.get(owner, {})
        for key, version in hints.items():
            if held.get(key) == version:
                del held[key]

    def merge_all(self, versions: dict[int, tuple]) -> dict[int, tuple]:
        """Apply ``versions``; return this store's versions that are newer than the ones given."""
        newer = {}
        for key, version in versions.items():
            if not self._merge(key, version) and self.store[key] != version:
                newer[key] = self.store[key]
        return newer
