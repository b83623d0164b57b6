"""Named, independent random streams derived from one root seed.

Every consumer of randomness asks for a stream by name (``"network.latency"``, ``"workload.keys"``),
so adding or changing one consumer never shifts the numbers another one sees. This is what gives a
sweep common random numbers across its points.
"""

from __future__ import annotations

import zlib

import numpy as np


class RandomStreams:
    """Factory of ``numpy.random.Generator`` objects keyed by a stable name."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def generator(self, name: str) -> np.random.Generator:
        """Return a fresh generator for ``name``; the same (seed, name) always gives the same numbers."""
        key = zlib.crc32(name.encode("utf-8"))
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(key,))))
