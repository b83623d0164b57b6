"""The quorum system a leaderless scenario uses: ``quorum.system``, its rules, and the built system.

``quorum.system`` is one of (the nodes are the cluster's nodes, in order)::

    {kind: threshold}                                  # any quorum.r of quorum.n (the default)
    {kind: weighted, votes: {n1: 3, n2: 1, ...}, read_votes: 3, write_votes: 4}
    {kind: grid, rows: 2, cols: 3, read: row, write: row_cover}
    {kind: expressions, read: "n1*n2 + n3", write: null}  # a missing side is the other's dual

Left out (null), the scenario's resolved form and run id are those of a scenario without the field.
:func:`quorum_system` builds the :class:`~qsim.quorums.QuorumSystem`; :func:`system_problems` is the
cross-field check that makes every problem of it a (path, message) pair before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from qsim.distributions import Exponential, Int
from qsim.errors import ScenarioError, problems
from qsim.inputs import brief
from qsim.quorums import GRID_SHAPES, QuorumSystem, parse_expression
from qsim.scenario.base import Model

if TYPE_CHECKING:
    from qsim.scenario.schema import Quorum, Scenario

PATH = "quorum.system"
DEFAULT_UP = 0.99  # a node's availability when no random_crashes fault says otherwise

GridShape = Literal[tuple(GRID_SHAPES)]


class Threshold(Model):
    """Any ``quorum.r`` of ``quorum.n`` nodes read, any ``quorum.w`` write (today's N/R/W)."""

    kind: Literal["threshold"]


class Weighted(Model):
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


class Grid(Model):
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


class Expressions(Model):
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


def system_problems(quorum: Quorum, nodes: tuple) -> list[tuple[str, str]]:
    """Return (path, message) for every problem of ``quorum.system`` against the cluster's ``nodes``.

    Builds the system, so a read and a write quorum that do not meet are reported with their names.
    """
    spec = quorum.system
    if spec is None or spec.kind == "threshold":
        return []
    if quorum.protocol != "leaderless":
        return [(PATH, f"kind {spec.kind} applies to protocol: leaderless only")]
    names = tuple(node.name for node in nodes)
    found = [(f"{PATH}.{sub}", message) for sub, message in spec.problems(names)]
    if found:
        return found
    try:
        system = spec.build(names)
    except ValueError as exc:  # too many quorums
        return [(PATH, str(exc))]
    pair = system.intersection_problem()
    if pair is None:
        return []
    read, write = (f"{{{', '.join(q)}}}" for q in pair)
    return [
        (
            PATH,
            f"the read quorum {read} and the write quorum {write} share no node: a read could miss "
            "the latest write; every read quorum must meet every write quorum",
        )
    ]


def quorum_system(scenario: Scenario) -> QuorumSystem:
    """Return the scenario's quorum system; a threshold system is any r (w) of the first n nodes.

    Raises:
        ScenarioError: for the leader protocol, or r or w given per region (not as counts).
    """
    quorum = scenario.quorum
    names = tuple(node.name for node in scenario.cluster.nodes)
    if quorum.system is not None and quorum.system.kind != "threshold":
        return quorum.system.build(names)  # validated with the scenario
    if quorum.protocol != "leaderless":
        raise ScenarioError(["quorum.protocol: leader has no read and write quorum system; leaderless has"])
    levels = [(field, level) for field, level in (("r", quorum.r), ("w", quorum.w)) if isinstance(level, str)]
    if levels:
        raise ScenarioError(
            [f"quorum.{field}: {level} counts replies per region; give a count" for field, level in levels]
        )
    return QuorumSystem.threshold(names[: quorum.n], quorum.r, quorum.w)


def check_simulated(scenario: Scenario) -> None:
    """Refuse a scenario whose quorum system the simulator does not use yet (anything but threshold).

    Raises:
        ScenarioError: naming ``quorum.system``.
    """
    spec = scenario.quorum.system
    if spec is not None and spec.kind != "threshold":
        raise ScenarioError(
            [f"{PATH}: the simulator does not use {spec.kind} systems yet; `qsim analyze` does"]
        )


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


def _exponential(*specs: object) -> bool:
    return all(isinstance(spec, Exponential) for spec in specs)
