"""What a replication protocol offers the rest of the model.

The engine, the workload and the fault injector drive a protocol through this interface only, so
that protocols are packages beside each other (:mod:`qsim.model.leaderless`; a leader-based one
next) on the same shared parts: network, replicas, recorder, clock, faults and workload. A
protocol package has a ``build`` function (see :data:`qsim.model.build.PROTOCOLS`) that wires its
parts on the shared ones and returns a :class:`Built`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol as Interface


class Protocol(Interface):
    """A replication protocol as the rest of the model sees it.

    Attributes:
        outstanding: operations submitted that have not ended.
        on_idle: called each time ``outstanding`` drops to 0 (the engine stops then, once the
            workload is exhausted).
        clock_offset: clock skew per network endpoint, ms (the clock-skew fault sets it).
        tracer: the message tracer when messages are traced (set by the builder), else None.
    """

    outstanding: int
    on_idle: Callable[[], None] | None
    clock_offset: list[float]
    tracer: object | None

    def submit(self, client: int, write: bool, key: int, on_done: Callable | None = None):
        """Start an operation now; return it (it has ``id``, ``client`` and ``key``).

        ``on_done(op)`` is called when the client has its outcome; the protocol records the
        operation in the recorder it was built with when it ends.
        """

    def orphan(self, node: int) -> None:
        """``node`` crashed: what it was doing for clients is lost (they will time out)."""

    def recovered(self, node: int, amnesia: bool) -> None:
        """``node`` is back (its replica's store already emptied if ``amnesia``)."""

    def settle(self) -> None:
        """The run is over: bring every replica's store up to what the protocol has decided."""

    def summary(self) -> dict:
        """The protocol's own sections of summary.json."""


@dataclass
class Built:
    """A protocol wired on the shared parts, and the periodic processes it needs started."""

    protocol: Protocol
    background: list = field(default_factory=list)  # objects with start(): repair, selection refresh
