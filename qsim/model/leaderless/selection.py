"""Replica selection: which of the candidate replicas an operation (or a hedge) asks, in what order.

Strategies (``quorum.replica_selection``), each seen from one coordinating endpoint:

- ``random``: uniformly at random.
- ``ring``: preference-list order.
- ``nearest``: lowest configured mean latency, request there plus response back (ties: ring order).
- ``least_outstanding``: fewest requests this coordinator has in flight to the replica (ties:
  random). A request stops being in flight when its reply arrives or its operation ends.
- ``latency_ewma``: lowest exponentially weighted moving average of the replica's observed
  response time (request sent to reply received), weight ``ewma_alpha`` on the newest, all
  scores forgotten every ``ewma_reset`` (like Cassandra's dynamic snitch); unknown scores are 0.
- ``two_choices``: for each pick, two distinct random candidates; the one with fewer requests in
  flight wins (power of two choices).
"""

from __future__ import annotations

import simpy

from qsim.distributions import uniform_sampler
from qsim.model.clock import call_later
from qsim.model.network import READ_REQUEST, READ_RESPONSE, WRITE_ACK, WRITE_REQUEST, Network
from qsim.rng import RandomStreams
from qsim.scenario.schema import Scenario

COUNTING = ("least_outstanding", "two_choices")  # strategies that count requests in flight
TRACKING = (*COUNTING, "latency_ewma")  # strategies that learn from replies


def selection_matters(scenario: Scenario) -> bool:
    """Whether the choice of replicas can change anything: a quorum fan-out, or hedged requests."""
    quorum = scenario.quorum
    return quorum.read_fanout == "quorum" or quorum.write_fanout == "quorum" or quorum.hedge is not None


class Selector:
    """Orders candidate replicas by the scenario's strategy, and learns from replies if it needs to."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, network: Network, streams: RandomStreams):
        quorum = scenario.quorum
        self.strategy = quorum.replica_selection
        # Learning costs a little on every reply; with fan-out all and no hedging nothing uses it.
        self.tracking = self.strategy in TRACKING and selection_matters(scenario)
        self.counting = self.strategy in COUNTING and self.tracking
        self._env = env
        self._network = network
        self._uniform = uniform_sampler(streams.generator("coordinator.selection"))
        endpoints, nodes = len(network.endpoint_regions), len(scenario.cluster.nodes)
        self.outstanding = [[0] * nodes for _ in range(endpoints)]  # [coordinator endpoint][node]
        self.ewma = [[0.0] * nodes for _ in range(endpoints)]
        self.alpha = quorum.ewma_alpha
        self._reset_ms = quorum.ewma_reset if self.strategy == "latency_ewma" else None
        self._distance: dict[tuple[int, int, bool], float] = {}

    def start(self) -> None:
        """Start forgetting EWMA scores periodically, if the strategy uses them."""
        if self._reset_ms is not None:
            call_later(self._env, self._reset_ms, self._reset)

    def _reset(self, _event) -> None:
        for scores in self.ewma:
            scores[:] = [0.0] * len(scores)
        call_later(self._env, self._reset_ms, self._reset)

    # --- choosing ------------------------------------------------------------------------------

    def pick(self, src: int, candidates, count: int, write: bool = False) -> list[int]:
        """Return ``count`` of ``candidates`` (fewer if there are fewer), best first."""
        chosen = list(candidates)
        count = min(count, len(chosen))
        strategy = self.strategy
        if count <= 0:
            return []
        if strategy == "ring":
            return chosen[:count]
        if strategy == "nearest":
            return sorted(chosen, key=lambda node: self._distance_to(src, node, write))[:count]
        if strategy == "two_choices":
            return self._two_choices(src, chosen, count)
        self._shuffle(chosen, count if strategy == "random" else len(chosen))
        if strategy == "random":
            return chosen[:count]
        scores = self.outstanding[src] if strategy == "least_outstanding" else self.ewma[src]
        return sorted(chosen, key=scores.__getitem__)[:count]  # stable: ties keep the random order

    def _shuffle(self, items: list, count: int) -> None:
        """Partial Fisher-Yates: the first ``count`` items become a uniform random sample, in order."""
        u, size = self._uniform, len(items)
        for i in range(count):
            j = i + int(u() * (size - i))
            items[i], items[j] = items[j], items[i]

    def _two_choices(self, src: int, chosen: list[int], count: int) -> list[int]:
        load, picked = self.outstanding[src], []
        for _ in range(count):
            if len(chosen) == 1:
                picked.append(chosen.pop())
                break
            self._shuffle(chosen, 2)
            best = 0 if load[chosen[0]] <= load[chosen[1]] else 1
            picked.append(chosen.pop(best))
        return picked

    def _distance_to(self, src: int, node: int, write: bool) -> float:
        key = (src, node, write)
        if key not in self._distance:
            request, reply = (WRITE_REQUEST, WRITE_ACK) if write else (READ_REQUEST, READ_RESPONSE)
            there, back = (
                self._network.route_mean(request, src, node),
                self._network.route_mean(reply, node, src),
            )
            self._distance[key] = there + back
        return self._distance[key]

    # --- learning ------------------------------------------------------------------------------

    def sent(self, op, node: int) -> None:
        """A request of ``op`` went to ``node`` (counting strategies)."""
        self.outstanding[op.coordinator_endpoint][node] += 1
        op.pending.add(node)

    def replied(self, op, node: int) -> None:
        """``node`` answered ``op``: its request is no longer in flight (counting strategies)."""
        if node in op.pending:  # else the operation already ended and settled its requests
            op.pending.discard(node)
            self.outstanding[op.coordinator_endpoint][node] -= 1

    def settle(self, op) -> None:
        """``op`` ended: its unanswered requests are no longer in flight."""
        load = self.outstanding[op.coordinator_endpoint]
        for node in op.pending:
            load[node] -= 1
        op.pending.clear()
