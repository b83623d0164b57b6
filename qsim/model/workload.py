"""Clients: open-loop (Poisson) arrivals, closed-loop clients with think time, and PBS probes."""

from __future__ import annotations

from array import array
from collections.abc import Callable
from heapq import heappush

import numpy as np
import simpy
from simpy.events import NORMAL

from qsim.distributions import Sampler, spec_sampler, uniform_sampler
from qsim.model.clock import Scheduled, call_later
from qsim.model.leaderless.op import Op
from qsim.model.protocol import Protocol
from qsim.rng import RandomStreams
from qsim.scenario.schema import Closed, Keys, Poisson, Probe, Scenario


def key_draw(keys: Keys, rng: np.random.Generator) -> Callable[[int], np.ndarray]:
    """Return ``draw(size)`` giving key ids in [0, count) with the configured popularity.

    ``zipf``: P(key i) proportional to 1/(i+1)^s. ``hotset``: the first ceil(hot_fraction*count)
    keys receive hot_weight of the accesses, uniformly; the rest share the remainder uniformly.
    """
    count = keys.count
    if keys.popularity == "uniform":
        return lambda size: rng.integers(0, count, size)
    if keys.popularity == "zipf":
        cdf = np.cumsum(1.0 / np.arange(1, count + 1) ** keys.s)
        cdf /= cdf[-1]
        return lambda size: np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), count - 1)
    hot = min(count, max(1, int(np.ceil(keys.hot_fraction * count))))
    weight = keys.hot_weight if hot < count else 1.0

    def draw(size: int) -> np.ndarray:
        is_hot = rng.random(size) < weight
        return np.where(is_hot, rng.integers(0, hot, size), rng.integers(hot, max(count, hot + 1), size))

    return draw


class _TupleBatch(list):
    """A batch that is already a list: ``Sampler`` calls ``tolist()`` on what ``draw`` returns."""

    def tolist(self) -> list:
        return self


class _Clients:
    """What open and closed loops share: the coordinator, the stop rules, the read fraction."""

    def __init__(
        self, env: simpy.Environment, scenario: Scenario, coordinator: Protocol, streams: RandomStreams
    ):
        workload = scenario.workload
        self._env = env
        self._coordinator = coordinator
        self._clients = workload.clients
        self._horizon = scenario.duration
        self._limit = workload.max_ops if workload.max_ops is not None else float("inf")
        self._read_fraction = workload.read_fraction
        self.issued = 0
        self.exhausted = False  # True once it will issue nothing more
        self.on_exhausted = None  # called then (the engine stops when operations are all done)

    def _stop(self) -> None:
        self.exhausted = True
        if self.on_exhausted is not None:
            self.on_exhausted()


class OpenLoop(_Clients):
    """Operations arrive as a Poisson process at ``rate``, each from a uniformly chosen client."""

    def __init__(self, env, scenario, coordinator, streams):
        super().__init__(env, scenario, coordinator, streams)
        arrival: Poisson = scenario.workload.arrival
        mean_gap_ms = 1e3 / arrival.rate
        gaps = streams.generator("workload.arrivals")
        clients = streams.generator("workload.clients")
        kinds = streams.generator("workload.kinds")
        keys = key_draw(scenario.workload.keys, streams.generator("workload.keys"))
        read_fraction, count = self._read_fraction, self._clients

        def draw(size: int) -> list[tuple]:
            # One tuple per arrival, each field from its own stream (a pop per arrival, not four).
            return list(
                zip(
                    gaps.exponential(mean_gap_ms, size).tolist(),
                    (clients.random(size) * count).astype(np.int64).tolist(),
                    (kinds.random(size) >= read_fraction).tolist(),
                    keys(size).tolist(),
                    strict=True,
                )
            )

        self._arrivals = Sampler(lambda size: _TupleBatch(draw(size)))
        self._on_arrival = (self._arrive,)
        self._queue, self._eid = env._queue, env._eid  # SimPy's heap and event ids (never replaced)
        # One event object carries every arrival in turn: only one is ever scheduled.
        self._next = Scheduled()

    def start(self) -> None:
        self._arrive(None)

    def _arrive(self, event) -> None:
        """Issue the operation that arrives now (none at the start), and schedule the next arrival."""
        if event is not None:
            _, client, write, key = event.value
            self.issued += 1
            self._coordinator.submit(client, write, key)
        arrivals = self._arrivals
        try:
            arrival = arrivals.pop()
        except IndexError:
            arrival = arrivals.refill()
        at = self._env._now + arrival[0]
        if self.issued < self._limit and at < self._horizon:
            # call_later(env, arrival[0], self._arrive, arrival), inlined: this runs for every arrival.
            event = self._next
            event.callbacks, event.value = self._on_arrival, arrival
            heappush(self._queue, (at, NORMAL, next(self._eid), event))
        else:
            self._stop()


