"""Wing & Gong's linearizability search with Lowe's memoization, one key at a time, on a time budget.

The just-in-time linearization of Lowe (2017) as the porcupine checker does it: the calls and
returns of a key's operations in one doubly linked list, in time order; the search linearizes the
first call it can, lifting the call and its return out of the list, and backtracks when it meets a
return whose call it has not linearized. A cache of (linearized set as a bitset, register value)
keeps it from exploring the same configuration twice. The register holds the op id of the last write
(-1 at first); a write always succeeds, a read only if it returned the value held.

Two things keep it small on long histories. A key's operations are cut into stretches wherever
every operation so far ended before the next one started: everything before such a pause is
ordered before everything after it, so the search runs stretch by stretch, carrying the set of
values the register can hold at the pause. And a failed write that was read ends, for the search,
when the first of its reads ends: it must come before each of its reads, so that end orders it
before nothing the read's own end does not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from qsim.checks.register import INITIAL, Registers, dense_rank

VALID, INVALID, UNKNOWN = "valid", "invalid", "unknown"
CLOCK_EVERY = 1024  # search steps between looks at the clock


@dataclass(frozen=True)
class Stretches:
    """The live rows of a history in (key, start) order, cut at every pause in each key.

    Attributes:
        rows: the rows, in order.
        bounds: where each stretch begins in ``rows``, then len(rows).
        key_index: each stretch's key.
    """

    rows: np.ndarray
    bounds: np.ndarray
    key_index: np.ndarray


def stretches(reg: Registers, end: np.ndarray) -> Stretches:
    """Cut the live rows of each key where every earlier operation ended before the next started."""
    rows = np.flatnonzero(reg.live)
    rows = rows[np.lexsort((reg.start[rows], reg.key_index[rows]))]
    keys = reg.key_index[rows]
    m = len(rows)
    # Ranks on one (key, time) scale: a running maximum then never carries over from another key.
    rank = dense_rank(np.concatenate([keys, keys]), np.concatenate([reg.start[rows], end[rows]]))
    started, ended = rank[:m], rank[m:]
    cut = np.ones(m, bool)
    cut[1:] = np.maximum.accumulate(ended)[:-1] < started[1:]
    bounds = np.append(np.flatnonzero(cut), m)
    return Stretches(rows, bounds, keys[bounds[:-1]])


def search_ends(reg: Registers) -> np.ndarray:
    """Each row's end for the search: a failed write that was read ends when its first reader does."""
    end = reg.end.copy()
    readers = np.flatnonzero(reg.source >= 0)
    first = np.full(len(end), np.inf)
    np.minimum.at(first, reg.source[readers], reg.end[readers])
    failed = reg.failed_write
    end[failed] = first[failed]
    return end


class Search:
    """The search over a whole history, ready to check keys one at a time."""

    def __init__(self, reg: Registers) -> None:
        end = search_ends(reg)
        self.parts = stretches(reg, end)
        rows = self.parts.rows
        value = np.where(reg.source[rows] >= 0, reg.op_id[np.maximum(reg.source[rows], 0)], INITIAL)
        value = np.where(reg.is_write[rows], reg.op_id[rows], value)
        columns = (reg.start[rows], end[rows], reg.is_write[rows], value)
        self.ops = list(zip(*(column.tolist() for column in columns), strict=True))
        self.bounds = self.parts.bounds.tolist()

    def key(self, key_index: int, budget_s: float) -> tuple[str, np.ndarray]:
        """Return the verdict on one key and, if invalid, the rows of the stretch that has no order."""
        deadline = time.perf_counter() + budget_s
        first = np.searchsorted(self.parts.key_index, key_index, side="left")
        last = np.searchsorted(self.parts.key_index, key_index, side="right")
        states = {INITIAL}
        for part in range(first, last):
            lo, hi = self.bounds[part], self.bounds[part + 1]
            states = self._after(self.ops[lo:hi], states, deadline)
            if states is None:
                return UNKNOWN, self.parts.rows[:0]
            if not states:
                return INVALID, self.parts.rows[lo:hi]
        return VALID, self.parts.rows[:0]

    @staticmethod
    def _after(ops: list[tuple], states: set[int], deadline: float) -> set[int] | None:
        """The values the register can hold after ``ops`` from any of ``states``; None if out of time."""
        if len(ops) == 1:
            _, _, is_write, value = ops[0]
            return {value} if is_write or value in states else set()
        if time.perf_counter() > deadline:
            return None
        return end_states(ops, states, deadline)


def end_states(ops: list[tuple], states: set[int], deadline: float) -> set[int] | None:
    """The values the register can hold once every op in ``ops`` is linearized, from any of ``states``.

    Args:
        ops: (start_ms, end_ms, is_write, value) per operation.
        states: the values it may hold before them.
        deadline: a ``time.perf_counter()`` reading; past it the answer is None (unknown).
    """
    links = _Links(ops)
    ends: set[int] = set()
    cache: set[tuple[int, int]] = set()
    steps = 0
    for initial in states:
        state, linearized, stack = initial, 0, []
        entry = links.next[0]
        while True:
            steps += 1
            if steps % CLOCK_EVERY == 0 and time.perf_counter() > deadline:
                return None
            if entry == links.tail:  # everything is linearized
                ends.add(state)
            elif links.is_call[entry]:
                op = links.op[entry]
                _, _, is_write, value = ops[op]
                if is_write or value == state:
                    config = (linearized | (1 << op), value)
                    if config not in cache:
                        cache.add(config)
                        stack.append((entry, state))
                        links.lift(entry)
                        linearized, state = config
                        entry = links.next[0]
                        continue
                entry = links.next[entry]
                continue
            if not stack:  # a return whose call cannot be linearized, or done: backtrack
                break
            entry, state = stack.pop()
            linearized &= ~(1 << links.op[entry])
            links.unlift(entry)
            entry = links.next[entry]
    return ends


class _Links:
    """The calls and returns of some operations as a doubly linked list (0 is the head)."""

    def __init__(self, ops: list[tuple]) -> None:
        # At equal times calls come first: an operation ending at t and one starting at t are concurrent.
        entries = sorted(
            [(op[0], 0, i) for i, op in enumerate(ops)] + [(op[1], 1, i) for i, op in enumerate(ops)]
        )
        size = len(entries)
        self.tail = size + 1
        self.next = [*range(1, size + 2), -1]
        self.prev = [-1, *range(size + 1)]
        self.op = [-1] + [i for _, _, i in entries] + [-1]
        self.is_call = [False] + [kind == 0 for _, kind, _ in entries] + [False]
        self.match = [-1] * (size + 2)
        returns = {i: position + 1 for position, (_, kind, i) in enumerate(entries) if kind == 1}
        for position, (_, kind, i) in enumerate(entries):
            if kind == 0:
                self.match[position + 1] = returns[i]

    def _unlink(self, entry: int) -> None:
        self.next[self.prev[entry]] = self.next[entry]
        self.prev[self.next[entry]] = self.prev[entry]

    def _relink(self, entry: int) -> None:
        self.next[self.prev[entry]] = entry
        self.prev[self.next[entry]] = entry

    def lift(self, call: int) -> None:
        """Take a call and its return out of the list."""
        self._unlink(call)
        self._unlink(self.match[call])

    def unlift(self, call: int) -> None:
        """Put back a call and its return, the last lifted first."""
        self._relink(self.match[call])
        self._relink(call)
