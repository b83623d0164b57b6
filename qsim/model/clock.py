"""Cheap scheduled callbacks on a SimPy environment.

A SimPy ``Timeout`` costs a full event (constructor checks, a callbacks list, attributes); a model
that schedules millions of short delays (every message, every arrival) spends a large share of its
time there. ``Environment.step`` reads only ``callbacks`` and ``_ok`` of what it pops from the heap,
so a slotted :class:`Scheduled` stands in for a timeout at a fraction of its cost. This module
(and the inlined copy in :meth:`qsim.model.network.Network.send`) is the only code that relies on
SimPy 4's heap layout, which pyproject.toml pins.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush

import simpy
from simpy.events import NORMAL


class Scheduled:
    """An already-triggered event carrying a value; SimPy calls its callbacks when it is due."""

    __slots__ = ("callbacks", "value")
    _ok = True


def call_later(
    env: simpy.Environment, delay: float, callback: Callable[[Scheduled], None], value=None
) -> None:
    """Call ``callback(event)`` at ``env.now + delay``; ``event.value`` is ``value``."""
    event = Scheduled()
    event.callbacks = (callback,)  # step() only iterates over them
    event.value = value
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), event))
