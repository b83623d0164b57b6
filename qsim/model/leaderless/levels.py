"""Cassandra's per-region consistency levels: which replicas an operation asks and counts.

``local_one`` and ``local_quorum`` count only the key's replicas in the coordinator's region (one,
or a majority of them); ``each_quorum`` needs a majority of the key's replicas in every region
that holds some. Writes go to every replica (fan-out all), reads only to the regions they count.
"""

from __future__ import annotations

from collections.abc import Callable

from qsim.model.leaderless.op import Op


def level_targets(
    op: Op, level: str, region: str, replicas, node_region: list[str], fan_all: bool, select: Callable
) -> list[int]:
    """Set ``op.need`` (replies still needed per region) and ``op.pool``; return the targets.

    Args:
        region: the coordinator's region.
        select: ``select(nodes, count, write)`` picks ``count`` of ``nodes`` (for a quorum fan-out).
    """
    groups: dict[str, list[int]] = {}
    for node in replicas:
        groups.setdefault(node_region[node], []).append(node)
    if level == "each_quorum":
        op.need = {name: len(nodes) // 2 + 1 for name, nodes in groups.items()}
    else:
        local = groups.get(region, [])
        op.need = {region: 1 if level == "local_one" else len(local) // 2 + 1}
        groups = {region: local}
    op.needed = sum(op.need.values())
    op.pool = tuple(node for nodes in groups.values() for node in nodes)
    if fan_all:
        return list(replicas) if op.write else list(op.pool)
    chosen = [select(nodes, op.need[name], op.write) for name, nodes in groups.items()]
    return [node for nodes in chosen for node in nodes]


def count_in_region(op: Op, region: str) -> bool:
    """Count a reply from ``region``; return True when every region has what it needs."""
    need = op.need
    if need.get(region, 0) <= 0:
        return False  # a reply from a region the level does not count
    need[region] -= 1
    op.replies += 1
    return not any(need.values())
