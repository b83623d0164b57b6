"""Read/write quorum systems: threshold, weighted voting, grids, and expressions over node names.

A system names its nodes (index i is ``names[i]``) and lists its minimal read quorums and minimal
write quorums, each a frozenset of node indexes, sorted by size and then by members. While
building, a quorum is an int bit mask (bit i set = node i in it), which keeps unions and subset
tests cheap. The number of minimal quorums grows combinatorially (``choose(10, ...)`` over 20
names has 184,756), so every construction refuses to build more than :data:`MAX_QUORUMS`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from qsim.quorums.expressions import parse_expression
from qsim.quorums.masks import (
    as_frozensets,
    check_count,
    check_names,
    indexes_of,
    mask_of,
    minimal_masks,
)

GRID_SHAPES = {
    "row": "a row",
    "column": "a column",
    "row_cover": "one node from every row",
    "column_cover": "one node from every column",
    "row_plus_cover": "a row plus one node from every other row",
    "column_plus_cover": "a column plus one node from every other column",
    "row_and_column": "a row plus a column",
}
"""The grid quorum shapes, by name, with the text that :meth:`QuorumSystem.describe` shows."""


@dataclass(frozen=True)
class QuorumSystem:
    """Named nodes with minimal read and write quorums (frozensets of node indexes).

    The constructor keeps only the minimal quorums and sorts them; it does not require reads to
    meet writes: :meth:`intersection_problem` says whether they do.
    """

    names: tuple[str, ...]
    reads: tuple[frozenset[int], ...]
    writes: tuple[frozenset[int], ...]
    label: str = field(default="quorum system", compare=False)
    read_rule: str = field(default="listed", compare=False)
    write_rule: str = field(default="listed", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", check_names(self.names))
        for side in ("reads", "writes"):
            masks = _masks(getattr(self, side), len(self.names), side)
            object.__setattr__(self, side, as_frozensets(minimal_masks(masks)))

    @property
    def n(self) -> int:
        """The number of nodes."""
        return len(self.names)

    @classmethod
    def threshold(cls, names: Sequence[str], r: int, w: int) -> QuorumSystem:
        """Return the system where any ``r`` nodes read and any ``w`` nodes write."""
        n = len(names := check_names(names))
        sides = [(f"any {k} of {n}", _any_of(n, k, what)) for k, what in ((r, "r"), (w, "w"))]
        return cls._built(names, f"threshold n={n}", *sides)

    @classmethod
    def weighted(
        cls, names: Sequence[str], votes: Mapping[str, int] | Sequence[int], read_votes: int, write_votes: int
    ) -> QuorumSystem:
        """Return Gifford's weighted voting: a quorum is a minimal set whose votes reach the threshold.

        Args:
            names: the node names.
            votes: each node's votes (non-negative ints), by name or in the order of ``names``.
            read_votes: the votes a read needs; ``write_votes``: the votes a write needs.
        """
        counts = _check_votes(names := check_names(names), votes)
        thresholds = ((read_votes, "read_votes"), (write_votes, "write_votes"))
        sides = [(f"{t} of {sum(counts)} votes", _reaching(counts, t, what)) for t, what in thresholds]
        shown = ", ".join(f"{name}={v}" for name, v in zip(names, counts, strict=True))
        return cls._built(names, f"weighted votes ({shown})", *sides)

    @classmethod
    def grid(
        cls, names: Sequence[str], rows: int, cols: int, read: str = "row", write: str = "row_cover"
    ) -> QuorumSystem:
        """Return a grid system: nodes laid row-major (``names[r * cols + c]`` is row r, column c).

        Each side takes one shape of :data:`GRID_SHAPES`: ``row`` (all nodes of one row),
        ``column``, ``row_cover`` (one node from every row), ``column_cover``, ``row_plus_cover``
        (a full row plus one node from every other row: the classic grid write of Cheung, Ammar
        and Ahamad 1990, read with ``row_cover``), ``column_plus_cover``, and ``row_and_column``
        (a full row plus a full column). ``row`` reads meet ``row_cover`` writes, but two such
        writes may miss each other; ``row_plus_cover`` and ``row_and_column`` writes meet each other.
        """
        names = check_names(names)
        for value, what in ((rows, "rows"), (cols, "cols")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"grid {what} must be a positive int, got {value!r}")
        if rows * cols != len(names):
            raise ValueError(f"a {rows}x{cols} grid needs {rows * cols} names, got {len(names)}")
        shapes = ((read, "read"), (write, "write"))
        sides = [(GRID_SHAPES.get(s, s), _grid_quorums(s, rows, cols, what)) for s, what in shapes]
        return cls._built(names, f"grid {rows}x{cols}", *sides)

    @classmethod
    def from_expressions(
        cls, names: Sequence[str], read: str | None = None, write: str | None = None
    ) -> QuorumSystem:
        """Return the system of a read and/or a write expression; a missing side is the other's dual.

        An expression is ``a*b*c + d*e*f`` (``*`` = all of, ``+`` = any of, ``*`` binding tighter),
        with parentheses and ``choose(k, [x, y, z])`` or ``choose(k, x, y, z)`` (at least k of the
        items, each a name or an expression). The dual of a side is its minimal transversals: the
        smallest sets that meet every one of its quorums.

        Raises:
            ValueError: an expression does not parse, names an unknown node, or builds too many quorums.
        """
        if read is None and write is None:
            raise ValueError("give a read expression, a write expression, or both")
        names = check_names(names)
        reads = None if read is None else parse_expression(names, read, "read")
        writes = None if write is None else parse_expression(names, write, "write")
        reads = reads or minimal_transversals(writes)
        writes = writes or minimal_transversals(reads)
        rules = (read or "the dual of the writes", write or "the dual of the reads")
        return cls(names, reads, writes, "expressions", *rules)

    @classmethod
    def _built(cls, names: tuple[str, ...], label: str, *sides: tuple[str, list[int]]) -> QuorumSystem:
        (read_rule, reads), (write_rule, writes) = sides
        return cls(names, as_frozensets(reads), as_frozensets(writes), label, read_rule, write_rule)

    def named(self, quorum: Iterable[int]) -> tuple[str, ...]:
        """Return the names of a quorum's nodes, in node order."""
        return tuple(self.names[i] for i in sorted(quorum))

    def intersection_problem(self) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """Return the names of a read quorum and a write quorum that do not meet, or None if all meet."""
        pair = _first_disjoint(self.reads, self.writes)
        return None if pair is None else (self.named(self.reads[pair[0]]), self.named(self.writes[pair[1]]))

    def writes_intersect(self) -> bool:
        """Return whether every two write quorums share a node (else two writes can miss each other)."""
        return _first_disjoint(self.writes, self.writes) is None

    def describe(self) -> str:
        """Return one line: the construction, and each side's rule, quorum count and sizes."""
        return f"{self.label}: reads = {self.read_rule} ({_sizes(self.reads)}), " + (
            f"writes = {self.write_rule} ({_sizes(self.writes)})"
        )


