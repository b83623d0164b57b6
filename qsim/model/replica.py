"""A replica: a last-writer-wins versioned store behind a service queue."""

from __future__ import annotations

from collections import deque

import simpy

from qsim.distributions import Sampler
from qsim.model.clock import call_later
from qsim.model.network import READ_RESPONSE, WRITE_ACK, Network


class Replica:
    """Stores the newest version of each key it has seen and answers reads and writes.

    Requests wait in a FIFO queue for one of ``concurrency`` servers and hold it for a service
    time; the write is applied (and the read answered) when service ends. With a zero service time
    a request is handled on arrival. Versions are tuples (timestamp, writer, op_id), compared as
    tuples, so the newest version wins whatever order writes arrive in.
    """

    def __init__(
        self,
        index: int,
        env: simpy.Environment,
        network: Network,
        service: Sampler | None,
        concurrency: int | None,
    ):
        self.index = index
        self.store: dict[int, tuple] = {}
        self.busy_ms = 0.0
        self._env = env
        self._send = network.send
        self._service = service
        self._free = concurrency if concurrency is not None else float("inf")
        self._queue: deque = deque()
        if service is None:
            self.on_write, self.on_read = self._apply_write, self._answer_read

    def connect(self, coordinator) -> None:
        """Send replies to ``coordinator`` (which is built after the replicas)."""
        self._ack = coordinator.on_write_ack
        self._respond = coordinator.on_read_response

    def on_write(self, op, version: tuple) -> None:
        """Receive a write request (queued for service)."""
        self._enqueue((self._apply_write, op, version))

    def on_read(self, op, _=None) -> None:
        """Receive a read request (queued for service)."""
        self._enqueue((self._answer_read, op, None))

    def _apply_write(self, op, version: tuple) -> None:
        current = self.store.get(op.key)
        if current is None or version > current:
            self.store[op.key] = version
        self._send(self.index, op.coordinator_endpoint, WRITE_ACK, self._ack, op, None)

    def _answer_read(self, op, _=None) -> None:
        self._send(
            self.index, op.coordinator_endpoint, READ_RESPONSE, self._respond, op, self.store.get(op.key)
        )

    def _enqueue(self, job: tuple) -> None:
        if self._free > 0:
            self._start(job)
        else:
            self._queue.append(job)

    def _start(self, job: tuple) -> None:
        self._free -= 1
        duration = self._service()
        self.busy_ms += duration
        call_later(self._env, duration, self._finish, job)

    def _finish(self, event) -> None:
        action, op, version = event.value
        action(op, version)
        self._free += 1
        if self._queue:
            self._start(self._queue.popleft())
