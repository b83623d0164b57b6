"""Quorums drawn from a quorum system's strategy: ``quorum.system`` with any strategy but ``selection``.

Every key is stored on every node of the system, and each attempt of an operation uses quorums of
the system (sets of nodes), not r or w of the key's replicas:

- Fan-out ``quorum``: the attempt draws one quorum from the strategy (a probability per minimal
  quorum) and sends to its members only; it completes when every member has answered. An
  f-resilient strategy (``optimal`` with ``f``) draws a set that still holds a quorum after any f
  of its nodes fail, and completes as soon as the nodes that answered hold a quorum.
- Fan-out ``all``: the attempt sends to every node, and completes as soon as the nodes that
  answered hold some quorum (a table over the 2^n subsets up to :data:`TABLE_NODES` nodes).

A coordinator that suspects some node (its failure detector) first draws among the strategy's
quorums with no suspected member, then among any such quorum of the system; only when every quorum
has a suspected member does the failover rule act (``quorum.failover``):

- ``strict``: the drawn quorum anyway (its attempt waits for the suspect, and usually times out).
- ``sloppy``: the drawn quorum, each suspected member replaced by the first unsuspected node
  outside it in the key's ring order, which holds a hint for it; any that many replies complete.
  With fan-out ``all`` no node lies outside the system, so sloppy is strict.
- ``shrink``: a quorum with the fewest suspected members (drawn evenly among those), without
  them; it completes with all of its unsuspected members (``quorum.shrink: drop``) or a majority
  of them (``majority``).

The coordinator counts the requests it sends each node, so a run reports each node's load (the
fraction of attempts that asked it) beside the strategy's analytic load.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

import numpy as np

from qsim.distributions import uniform_sampler
from qsim.model.leaderless.op import Op
from qsim.model.leaderless.ring import Ring
from qsim.model.network import READ_REQUEST, READ_RESPONSE, WRITE_ACK, WRITE_REQUEST, Network
from qsim.model.timeouts import FailureDetector
from qsim.quorums import load as ql
from qsim.rng import RandomStreams
from qsim.scenario.schema import Scenario
from qsim.scenario.systems import mean_service_ms, node_availability, node_capacities, quorum_system

TABLE_NODES = 20  # up to 2^20 subsets: a 1 MB table says at once whether replies hold a quorum


def resilient(quorum) -> bool:
    """Whether the strategy draws f-resilient sets, which hold several quorums (optimal with f)."""
    return quorum.system.strategy == "optimal" and quorum.system.f > 0


def counts_repliers(quorum) -> bool:
    """Whether an attempt completes when the nodes that answered hold a quorum (not by a count).

    Then replies must say who sent them: fan-out all, or an f-resilient strategy.
    """
    return "all" in (quorum.read_fanout, quorum.write_fanout) or resilient(quorum)


class Side:
    """The minimal quorums of reads or of writes, and whether a set of nodes holds one."""

    def __init__(self, quorums: Sequence[frozenset[int]], n: int):
        self.quorums = [tuple(sorted(q)) for q in quorums]
        self.masks = [sum(1 << i for i in q) for q in quorums]
        self._table = ql.contains_quorum(n, quorums).tobytes() if n <= TABLE_NODES else None

    def holds(self, nodes: int) -> bool:
        """Whether the nodes of mask ``nodes`` hold some quorum."""
        if self._table is not None:
            return self._table[nodes] == 1
        return any(m & nodes == m for m in self.masks)


class Draw:
    """A distribution over one side's quorums, drawn from with one uniform number."""

    def __init__(self, quorums: list[tuple[int, ...]], probs: Sequence[float]):
        kept = [(q, float(p)) for q, p in zip(quorums, probs, strict=True) if p > 0]
        self.quorums = [q for q, _ in kept]
        self.probs = [p for _, p in kept]
        self.cumulative = list(np.cumsum(self.probs))
        self.total = self.cumulative[-1]

    def pick(self, u: float) -> tuple[int, ...]:
        """Return the quorum that the uniform number ``u`` (in [0, 1)) selects."""
        return self.quorums[min(bisect_right(self.cumulative, u * self.total), len(self.quorums) - 1)]


