"""Consistent hashing: which N nodes hold a key (its preference list)."""

from __future__ import annotations

import hashlib
from bisect import bisect_right

_MASK = (1 << 64) - 1


def hash_key(key: int) -> int:
    """Return a well-mixed 64-bit hash of an integer key (splitmix64; stable across runs)."""
    z = (key + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _hash_token(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class Ring:
    """A ring of ``vnodes`` tokens per node; a key's replicas are the first ``n`` distinct nodes
    clockwise from its hash (Dynamo's preference list). With ``per_region`` counts (Cassandra's
    NetworkTopologyStrategy), the walk takes a node only while its region still needs replicas."""

    def __init__(
        self,
        node_names: list[str],
        vnodes: int,
        n: int,
        regions: list[str] | None = None,
        per_region: dict[str, int] | None = None,
    ):
        tokens = sorted(
            (_hash_token(f"{name}#{v}"), i) for i, name in enumerate(node_names) for v in range(vnodes)
        )
        self._hashes = [h for h, _ in tokens]
        owners = [i for _, i in tokens]
        self._orders = [self._walk(owners, start, len(node_names)) for start in range(len(owners))]
        if per_region:
            self._lists = [self._by_region(order, regions, per_region) for order in self._orders]
        else:
            self._lists = [order[:n] for order in self._orders]
        self._cache: dict[int, tuple[int, ...]] = {}

    @staticmethod
    def _walk(owners: list[int], start: int, n: int) -> tuple[int, ...]:
        chosen: list[int] = []
        for step in range(len(owners)):
            node = owners[(start + step) % len(owners)]
            if node not in chosen:
                chosen.append(node)
                if len(chosen) == n:
                    break
        return tuple(chosen)

    @staticmethod
    def _by_region(order: tuple[int, ...], regions: list[str], per_region: dict[str, int]) -> tuple[int, ...]:
        wanted = dict(per_region)
        chosen = []
        for node in order:
            if wanted.get(regions[node], 0) > 0:
                wanted[regions[node]] -= 1
                chosen.append(node)
        return tuple(chosen)

    def replicas(self, key: int) -> tuple[int, ...]:
        """Return the node indices holding ``key``, in preference order."""
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._lists[self._position(key)]
        return found

    def preference(self, key: int) -> tuple[int, ...]:
        """Return every node in ``key``'s ring order: its replicas, then the stand-ins in turn."""
        return self._orders[self._position(key)]

    def _position(self, key: int) -> int:
        return bisect_right(self._hashes, hash_key(key)) % len(self._hashes)

    def share_keys(self, a: int, b: int) -> bool:
        """Return True if some key has both nodes among its replicas."""
        return any(a in replicas and b in replicas for replicas in self._lists)
