"""The quorum system a leaderless scenario uses: ``quorum.system``, its rules, and the built system.

``quorum.system`` is one of (the nodes are the cluster's nodes, in order)::

    {kind: threshold}                                  # any quorum.r of quorum.n (the default)
    {kind: weighted, votes: {n1: 3, n2: 1, ...}, read_votes: 3, write_votes: 4}
    {kind: grid, rows: 2, cols: 3, read: row, write: row_cover}
    {kind: expressions, read: "n1*n2 + n3", write: null}  # a missing side is the other's dual

Each kind also takes ``strategy``, how the coordinator picks an attempt's quorum:

- ``selection``: today's replica selection (``quorum.replica_selection``) of r or w of the key's
  n replicas; threshold only, and its default.
- ``uniform``: every minimal quorum equally often (the default of the other kinds).
- ``optimal``: the strategy of least load for the workload's read fraction, weighing each node by
  its capacity (concurrency / mean service time) when every node has a service time; with
  ``f: k`` (default 0) among quorums that still complete when any k of their nodes fail.
- ``latency_optimal``: per coordinating endpoint, the quorums of least expected latency (the
  slowest member's mean request, service and reply time), ties split evenly; with ``max_load``
  (a fraction of operations) the least-latency strategy under which no node serves more.

With any strategy but ``selection`` every key is stored on every node of the system: the system's
quorums are sets of nodes, not of a key's replicas, and quorum.n, r and w do not apply.

Left out (null), the scenario's resolved form and run id are those of a scenario without the field.
:func:`quorum_system` builds the :class:`~qsim.quorums.QuorumSystem`; :func:`system_problems` is the
cross-field check that makes every problem of it a (path, message) pair before anything runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from qsim.distributions import Exponential, Int, Real
from qsim.errors import ScenarioError, problems
from qsim.inputs import brief
from qsim.quorums import GRID_SHAPES, MAX_QUORUMS, QuorumSystem, parse_expression
from qsim.scenario.base import Model

if TYPE_CHECKING:
    from qsim.scenario.schema import Quorum, Scenario

PATH = "quorum.system"
DEFAULT_UP = 0.99  # a node's availability when no random_crashes fault says otherwise

GridShape = Literal[tuple(GRID_SHAPES)]
STRATEGIES = ("selection", "uniform", "optimal", "latency_optimal")


class _Chosen(Model):
    """How the coordinator picks each attempt's quorum from the system (see the module's text)."""

    strategy: Literal[STRATEGIES] = "uniform"
    f: Int = Field(0, ge=0, description="optimal: quorums that survive any f failures of their nodes")
    max_load: Real | None = Field(
        None, gt=0, le=1, description="latency_optimal: no node serves more than this fraction of operations"
    )

    def strategy_problems(self) -> list[tuple[str, str]]:
        """Return (sub-path, message) for options given to a strategy that does not use them."""
        found = []
        if self.f and self.strategy != "optimal":
            found.append(("f", f"applies to strategy: optimal, not {self.strategy}"))
        if self.max_load is not None and self.strategy != "latency_optimal":
            found.append(("max_load", f"applies to strategy: latency_optimal, not {self.strategy}"))
        return found


class Threshold(_Chosen):
    """Any ``quorum.r`` of ``quorum.n`` nodes read, any ``quorum.w`` write (today's N/R/W)."""

    kind: Literal["threshold"]
    strategy: Literal[STRATEGIES] = "selection"


class Weighted(_Chosen):
    """Gifford's weighted voting: a quorum is a minimal set of nodes whose votes reach the threshold."""

    kind: Literal["weighted"]
    votes: dict[str, Annotated[Int, Field(ge=0)]] = Field(description="every node's votes, by name")
    read_votes: Int = Field(ge=1, description="the votes a read needs")
    write_votes: Int = Field(ge=1, description="the votes a write needs")

    def problems(self, names: tuple[str, ...]) -> list[tuple[str, str]]:
        """Return (sub-path, message) for votes that do not match the nodes, or unreachable thresholds."""
        found = [
            (f"votes.{name}", f"unknown node {name!r}; nodes: {list(names)}")
            for name in self.votes
            if name not in names
        ]
        missing = [name for name in names if name not in self.votes]
        if missing:
            found.append(("votes", f"no votes for {missing}: give every node its votes (0 for none)"))
        total = sum(self.votes.get(name, 0) for name in names)
        found += [
            (field, f"{needed} is more than the total votes ({total})")
            for field, needed in (("read_votes", self.read_votes), ("write_votes", self.write_votes))
            if needed > total
        ]
        return found

    def build(self, names: tuple[str, ...]) -> QuorumSystem:
        """Return the weighted-voting system over ``names``."""
        return QuorumSystem.weighted(names, self.votes, self.read_votes, self.write_votes)


class Grid(_Chosen):
    """Nodes laid out row by row in a ``rows`` x ``cols`` grid; each side takes one grid shape."""

    kind: Literal["grid"]
    rows: Int = Field(ge=1)
    cols: Int = Field(ge=1)
    read: GridShape = Field("row", description="row, column, row_cover, column_cover, ...")
    write: GridShape = Field("row_cover", description="row_cover, row_plus_cover, row_and_column, ...")

    def problems(self, names: tuple[str, ...]) -> list[tuple[str, str]]:
        """Return (sub-path, message) if the grid does not hold exactly the cluster's nodes."""
        if self.rows * self.cols == len(names):
            return []
        return [
            (
                "rows",
                f"a {self.rows}x{self.cols} grid holds {self.rows * self.cols} nodes, and the cluster "
                f"has {len(names)}: rows x cols must be the node count",
            )
        ]

    def build(self, names: tuple[str, ...]) -> QuorumSystem:
        """Return the grid system over ``names`` (row r, column c is ``names[r * cols + c]``)."""
        return QuorumSystem.grid(names, self.rows, self.cols, self.read, self.write)


class Expressions(_Chosen):
    """Quorums as expressions over node names: ``a*b + c`` (``*`` all of, ``+`` any of), ``choose``."""

    kind: Literal["expressions"]
    read: str | None = Field(None, description="the read quorums; null = the dual of the writes")
    write: str | None = Field(None, description="the write quorums; null = the dual of the reads")

    @model_validator(mode="after")
    def _one_side(self):
        if self.read is None and self.write is None:
            raise problems(("read", "give a read expression, a write expression, or both"))
        return self

    def problems(self, names: tuple[str, ...]) -> list[tuple[str, str]]:
        """Return (sub-path, message) for each expression that does not parse or names an unknown node."""
        found = []
        for side, text in (("read", self.read), ("write", self.write)):
            if text is None:
                continue
            try:
                parse_expression(names, text, side)
            except ValueError as exc:
                found.append((side, str(exc)))
        return found

    def build(self, names: tuple[str, ...]) -> QuorumSystem:
        """Return the system of the expressions over ``names``."""
        return QuorumSystem.from_expressions(names, self.read, self.write)


KINDS = {"threshold": Threshold, "weighted": Weighted, "grid": Grid, "expressions": Expressions}


def _of_kind(value: object) -> object:
    """Validate a mapping as the model its ``kind`` names, each problem at its path below the field.

    A discriminated union would put the kind in every error's path (``quorum.system.grid.rows``).
    """
    if isinstance(value, Model):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a mapping with a kind ({', '.join(KINDS)}), found {brief(value)}")
    kind = value.get("kind")
    if kind not in KINDS:
        found = brief(kind) if "kind" in value else "no kind"
        raise problems(("kind", f"expected one of {', '.join(KINDS)}, found {found}"))
    fields = KINDS[kind].model_fields
    found = [(key, f"unknown key; {kind} takes: {', '.join(fields)}") for key in value if key not in fields]
    try:
        system = KINDS[kind].model_validate({k: v for k, v in value.items() if k in fields})
    except ValidationError as exc:
        from qsim.scenario.messages import format_errors  # it imports the schema, which imports this

        found += [tuple(line.split(": ", 1)) for line in format_errors(exc)]
    if found:
        raise problems(*found)
    return system


System = Annotated[Threshold | Weighted | Grid | Expressions, BeforeValidator(_of_kind)]
"""Any ``quorum.system``, chosen by its ``kind`` field."""


def uses_system(quorum: Quorum) -> bool:
    """Whether the coordinator picks quorums from ``quorum.system`` (not r or w of a key's replicas)."""
    return quorum.system is not None and quorum.system.strategy != "selection"


def spans_nodes(quorum: Quorum) -> bool:
    """Whether the system's quorums are sets of the cluster's nodes, so quorum.n does not apply."""
    return quorum.system is not None and quorum.system.kind != "threshold"


def system_problems(
    quorum: Quorum, nodes: tuple, read_fraction: float | None = None
) -> list[tuple[str, str]]:
    """Return (path, message) for every problem of ``quorum.system`` against the cluster's ``nodes``.

    Builds the system, so a read and a write quorum that do not meet are reported with their names,
    an ``f`` no set of nodes survives, and a ``max_load`` below the least load at ``read_fraction``.
    """
    spec = quorum.system
    if spec is None:
        return []
    if quorum.protocol != "leaderless":
        return [(PATH, f"kind {spec.kind} applies to protocol: leaderless only")]
    found = [(f"{PATH}.{sub}", message) for sub, message in spec.strategy_problems()]
    if spec.kind != "threshold" and spec.strategy == "selection":
        found.append(
            (
                f"{PATH}.strategy",
                "selection picks r or w of a key's replicas (threshold only); "
                "give uniform, optimal or latency_optimal",
            )
        )
    if uses_system(quorum):
        found += _options_problems(quorum, len(nodes))
    names = tuple(node.name for node in nodes)
    if spec.kind != "threshold":
        own = [(f"{PATH}.{sub}", message) for sub, message in spec.problems(names)]
        if own:
            return found + own
    try:
        system = spec.build(names) if spec.kind != "threshold" else None
    except ValueError as exc:  # too many quorums
        return [(PATH, str(exc))]
    if system is None:
        counts = isinstance(quorum.r, int) and isinstance(quorum.w, int)
        if not uses_system(quorum) or not counts or quorum.n != len(nodes):
            return found
        try:
            system = _threshold(names, quorum)
        except ScenarioError as exc:
            return found + [tuple(line.split(": ", 1)) for line in exc.problems]
    pair = system.intersection_problem()
    if pair is not None:
        read, write = (f"{{{', '.join(q)}}}" for q in pair)
        return [
            *found,
            (
                PATH,
                f"the read quorum {read} and the write quorum {write} share no node: a read could miss "
                "the latest write; every read quorum must meet every write quorum",
            ),
        ]
    return found + _strategy_problems(spec, system, read_fraction)


def _strategy_problems(spec, system: QuorumSystem, read_fraction: float | None) -> list[tuple[str, str]]:
    """Return (path, message) for an ``f`` or a ``max_load`` that no strategy of ``system`` meets."""
    from qsim.errors import QsimError
    from qsim.quorums import load as ql

    found = []
    if spec.f:
        for side, quorums in (("read", system.reads), ("write", system.writes)):
            try:
                ql.resilient_quorums(system.n, quorums, spec.f)
            except QsimError as exc:
                found.append((f"{PATH}.f", f"{spec.f}: {side} quorums: {exc}"))
    if spec.max_load is not None and read_fraction is not None:
        best = ql.optimal_strategy(system.n, system.reads, system.writes, read_fraction)
        least = ql.system_load(system.n, best, read_fraction)
        if spec.max_load < least - 1e-9:
            found.append(
                (
                    f"{PATH}.max_load",
                    f"{spec.max_load:g} is below the least load any strategy has at read fraction "
                    f"{read_fraction:g} ({least:.6g}); give at least that",
                )
            )
    return found


def _options_problems(quorum: Quorum, nodes: int) -> list[tuple[str, str]]:
    """Return (path, message) for quorum options that a system's quorums cannot follow."""
    strategy = quorum.system.strategy
    found = [
        (f"quorum.{field}", f"{level} counts replies per region; with quorum.system give a count")
        for field, level in (("r", quorum.r), ("w", quorum.w))
        if isinstance(level, str)
    ]
    if quorum.replicas is not None:
        found.append(
            ("quorum.replicas", f"with quorum.system strategy {strategy} every node holds every key")
        )
    if quorum.hedge is not None:
        found.append(
            ("quorum.hedge", f"a hedge replaces a replica, and a quorum of strategy {strategy} needs its own")
        )
    if quorum.system.kind == "threshold" and quorum.n != nodes:
        found.append(
            (
                "quorum.n",
                f"{quorum.n}: a threshold system with strategy {strategy} spans every node ({nodes}); "
                "set n to the node count, or use strategy: selection",
            )
        )
    return found


def quorum_system(scenario: Scenario) -> QuorumSystem:
    """Return the scenario's quorum system; a threshold system is any r (w) of the first n nodes.

    Raises:
        ScenarioError: for the leader protocol, or r or w given per region (not as counts).
    """
    quorum = scenario.quorum
    names = tuple(node.name for node in scenario.cluster.nodes)
    if spans_nodes(quorum):
        return quorum.system.build(names)  # validated with the scenario
    if quorum.protocol != "leaderless":
        raise ScenarioError(["quorum.protocol: leader has no read and write quorum system; leaderless has"])
    levels = [(field, level) for field, level in (("r", quorum.r), ("w", quorum.w)) if isinstance(level, str)]
    if levels:
        raise ScenarioError(
            [f"quorum.{field}: {level} counts replies per region; give a count" for field, level in levels]
        )
    return _threshold(names[: quorum.n], quorum)


def _threshold(names: tuple[str, ...], quorum: Quorum) -> QuorumSystem:
    """Any r (w) of ``names``.

    Raises:
        ScenarioError: naming quorum.r or quorum.w when its quorums are too many to list.
    """
    try:
        return QuorumSystem.threshold(names, quorum.r, quorum.w)
    except ValueError as exc:
        field = "r" if math.comb(len(names), quorum.r) > MAX_QUORUMS else "w"
        raise ScenarioError([f"quorum.{field}: {exc}"]) from None


def node_availability(scenario: Scenario) -> tuple[float, ...]:
    """Return each node's long-run availability: mttf / (mttf + mttr) of an exponential random_crashes.

    A node that no random_crashes fault with exponential mttf and mttr targets (by name, region or
    ``all``) gets :data:`DEFAULT_UP`; of several such faults, the first that targets it counts.
    """
    from qsim.scenario.faults import RandomCrashes

    up: dict[str, float] = {}
    for fault in scenario.faults:
        if not (isinstance(fault, RandomCrashes) and _exponential(fault.mttf, fault.mttr)):
            continue
        mttf, mttr = (spec.mean_ms + spec.shift for spec in (fault.mttf, fault.mttr))
        targets = fault.random_crashes  # "all", or node and region names
        up |= {
            node.name: mttf / (mttf + mttr)
            for node in scenario.cluster.nodes
            if node.name not in up and (targets == "all" or {node.name, node.region} & set(targets))
        }
    return tuple(up.get(node.name, DEFAULT_UP) for node in scenario.cluster.nodes)


def mean_service_ms(spec) -> float:
    """The mean of a service-time distribution (ms): exact for constant and exponential, else estimated."""
    from qsim.distributions import Constant, mean_latency

    if isinstance(spec, Constant):
        return spec.value + spec.shift
    if isinstance(spec, Exponential):
        return spec.mean_ms + spec.shift
    return mean_latency(spec)


def _exponential(*specs: object) -> bool:
    return all(isinstance(spec, Exponential) for spec in specs)


def node_capacities(scenario: Scenario) -> tuple[float, ...] | None:
    """Return each node's capacity in operations per second: concurrency x 1000 / mean service time (ms).

    None when some node serves without limit (a zero service time, or unbounded concurrency): then
    load is a fraction of operations, and capacity is not a rate.
    """
    defaults = scenario.cluster.replica
    found = []
    for node in scenario.cluster.nodes:
        service = node.service_time or defaults.service_time
        concurrency = node.concurrency or defaults.concurrency
        mean_ms = 0.0 if service.is_zero() else mean_service_ms(service)
        if concurrency is None or mean_ms <= 0:
            return None
        found.append(concurrency * 1000.0 / mean_ms)
    return tuple(found)
