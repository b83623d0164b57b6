"""Background repair: hinted handoff and anti-entropy, each a periodic round of messages."""

from __future__ import annotations

import simpy

from qsim.model.clock import call_later
from qsim.model.leaderless.ring import Ring
from qsim.model.network import ANTI_ENTROPY, Network


class HintedHandoff:
    """Every ``interval_ms`` each live stand-in offers its hints to their owners (Dynamo).

    An owner that receives hints applies them (last writer wins) and acknowledges; the stand-in
    then forgets them. Hints offered to a node that is still down are lost in the network and
    offered again next round.
    """

    def __init__(self, env: simpy.Environment, network: Network, replicas: list, interval_ms: float):
        self._env = env
        self._network = network
        self._replicas = replicas
        self._interval = interval_ms

    def start(self) -> None:
        call_later(self._env, self._interval, self._round)

    def _round(self, _event) -> None:
        for replica in self._replicas:
            if not self._network.down[replica.index]:
                replica.offer_hints(self._replicas)
        call_later(self._env, self._interval, self._round)


class AntiEntropy:
    """Every ``interval_ms`` each pair of nodes that share keys reconciles them.

    Node a sends b its versions of the keys they share; b applies the newer ones and answers with
    the versions it holds that are newer still, which a applies: two ``anti_entropy`` messages
    per pair per round, whatever differs (a digest exchange, as Merkle trees make it cheap).
    """

    def __init__(
        self, env: simpy.Environment, network: Network, replicas: list, ring: Ring, interval_ms: float
    ):
        self._env = env
        self._network = network
        self._replicas = replicas
        self._ring = ring
        self._interval = interval_ms
        count = len(replicas)
        self._pairs = [(a, b) for a in range(count) for b in range(a + 1, count) if ring.share_keys(a, b)]

    def start(self) -> None:
        call_later(self._env, self._interval, self._round)

    def _round(self, _event) -> None:
        for a, b in self._pairs:
            if self._network.down[a]:
                continue
            self._network.send(a, b, ANTI_ENTROPY, self._at_peer, None, (a, b, self._shared(a, b)))
        call_later(self._env, self._interval, self._round)

    def _shared(self, holder: int, other: int) -> dict:
        """The versions ``holder`` has of the keys it and ``other`` both replicate."""
        replicas = self._ring.replicas
        return {
            key: version
            for key, version in self._replicas[holder].store.items()
            if holder in replicas(key) and other in replicas(key)
        }

    def _at_peer(self, message) -> None:
        a, b, versions = message.arg
        newer = self._replicas[b].merge_all(versions)
        missing = {key: v for key, v in self._shared(b, a).items() if key not in versions}  # a lacks them
        self._network.send(b, a, ANTI_ENTROPY, self._at_origin, None, (a, newer | missing))

    def _at_origin(self, message) -> None:
        a, newer = message.arg
        self._replicas[a].merge_all(newer)