class ClosedLoop(_Clients):
    """Each client has one operation in flight: issue, wait for the outcome, think, repeat."""

    def __init__(self, env, scenario, coordinator, streams):
        super().__init__(env, scenario, coordinator, streams)
        arrival: Closed = scenario.workload.arrival
        self._think = spec_sampler(arrival.think_time, streams.generator("workload.think"))
        self._keys = Sampler(key_draw(scenario.workload.keys, streams.generator("workload.keys")))
        self._kinds = uniform_sampler(streams.generator("workload.kinds"))

    def start(self) -> None:
        self._stopped = 0
        for client in range(self._clients):
            self._issue(client)

    def _issue(self, client: int) -> None:
        if self.issued < self._limit and self._env.now < self._horizon:
            self.issued += 1
            write = self._kinds() >= self._read_fraction
            self._coordinator.submit(client, write, self._keys(), self._done)
        else:
            self._stopped += 1
            if self._stopped == self._clients:
                self._stop()

    def _done(self, op: Op) -> None:
        call_later(self._env, self._think(), self._wake, op.client)

    def _wake(self, event) -> None:
        self._issue(event.value)


class ProbeLoop:
    """PBS t-visibility probes: write a fresh key, wait for the outcome, wait t, read the key.

    Trial i uses delay ``delays[i % len(delays)]``, so every delay sees the same conditions;
    ``concurrency`` trials run at once, on clients 0, 1, ... in turn. The run ends after
    ``trials * len(delays)`` trials, whatever ``duration`` says.
    """

    def __init__(self, env: simpy.Environment, scenario: Scenario, coordinator: Protocol, streams=None):
        probe: Probe = scenario.workload.arrival
        self._env = env
        self._coordinator = coordinator
        self._delays = probe.delays
        self._total = probe.trials * len(probe.delays)
        self._lanes = probe.concurrency
        self._clients = scenario.workload.clients
        self._trial = 0
        self._delay_of: dict[int, float] = {}
        self._lanes_left = self._lanes
        self.exhausted = False
        self.on_exhausted = None
        self.read_ops = array("i")  # op_id of each probe read
        self.read_delays = array("d")  # its configured delay, ms

    def start(self) -> None:
        for lane in range(self._lanes):
            self._next_trial(lane % self._clients)

    def _next_trial(self, client: int) -> None:
        if self._trial >= self._total:
            self._lanes_left -= 1
            if self._lanes_left == 0:  # every lane has finished its last trial
                self.exhausted = True
                if self.on_exhausted is not None:
                    self.on_exhausted()
            return
        delay = self._delays[self._trial % len(self._delays)]
        op = self._coordinator.submit(client, True, self._trial, self._written)
        self._delay_of[op.id] = delay
        self._trial += 1

    def _written(self, op: Op) -> None:
        delay = self._delay_of.pop(op.id)
        call_later(self._env, delay, self._read, (op.client, op.key, delay))

    def _read(self, event) -> None:
        client, key, delay = event.value
        op = self._coordinator.submit(client, False, key, self._read_done)
        self.read_ops.append(op.id)
        self.read_delays.append(delay)

    def _read_done(self, op: Op) -> None:
        self._next_trial(op.client)


WORKLOADS = {"poisson": OpenLoop, "closed": ClosedLoop, "probe": ProbeLoop}
