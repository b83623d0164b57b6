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
        self._send = network.send
        self._service = service
        self._concurrency = concurrency if concurrency is not None else float("inf")
        self._free = self._concurrency
        self._queue: deque = deque()
        self._epoch = 0  # advances at each crash, so service that straddles one is dropped
        if service is None:
            self.on_write, self.on_read = self._apply_write, self._answer_read
        self._tag = index if tag_replies else None  # what an ack carries: who sent it, if asked
        if tag_replies:  # repair, learning selection and region levels need to know who answered
            self._answer_read = self._answer_read_tagged
            if service is None:
                self.on_read = self._answer_read

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
        self._ack = coordinator.on_write_ack
        self._respond = coordinator.on_read_response
        self._repaired = coordinator.on_repair_ack

    # --- requests ------------------------------------------------------------------------------

    def on_write(self, op, version: tuple) -> None:
        """Receive a write request (queued for service)."""
        self._enqueue((self._apply_write, op, version, self._epoch))

    def on_read(self, op, _=None) -> None:
        """Receive a read request (queued for service)."""
        self._enqueue((self._answer_read, op, None, self._epoch))

    def on_hinted_write(self, op, version_and_owner: tuple) -> None:
        """Receive a write meant for ``owner`` (down): apply it here and keep a hint for the owner."""
        version, owner = version_and_owner
        held = self.hints.setdefault(owner, {})
        if op.key not in held or version > held[op.key]:
            held[op.key] = version
        self.on_write(op, version)

    def on_repair(self, op, version_and_ack: tuple) -> None:
        """Receive a read-repair write; acknowledge it if the read waits for it."""
        version, ack = version_and_ack
        self._merge(op.key, version)
        if ack:
            self._send(self.index, op.coordinator_endpoint, READ_REPAIR_ACK, self._repaired, op, None)

    def _apply_write(self, op, version: tuple) -> None:
        current = self.store.get(op.key)  # _merge, inlined: every write passes here
        if current is None or version > current:
            self.store[op.key] = version
        self._send(self.index, op.coordinator_endpoint, WRITE_ACK, self._ack, op, self._tag)

    def _answer_read(self, op, _=None) -> None:
        self._send(
            self.index, op.coordinator_endpoint, READ_RESPONSE, self._respond, op, self.store.get(op.key)
        )

    def _answer_read_tagged(self, op, _=None) -> None:
        reply = (self.store.get(op.key), self.index)
        self._send(self.index, op.coordinator_endpoint, READ_RESPONSE, self._respond, op, reply)

    def _merge(self, key: int, version: tuple) -> bool:
        current = self.store.get(key)
        if current is None or version > current:
            self.store[key] = version
            return True
        return False

    # --- the service queue ---------------------------------------------------------------------

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
        action, op, version, epoch = event.value
        if epoch != self._epoch:
            return  # it was in service when the node crashed
        action(op, version)
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

    def on_hints(self, _op, holder_and_hints: tuple) -> None:
        """Apply hints handed off by a stand-in and acknowledge them."""
        holder, hints = holder_and_hints
        for key, version in hints.items():
            self._merge(key, version)
        self._send(self.index, holder.index, HINT_ACK, holder.on_hints_ack, None, (self.index, hints))

    def on_hints_ack(self, _op, owner_and_hints: tuple) -> None:
        """Forget the hints the owner confirmed (unless a newer one arrived meanwhile)."""
        owner, hints = owner_and_hints
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
