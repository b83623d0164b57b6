"""Quorums as int bit masks (bit i set = node i in it), and the limits of a quorum family's size."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence

MAX_QUORUMS = 100_000  # quorums, or candidate quorums while building, in one family


def minimal_masks(masks: Iterable[int]) -> list[int]:
    """Return the masks that contain no other mask of the family, fewest members first."""
    kept: list[int] = []
    size, smaller = -1, 0  # kept[:smaller] have fewer members than the current mask
    for m in sorted(set(masks), key=int.bit_count):
        if m.bit_count() != size:
            size, smaller = m.bit_count(), len(kept)
        if not any(k & m == k for k in itertools.islice(kept, smaller)):
            kept.append(m)
    return kept


def check_count(count: int, what: str, exact: bool = True) -> None:
    """Refuse ``count`` quorums past :data:`MAX_QUORUMS` (``exact`` False: ``count`` found so far)."""
    if count > MAX_QUORUMS:
        many = f"{count:,}" if exact else f"more than {MAX_QUORUMS:,}"
        raise ValueError(
            f"{what} would build {many} quorums, more than the limit of {MAX_QUORUMS:,}; "
            "describe a smaller system"
        )


def check_names(names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, str) or not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"names must be a sequence of non-empty strings, got {names!r}")
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if not names or duplicates:
        raise ValueError(f"names must be unique and at least one; repeated: {', '.join(duplicates) or '-'}")
    return tuple(names)


def mask_of(quorum: Iterable[int]) -> int:
    return sum(1 << i for i in set(quorum))


def indexes_of(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


def as_frozensets(masks: Iterable[int]) -> tuple[frozenset[int], ...]:
    """Return the masks as frozensets, sorted by size then members (a deterministic order)."""
    members = sorted((indexes_of(m) for m in masks), key=lambda q: (len(q), q))
    return tuple(frozenset(q) for q in members)
