"""Regions in the WARS Monte Carlo: per-operation random coordinators and region-pair latencies (PBS WAN).

The model (Bailis et al., PBS, VLDB 2012, the WAN scenario): each operation is coordinated by a
client, and each write and each read draws its client independently and uniformly from the
probe's lanes (lane j runs on client j mod ``workload.clients``, as in the discrete-event engine;
the clients sit in ``workload.client_regions``, or the node regions, round-robin). A message
between the client's region X and a replica in region Y has the latency the discrete-event engine
gives that route: the ``network.regions`` override of the pair (requests X->Y, replies Y->X),
its ``kinds`` entry first, then its ``latency``; else the network's ``kinds`` entry, then its
``latency``. So a scenario with one replica per region, ``(X, X)`` pairs for the local latency and
``(X, Y)`` pairs for the wide-area one is the PBS WAN model.

:func:`region_model` resolves the routes once; :meth:`RegionModel.sample` draws one message kind
for every trial. Without ``network.regions`` every route is the network's and :func:`region_model`
returns None: the single-region kernel runs as before, drawing the same random numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qsim.scenario import Scenario

REQUESTS = ("write_request", "read_request")  # client -> replica; the others go replica -> client
KINDS = ("write_request", "write_ack", "read_request", "read_response")


@dataclass(frozen=True)
class RegionModel:
    """The latency spec of every (client region, replica, message kind), and the probe's lanes."""

    regions: tuple[str, ...]  # the client regions, in order of first appearance
    lane_regions: np.ndarray  # region index of each probe lane
    specs: dict[str, tuple]  # kind -> the distinct specs of that kind
    table: dict[str, np.ndarray]  # kind -> (regions, n) index into specs[kind]

    @property
    def random_coordinators(self) -> bool:
        """Whether the lanes span more than one region (each operation then draws its own)."""
        return len(np.unique(self.lane_regions)) > 1

    def draw_regions(self, rng: np.random.Generator, m: int) -> np.ndarray:
        """Return the coordinator region of ``m`` operations, each on a uniformly random lane."""
        return self.lane_regions[rng.integers(0, len(self.lane_regions), m)]

    def sample(self, kind: str, regions: np.ndarray | int, rng: np.random.Generator, m: int) -> np.ndarray:
        """Return (m, n) delays of ``kind``, trial i coordinated from ``regions[i]`` (or one region)."""
        specs, table = self.specs[kind], self.table[kind]
        n = table.shape[1]
        if len(specs) == 1:  # one route for every pair: draw as the single-region kernel does
            return specs[0].sample(rng, m * n).reshape(m, n)
        values = np.empty((m, n))
        if np.isscalar(regions):
            for index, spec in enumerate(specs):
                columns = np.flatnonzero(table[regions] == index)
                if columns.size:
                    values[:, columns] = spec.sample(rng, m * columns.size).reshape(m, columns.size)
            return values
        which = table[regions]  # (m, n): the spec of each message
        for index, spec in enumerate(specs):
            mask = which == index
            values[mask] = spec.sample(rng, int(mask.sum()))
        return values


def region_model(scenario: Scenario) -> RegionModel | None:
    """Return the routes and lanes of a scenario with region-pair latencies, else None."""
    network = scenario.network
    if not network.regions:
        return None
    regions = tuple(dict.fromkeys(scenario.client_regions))
    clients = scenario.client_regions
    lanes = scenario.workload.arrival.concurrency
    lane_regions = np.array([regions.index(clients[lane % len(clients)]) for lane in range(lanes)])
    pairs = {pair: override for override in network.regions for pair in override.pairs}  # later wins
    replica_regions = [node.region for node in scenario.cluster.nodes[: scenario.quorum.n]]
    specs, table = {}, {}
    for kind in KINDS:
        found: list = []
        index = np.empty((len(regions), len(replica_regions)), dtype=np.intp)
        for x, client_region in enumerate(regions):
            for j, replica_region in enumerate(replica_regions):
                ends = (
                    (client_region, replica_region) if kind in REQUESTS else (replica_region, client_region)
                )
                spec = route_spec(scenario, kind, pairs.get(ends))
                if spec not in found:
                    found.append(spec)
                index[x, j] = found.index(spec)
        specs[kind], table[kind] = tuple(found), index
    return RegionModel(regions, lane_regions, specs, table)


def route_spec(scenario: Scenario, kind: str, override):
    """Return the latency spec of ``kind`` on a route: the region pair's, else the network's."""
    network = scenario.network
    for where in (override, network):
        if where is None:
            continue
        spec = getattr(where.kinds, kind) or where.latency
        if spec is not None:
            return spec
    raise AssertionError("the network always has a latency")  # pragma: no cover


def region_checks(scenario: Scenario) -> list[tuple[str, bool, str, str]]:
    """Return (field, whether it fits, what the model needs, what the scenario has) for regions."""
    network, quorum, nodes = scenario.network, scenario.quorum, scenario.cluster.nodes
    checks = [
        (
            f"network.regions.{i}.loss",
            not override.loss,
            "needs loss 0 on every region pair",
            f"{override.loss or 0:g}",
        )
        for i, override in enumerate(network.regions)
    ]
    if not network.regions or len(scenario.cluster.regions) == 1:
        return checks
    quorum_fanout = "quorum" in (quorum.read_fanout, quorum.write_fanout)
    return [
        *checks,
        (
            "quorum.n",
            quorum.n == len(nodes),
            f"with region-pair latencies needs every node to hold every key (quorum.n = {len(nodes)}, "
            "the number of nodes), so that each replica's region is known",
            f"{quorum.n}",
        ),
        (
            "quorum.replica_selection",
            not (quorum.replica_selection == "ring" and quorum_fanout),
            "with region-pair latencies and a quorum fan-out needs random replica selection "
            "(the preference list, and so its regions, differs per key)",
            "ring",
        ),
    ]
