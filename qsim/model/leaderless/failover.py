"""Failover: which replicas an attempt uses when its coordinator suspects some of the key's owners.

``strict`` needs nothing here (always the key's N replicas). ``sloppy`` (Dynamo) takes the first
N unsuspected nodes in the key's ring order, and each stand-in holds a hint for the owner it
replaces. ``shrink`` keeps only the unsuspected replicas and cuts R (or W) to a majority of them
(``quorum.shrink: majority``) or by one for every suspected replica (``drop``: the naive quorum
that forgets its failed members).
"""

from __future__ import annotations

from qsim.model.leaderless.op import Op
from qsim.model.leaderless.ring import Ring
from qsim.model.leaderless.selection import Selector
from qsim.model.timeouts import FailureDetector


def sloppy_targets(
    op: Op, src: int, ring: Ring, detector: FailureDetector, fan_all: bool
) -> tuple[list[int], dict[int, int]]:
    """The first N unsuspected nodes in ring order, and {stand-in: owner it holds a hint for}."""
    order = ring.preference(op.key)
    owners = order[: len(ring.replicas(op.key))]
    if not detector.suspects_any(src):  # what the rest gives when no one is suspected, for less
        op.pool = owners
        return (list(owners) if fan_all else list(owners[: op.needed])), {}
    healthy = [node for node in order if not detector.suspects(src, node)]
    chosen = healthy[: len(owners)] or list(owners)
    missing = [owner for owner in owners if owner not in chosen]
    hints = dict(zip([node for node in chosen if node not in owners], missing, strict=False))
    op.pool = tuple(chosen)  # where a hedged request may go
    return (chosen if fan_all else chosen[: op.needed]), hints


def shrunk_targets(
    op: Op, src: int, ring: Ring, detector: FailureDetector, selector: Selector, fan_all: bool, drop: bool
) -> list[int]:
    """The unsuspected replicas; with any suspected, ``op.needed`` shrinks.

    It becomes at most a majority of the survivors, or with ``drop`` falls by the number suspected
    (at least 1).
    """
    replicas = ring.replicas(op.key)
    if detector.suspects_any(src):
        survivors = [r for r in replicas if not detector.suspects(src, r)] or list(replicas)
    else:
        survivors = list(replicas)
    failed = len(replicas) - len(survivors)
    if failed:
        op.needed = max(1, op.needed - failed) if drop else min(op.needed, len(survivors) // 2 + 1)
    op.pool = tuple(survivors)
    return survivors if fan_all else selector.pick(src, survivors, op.needed, op.write)
