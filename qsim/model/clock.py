"""Cheap scheduled callbacks on a SimPy environment.

A SimPy ``Timeout`` costs a full event (constructor checks, a callbacks list, attributes); a model
that schedules millions of short delays (every message, every arrival) spends a large share of its
time there. ``Environment.step`` reads only ``callbacks`` and ``_ok`` of what it pops from the heap,
so a slotted :class:`Scheduled` stands in for a timeout at a fraction of its cost; and
:func:`run_until` runs the loop of ``Environment.run`` with ``step`` inlined. This module (and the
inlined copies in :mod:`qsim.model.network` and the open loop of :mod:`qsim.model.workload`) is the
only code that relies on SimPy 4's heap layout and loop, which pyproject.toml pins.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush

import simpy
from simpy.core import StopSimulation
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


def run_until(env: simpy.Environment, until: simpy.Event):
    """``env.run(until=until)``, with ``Environment.step`` inlined in the loop; return ``until``'s value.

    The same events in the same order, with the same semantics (SimPy 4.1's ``run`` and ``step``,
    a failed event that nobody defused re-raised, a stop keeping the callbacks not yet called), at
    one Python call less per event: a simulation spends a tenth of its time on that call.
    """
    if until.callbacks is None:  # processed already
        return until.value
    until.callbacks.append(StopSimulation.callback)
    queue = env._queue
    try:
        while True:
            try:
                env._now, _, _, event = heappop(queue)
            except IndexError:
                raise RuntimeError(
                    f'No scheduled events left but "until" event was not triggered: {until}'
                ) from None
            callbacks, event.callbacks = event.callbacks, None
            try:
                for callback in callbacks:
                    callback(event)
            except StopSimulation:
                event.callbacks = callbacks[callbacks.index(callback) + 1 :]
                env.schedule(event, -1)  # before everything else due now, as step() does
                raise
            if not event._ok and not hasattr(event, "_defused"):
                failure = type(event._value)(*event._value.args)
                failure.__cause__ = event._value
                raise failure
    except StopSimulation as stop:
        return stop.args[0]