class QuorumChooser:
    """Chooses each attempt's targets from the system's strategy, and says when replies complete it."""

    def __init__(
        self,
        scenario: Scenario,
        network: Network,
        ring: Ring,
        detector: FailureDetector | None,
        streams: RandomStreams,
    ):
        quorum, spec = scenario.quorum, scenario.quorum.system
        self.system = quorum_system(scenario)
        self.strategy_name = spec.strategy
        self.read_fraction = scenario.workload.read_fraction
        n = self.n = self.system.n
        self.sides = {False: Side(self.system.reads, n), True: Side(self.system.writes, n)}
        self.capacities = node_capacities(scenario)
        self._scenario, self._network, self._ring, self._detector = scenario, network, ring, detector
        self._failover, self._drop = quorum.failover, quorum.shrink == "drop"
        self._fan_all = {True: quorum.write_fanout == "all", False: quorum.read_fanout == "all"}
        self._uniform = uniform_sampler(streams.generator("coordinator.quorum"))
        self._resilient = resilient(quorum)
        self.strategy = self._strategy()  # None for latency_optimal: one per coordinating endpoint
        self._draws: dict[int, dict[bool, Draw]] = {}
        self._trusted: dict[tuple[bool, int, int], Draw | None] = {}
        self.sent = [0] * n  # requests sent to each node
        self.attempts = {False: 0, True: 0}
        self._everyone = tuple(range(n))

    # --- strategies ----------------------------------------------------------------------------

    def _strategy(self) -> ql.Strategy | None:
        system, spec = self.system, self._scenario.quorum.system
        if spec.strategy == "uniform":
            return ql.uniform_strategy(system.reads, system.writes)
        if spec.strategy == "optimal":
            return ql.optimal_strategy(
                system.n, system.reads, system.writes, self.read_fraction, self.capacities, spec.f
            )
        return None

    def _draws_for(self, endpoint: int) -> dict[bool, Draw]:
        """The draws of ``endpoint``'s attempts: one for every endpoint, but for latency_optimal."""
        key = endpoint if self.strategy is None else 0
        draws = self._draws.get(key)  # once per attempt: one lookup
        if draws is None:
            strategy = self.strategy or self._latency_strategy(endpoint)
            draws = self._draws[key] = {
                False: Draw([tuple(sorted(q)) for q in strategy.reads], strategy.read_probs),
                True: Draw([tuple(sorted(q)) for q in strategy.writes], strategy.write_probs),
            }
        return draws

    def _latency_strategy(self, endpoint: int) -> ql.Strategy:
        """The least-latency strategy seen from ``endpoint`` (under ``max_load`` if given)."""
        system, max_load = self.system, self._scenario.quorum.system.max_load
        reads, writes = (self.expected_ms(endpoint, write) for write in (False, True))
        if max_load is not None:
            return ql.latency_optimal_strategy(
                system.n,
                system.reads,
                system.writes,
                self.read_fraction,
                reads,
                max_load,
                write_latency_ms=writes,
            )
        return ql.Strategy(
            system.reads, _fastest(system.reads, reads), system.writes, _fastest(system.writes, writes)
        )

    def expected_ms(self, endpoint: int, write: bool) -> list[float]:
        """Each node's expected time to answer ``endpoint``: request, mean service, reply (ms)."""
        request, reply = (WRITE_REQUEST, WRITE_ACK) if write else (READ_REQUEST, READ_RESPONSE)
        defaults = self._scenario.cluster.replica
        route = self._network.route_mean
        return [
            route(request, endpoint, i)
            + mean_service_ms(node.service_time or defaults.service_time)
            + route(reply, i, endpoint)
            for i, node in enumerate(self._scenario.cluster.nodes)
        ]

    # --- choosing ------------------------------------------------------------------------------

    def targets(self, op: Op, src: int) -> tuple[tuple[int, ...] | list[int], dict[int, int] | None]:
        """Return the attempt's targets and, for sloppy stand-ins, {stand-in: owner}; set what completes it.

        ``op.needed`` becomes the replies that complete a drawn quorum; with fan-out all, ``op.need``
        becomes the side, whose quorum the replying nodes must hold (``op.heard``, a mask).
        """
        write = op.write
        self.attempts[write] += 1
        detector = self._detector
        suspected = 0
        if detector is not None and detector.suspects_any(src):
            suspected = sum(1 << i for i in range(self.n) if detector.suspects(src, i))
        if self._fan_all[write]:
            if (
                suspected
                and self._failover == "shrink"
                and self._trusted_draw(write, None, suspected) is None
            ):
                return self._around(op, src, write, None, suspected)
            return self._to_everyone(op)
        draws = self._draws_for(src)
        if not suspected:
            chosen = draws[write].pick(self._uniform())
            op.needed = len(chosen)
            if self._resilient:  # an f-resilient set: done when the nodes that answered hold a quorum
                op.need, op.heard = self.sides[write], 0
            op.pool = chosen
            for node in chosen:
                self.sent[node] += 1
            return chosen, None
        return self._around(op, src, write, draws[write], suspected)

    def _to_everyone(self, op: Op) -> tuple[tuple[int, ...], None]:
        op.need, op.heard, op.needed = self.sides[op.write], 0, 0
        op.pool = self._everyone
        for node in self._everyone:
            self.sent[node] += 1
        return self._everyone, None

    def _around(self, op: Op, src: int, write: bool, draw: Draw | None, suspected: int):
        """Targets when ``src`` suspects the nodes of mask ``suspected`` (``draw`` None: fan-out all)."""
        trusted = self._trusted_draw(write, draw, suspected)
        hints = None
        if trusted is not None:
            chosen = list(trusted.pick(self._uniform()))
            op.needed = len(chosen)
            if self._resilient and draw is not None:
                op.need, op.heard = self.sides[write], 0
        elif self._failover == "shrink":
            owners = self._least_suspected(write, suspected).pick(self._uniform())
            chosen = [node for node in owners if not suspected >> node & 1] or list(owners)
            op.needed = len(chosen) if self._drop else len(chosen) // 2 + 1
            op.need = None
        else:
            chosen = list(draw.pick(self._uniform()))
            op.needed = len(chosen)
            if self._failover == "sloppy":
                chosen, hints = self._stand_ins(op.key, chosen, suspected)
        op.pool = tuple(chosen)
        for node in chosen:
            self.sent[node] += 1
        return chosen, hints

    def _trusted_draw(self, write: bool, draw: Draw | None, suspected: int) -> Draw | None:
        """The strategy's quorums without a suspected member (else any such quorum), or None."""
        key = (write, suspected, id(draw))
        if key not in self._trusted:
            listed = () if draw is None else zip(draw.quorums, draw.probs, strict=True)
            clear = [(q, p) for q, p in listed if not _mask(q) & suspected]
            if not clear:
                side = self.sides[write]
                clear = [(q, 1.0) for q, m in zip(side.quorums, side.masks, strict=True) if not m & suspected]
            self._trusted[key] = Draw([q for q, _ in clear], [p for _, p in clear]) if clear else None
        return self._trusted[key]

    def _least_suspected(self, write: bool, suspected: int) -> Draw:
        """The system's quorums with the fewest suspected members, equally likely (for shrink)."""
        key = (write, suspected, -1)
        if key not in self._trusted:
            side = self.sides[write]
            counts = [(m & suspected).bit_count() for m in side.masks]
            fewest = [q for q, c in zip(side.quorums, counts, strict=True) if c == min(counts)]
            self._trusted[key] = Draw(fewest, [1.0] * len(fewest))
        return self._trusted[key]

    def _stand_ins(self, key: int, chosen: list[int], suspected: int) -> tuple[list[int], dict[int, int]]:
        """Replace each suspected member by the next unsuspected non-member in ring order (a hint holder)."""
        spare = iter(
            node for node in self._ring.preference(key) if node not in chosen and not suspected >> node & 1
        )
        hints, targets = {}, []
        for node in chosen:
            stand_in = next(spare, None) if suspected >> node & 1 else None
            if stand_in is None:
                targets.append(node)
            else:
                targets.append(stand_in)
                hints[stand_in] = node
        return targets, hints

    @staticmethod
    def heard(op: Op, node: int) -> bool:
        """Count a reply of a fan-out-all attempt; return True when the replying nodes hold a quorum."""
        op.replies += 1
        op.heard |= 1 << node
        return op.need.holds(op.heard)

    # --- what a run reports --------------------------------------------------------------------

    def summary(self) -> dict:
        """The ``quorum_system`` section: the system, and each node's load measured and on paper."""
        attempts = self.attempts[False] + self.attempts[True]
        fixed = self._effective_strategy()
        analytic = None if fixed is None else ql.node_load(self.n, fixed, self.read_fraction)
        capacity = None
        if fixed is not None and self.capacities is not None:
            capacity = 1.0 / ql.system_load(self.n, fixed, self.read_fraction, self.capacities)
        system, up = self.system, node_availability(self._scenario)
        available = ql.availability(system.n, system.reads, system.writes, up)
        return {
            "system": system.describe(),
            "kind": self._scenario.quorum.system.kind,
            "writes_intersect": system.writes_intersect(),
            "resilience": {
                "read": ql.resilience(system.n, system.reads),
                "write": ql.resilience(system.n, system.writes),
            },
            "availability": {
                "read": available.read,
                "write": available.write,
                "method": available.method,
                "nodes_up": dict(zip(system.names, up, strict=True)),
            },
            "strategy": self.strategy_name,
            "read_fraction": self.read_fraction,
            "fanout": {
                "read": "all" if self._fan_all[False] else "quorum",
                "write": "all" if self._fan_all[True] else "quorum",
            },
            "attempts": attempts,
            "load": None if analytic is None else float(analytic.max()),
            "capacity_ops_s": capacity,
            "nodes": {
                name: {
                    "load": self.sent[i] / attempts if attempts else 0.0,
                    "analytic_load": None if analytic is None else float(analytic[i]),
                    "se": None if analytic is None else _se(float(analytic[i]), attempts),
                    "requests": self.sent[i],
                }
                for i, name in enumerate(self.system.names)
            },
        }

    def _effective_strategy(self) -> ql.Strategy | None:
        """What the attempts were drawn from, a fan-out-all side asking every node (None: no one strategy).

        latency_optimal draws from a strategy per coordinating endpoint: one only if one endpoint
        coordinated.
        """
        strategy = self.strategy
        if strategy is None:
            if len(self._draws) != 1:
                return None
            draws = next(iter(self._draws.values()))
            strategy = ql.Strategy(*_side_of(draws[False]), *_side_of(draws[True]))
        everyone = ((frozenset(range(self.n)),), np.ones(1))
        reads = everyone if self._fan_all[False] else (strategy.reads, strategy.read_probs)
        writes = everyone if self._fan_all[True] else (strategy.writes, strategy.write_probs)
        return ql.Strategy(tuple(reads[0]), reads[1], tuple(writes[0]), writes[1])


def _mask(quorum: tuple[int, ...]) -> int:
    return sum(1 << i for i in quorum)


def _fastest(quorums: Sequence[frozenset[int]], expected_ms: list[float]) -> np.ndarray:
    """Probabilities spread evenly over the quorums whose slowest member is fastest."""
    slowest = np.array([max(expected_ms[i] for i in q) for q in quorums])
    best = slowest <= slowest.min() * (1 + 1e-9) + 1e-12
    return best / best.sum()


def _side_of(draw: Draw) -> tuple[tuple[frozenset[int], ...], np.ndarray]:
    return tuple(frozenset(q) for q in draw.quorums), np.asarray(draw.probs) / draw.total


def _se(p: float, count: int) -> float:
    """The standard error of a fraction of ``count`` independent draws, each in with probability p."""
    return float(np.sqrt(p * (1 - p) / count)) if count else 0.0
