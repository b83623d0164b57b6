"""Stable sorts by an integer key, 16 bits a pass: numpy radix-sorts 16-bit integers, many times
faster than it sorts 64-bit ones. The checkers sort whole histories by key, client or rank."""

from __future__ import annotations

import numpy as np


def by_key(key: np.ndarray, *minor: np.ndarray) -> np.ndarray:
    """Return ``np.lexsort((*minor, key))``: the stable order by the integer ``key``, then by ``minor``
    (the last of them first)."""
    order = np.lexsort(minor) if minor else None  # None: the rows in their order
    low, high = (int(key.min()), int(key.max())) if len(key) else (0, 0)
    # The digits of key - low; of the key itself if it has only one (so no copy to subtract from).
    small = low >= 0 and high < 2**16
    offset = key if small else (key.astype(np.int64, copy=False) - low).view(np.uint64)  # undoes wrap-around
    for shift in range(0, max((high - low).bit_length(), 1), 16):  # least significant digit first
        digit = offset if order is None else offset[order]
        step = np.argsort((digit >> shift if shift else digit).astype(np.uint16), kind="stable")
        order = step if order is None else order[step]
    return order