def minimal_sets(quorums: Iterable[Iterable[int]]) -> tuple[frozenset[int], ...]:
    """Return the sets of a family that contain no other set of it, sorted by size then members."""
    return as_frozensets(minimal_masks(mask_of(q) for q in quorums))


def minimal_transversals(quorums: Iterable[Iterable[int]]) -> tuple[frozenset[int], ...]:
    """Return the minimal sets that meet every given set (the dual, or blocker, of the family).

    Berge's algorithm: add the sets one at a time, extending each transversal that misses the new
    set by one of its nodes and keeping the minimal results.

    Raises:
        ValueError: the family is empty or holds the empty set, or the dual grows past MAX_QUORUMS.
    """
    family = minimal_masks(mask_of(q) for q in quorums)
    if not family or family[0] == 0:
        raise ValueError("the dual needs a non-empty family of non-empty sets")
    result = [0]
    for q in family:
        bits = [1 << i for i in indexes_of(q)]
        missed = [t for t in result if not t & q]
        check_count(len(result) + len(missed) * len(bits), "the dual")
        result = minimal_masks([t for t in result if t & q] + [t | b for t in missed for b in bits])
    return as_frozensets(result)


def _any_of(n: int, k: int, what: str) -> list[int]:
    """Return every k-subset of n nodes as masks."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise ValueError(f"{what} must be an int in 1..{n}, got {k!r}")
    check_count(math.comb(n, k), f"any {k} of {n}")
    return [sum(1 << i for i in chosen) for chosen in itertools.combinations(range(n), k)]


def _reaching(votes: list[int], threshold: int, what: str) -> list[int]:
    """Return the minimal sets of nodes whose votes reach ``threshold``."""
    total = sum(votes)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= total:
        raise ValueError(f"{what} must be an int in 1..{total} (the total votes), got {threshold!r}")
    order = sorted((i for i, v in enumerate(votes) if v > 0), key=lambda i: -votes[i])
    left = list(itertools.accumulate(votes[i] for i in reversed(order)))[::-1]  # votes of order[j:]
    found: list[int] = []
    # Depth-first, adding nodes by decreasing votes: the last one added is the smallest, so a set
    # that reaches the threshold with it (and not before) is minimal; its supersets never are.
    stack = [(0, 0, 0)]  # (next position in order, mask, votes of mask)
    while stack:
        start, mask, sum_votes = stack.pop()
        for j in range(start, len(order)):
            if sum_votes + left[j] < threshold:
                break
            node, reached = order[j], sum_votes + votes[order[j]]
            if reached >= threshold:
                found.append(mask | 1 << node)
                check_count(len(found), f"{threshold} votes", exact=False)
            else:
                stack.append((j + 1, mask | 1 << node, reached))
    return found


def _grid_quorums(shape: str, rows: int, cols: int, side: str) -> list[int]:
    """Return the quorums of one grid shape as masks (node r * cols + c at row r, column c)."""
    if shape not in GRID_SHAPES:
        raise ValueError(f"grid {side} shape {shape!r} is not one of {', '.join(GRID_SHAPES)}")
    by_row = [[1 << (r * cols + c) for c in range(cols)] for r in range(rows)]
    by_col = [list(column) for column in zip(*by_row, strict=True)]
    lines = by_row if shape.startswith("row") else by_col
    if shape in ("row", "column"):
        return [sum(line) for line in lines]
    if shape.endswith("_cover") and "plus" not in shape:
        return _one_from_each(lines, f"grid {side} {shape}")
    if shape == "row_and_column":
        return [sum(row) | sum(column) for row in by_row for column in by_col]
    check_count(len(lines) * math.prod(map(len, lines[1:])), f"grid {side} {shape}")
    others = [lines[:i] + lines[i + 1 :] for i in range(len(lines))]
    return [sum(line) | m for line, rest in zip(lines, others, strict=True) for m in _one_from_each(rest, "")]


def _one_from_each(lines: list[list[int]], what: str) -> list[int]:
    """Return every set made of one node from each line."""
    check_count(math.prod(map(len, lines)), what)
    return [sum(choice) for choice in itertools.product(*lines)]


def _first_disjoint(a: Sequence[frozenset[int]], b: Sequence[frozenset[int]]) -> tuple[int, int] | None:
    """Return the indexes of the first quorum of ``a`` and the first of ``b`` that share no node."""
    import numpy as np  # one vector test per quorum of a, so R x W pairs cost R Python steps

    b_masks = [mask_of(q) for q in b]
    wide = max(b_masks).bit_length() > 64  # beyond 64 nodes, Python ints in an object array
    packed = np.array(b_masks, dtype=object if wide else np.uint64)
    for i, q in enumerate(a):
        misses = np.flatnonzero((packed & (mask_of(q) if wide else np.uint64(mask_of(q)))) == 0)
        if misses.size:
            return i, int(misses[0])
    return None


def _check_votes(names: tuple[str, ...], votes: Mapping[str, int] | Sequence[int]) -> list[int]:
    if isinstance(votes, Mapping):
        if set(votes) != set(names):
            missing, extra = sorted(set(names) - set(votes)), sorted(set(votes) - set(names))
            raise ValueError(f"votes must name every node once: missing {missing}, unknown {extra}")
        votes = [votes[name] for name in names]
    if len(votes) != len(names):
        raise ValueError(f"votes gives {len(votes)} counts for {len(names)} nodes")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in votes):
        raise ValueError(f"votes must be non-negative ints, got {list(votes)}")
    return list(votes)


def _masks(quorums: Iterable[Iterable[int]], n: int, side: str) -> list[int]:
    masks = []
    for quorum in quorums:
        members = set(quorum)
        if not members or not all(isinstance(i, int) and 0 <= i < n for i in members):
            raise ValueError(
                f"{side}: a quorum must be a non-empty set of node indexes 0..{n - 1}, got {quorum}"
            )
        masks.append(mask_of(members))
    if not masks:
        raise ValueError(f"{side}: a quorum system needs at least one quorum")
    return masks


def _sizes(quorums: tuple[frozenset[int], ...]) -> str:
    low, high = min(map(len, quorums)), max(map(len, quorums))
    noun = "quorum" if len(quorums) == 1 else "quorums"
    return f"{len(quorums)} {noun} of {low}" + (f"-{high}" if high > low else "")
