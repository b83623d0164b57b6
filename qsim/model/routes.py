"""Routes: what a message of each kind from each endpoint to each other takes (latency, loss).

A route is resolved once from the scenario, most specific override first, and the network looks
it up per message as ``routes[kind][src][dst]``. A degraded link (a fault) swaps its entries for
routes that add the fault's latency and loss, so a degradation costs nothing per message.
"""

from __future__ import annotations

import math

import numpy as np

from qsim.distributions import Sampler, mean_latency, spec_sampler
from qsim.rng import RandomStreams
from qsim.scenario.schema import MESSAGE_KINDS, Override, Scenario

Route = tuple[Sampler, float, int]  # latency sampler, loss probability, counter slot


def degraded_route(route: Route, extras: list) -> Route:
    """Return a route whose latency adds each extra draw and whose loss compounds each extra loss."""
    latency, loss, slot = route
    if not extras:
        return route
    draws = [extra for extra, _ in extras if extra is not None]
    survive = (1 - loss) * math.prod(1 - extra_loss for _, extra_loss in extras)
    if draws:
        latency = Sampler(lambda size, base=latency: base.draw(size) + sum(d(size) for d in draws))
    return latency, 1 - survive, slot


class RouteTable:
    """Resolves (kind, source, destination) to a (sampler, loss) pair.

    Precedence, most specific first: link kinds, link latency, region-pair kinds, region-pair
    latency, network kinds, network latency. A node sending to itself takes no time and loses
    nothing. Each spec draws from its own stream, named by its place in the scenario.
    """

    def __init__(self, scenario: Scenario, streams: RandomStreams, endpoint_regions: list[str]):
        self._scenario = scenario
        self._streams = streams
        self._regions = endpoint_regions
        names = [node.name for node in scenario.cluster.nodes]
        self._names = names + [None] * (len(endpoint_regions) - len(names))
        self._samplers: dict[str, Sampler] = {}
        self._specs: dict[str, object] = {}
        self._zero = Sampler(np.zeros)  # a node sending to itself
        network = scenario.network
        self._links = self._index(network.links, "network.links")
        self._region_pairs = self._index(network.regions, "network.regions")

    @staticmethod
    def _index(overrides: tuple[Override, ...], prefix: str) -> dict:
        table = {}
        for i, override in enumerate(overrides):
            for pair in override.pairs:
                table[pair] = (f"{prefix}.{i}", override)  # later entries win
        return table

    def build(self) -> list[list[list[Route]]]:
        """Return the routes, ``[kind][src][dst]``; a route's slot is ``kind * endpoints + dst``."""
        size = len(self._regions)
        return [
            [
                [(*self._route(name, src, dst), kind * size + dst) for dst in range(size)]
                for src in range(size)
            ]
            for kind, name in enumerate(MESSAGE_KINDS)
        ]

    def _route(self, kind: str, src: int, dst: int) -> tuple[Sampler, float]:
        if src == dst and self._names[src] is not None:
            return self._zero, 0.0
        network = self._scenario.network
        candidates = [self._links.get((self._names[src], self._names[dst]))]
        candidates.append(self._region_pairs.get((self._regions[src], self._regions[dst])))
        candidates.append(("network", network))
        latency = loss = None
        for found in candidates:
            if found is None:
                continue
            path, where = found
            if latency is None and getattr(where.kinds, kind) is not None:
                latency = (f"{path}.kinds.{kind}", getattr(where.kinds, kind))
            if latency is None and where.latency is not None:
                latency = (f"{path}.latency", where.latency)
            if loss is None and where.loss is not None:
                loss = where.loss
        path, spec = latency
        self._specs[(kind, src, dst)] = spec
        if path not in self._samplers:
            self._samplers[path] = spec_sampler(spec, self._streams.generator(path))
        return self._samplers[path], loss

    def mean(self, kind: str, src: int, dst: int) -> float:
        """The mean of the route's configured latency distribution, ms (0 for a node to itself)."""
        spec = self._specs.get((kind, src, dst))
        return 0.0 if spec is None else mean_latency(spec)
