"""Load, capacity, resilience and availability of a read-write quorum system, on paper.

The functions live in :mod:`qsim.quorums.load`, beside the systems they analyse, because the
simulator's coordinator draws its quorums from the same strategies; this module is where the
analysis is looked for, and names them.
"""

from qsim.quorums.load import (
    MAX_EXACT_NODES,
    Availability,
    Capacities,
    Strategy,
    availability,
    capacity,
    expected_latency_ms,
    latency_optimal_strategy,
    node_load,
    optimal_strategy,
    resilience,
    resilient_quorums,
    system_load,
    uniform_strategy,
)

__all__ = [
    "MAX_EXACT_NODES",
    "Availability",
    "Capacities",
    "Strategy",
    "availability",
    "capacity",
    "expected_latency_ms",
    "latency_optimal_strategy",
    "node_load",
    "optimal_strategy",
    "resilience",
    "resilient_quorums",
    "system_load",
    "uniform_strategy",
]
