"""Faults on a timeline: what each one is, its fields, and the names it may refer to.

Exact meanings (the README has them in one place):

- ``crash``: at ``at`` the node stops. Everything in flight to it is lost, its queue and the
  requests in service are dropped, and it answers nothing. Operations it coordinates are lost
  (their clients time out). At ``recover_at`` it comes back with its store intact, or empty with
  ``amnesia: true``.
- ``partition``: from ``at`` to ``heal_at`` no message crosses between groups; a message in flight
  across the cut when it starts is lost. A group lists node names and region names (a region
  brings its nodes and its clients), or is ``majority`` / ``minority`` (the first floor(K/2)+1
  nodes of the cluster, or the rest). Nodes in no group form one more group together; clients
  whose region is in no group reach everyone; a node that a group names (``leader``, say) is
  left out of ``majority`` and ``minority``. ``one_way: true``: only messages from the first
  group to the others are cut.
- ``degrade``: from ``at`` to ``until`` the chosen links (``all``; a node or region name: every
  link to or from it; or ``[a, b]``: both directions between two names) add a draw of
  ``latency`` to each message and lose messages with extra probability ``loss``.
- ``slow``: from ``at`` to ``until`` the node's service times are multiplied by ``factor``.
- ``clock_skew``: from ``at`` to ``until`` the clock of a node, or of every node and client of a
  region, reads ``offset`` ahead (negative: behind); write timestamps use it.
- ``leader`` (with ``quorum.protocol: leader``) may stand for a node in ``crash``, ``degrade``,
  ``slow``, ``clock_skew`` and in a partition group: the node that leads when the fault starts (the
  leader of the highest term, if two think they lead). The faults table names that node as the
  target and gives ``"leader": <node>`` in the params; with no leader then, the fault does
  nothing: its target reads ``leader``, its params ``"leader": null``, and it ends as it starts.
- ``random_crashes``: from ``at`` to ``until``, each chosen node alternates up for a draw of
  ``mttf`` and down for a draw of ``mttr`` (starting up); ``correlated: region`` makes each
  region's chosen nodes fail and recover together.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from qsim.distributions import Dist, Duration, Real
from qsim.errors import problems
from qsim.scenario.base import Model

TARGET_KEYWORDS = ("all", "majority", "minority", "leader")  # fault targets that are not names
LEADER = "leader"  # the node that leads when the fault starts (protocol: leader)
LEADER_KINDS = ("crash", "partition", "degrade", "slow", "clock_skew")  # the kinds that may target it


class _Timed(Model):
    at: Duration = Field(ge=0, description="when the fault starts, ms")

    def _after_start(self) -> list[tuple[str, str]]:
        value = getattr(self, self._end_field)
        if value is not None and value <= self.at:
            return [(self._end_field, f"{value:g} ms is not after at ({self.at:g} ms)")]
        return []

    @model_validator(mode="after")
    def _ordered(self):
        if found := self._after_start():
            raise problems(*found)
        return self

    @property
    def end(self) -> float | None:
        """When the fault ends (ms), or None if it lasts to the end of the run."""
        return getattr(self, self._end_field)


class Crash(_Timed):
    """A node crashes at ``at`` and recovers at ``recover_at`` (never, if null)."""

    crash: str
    recover_at: Duration | None = None
    amnesia: bool = False
    _end_field = "recover_at"


Group = tuple[str, ...] | Literal["majority", "minority"]


class Partition(_Timed):
    """The network splits into groups at ``at`` and heals at ``heal_at`` (never, if null)."""

    partition: tuple[Group, ...] = Field(min_length=1)
    heal_at: Duration | None = None
    one_way: bool = False
    _end_field = "heal_at"


class Degrade(_Timed):
    """Links get extra latency and loss from ``at`` to ``until``."""

    degrade: Literal["all"] | str | tuple[str, str]
    until: Duration | None = None
    latency: Dist | None = None
    loss: Real = Field(0.0, ge=0, le=1)
    _end_field = "until"

    @model_validator(mode="after")
    def _meaningful(self):
        if self.latency is None and self.loss == 0:
            raise problems(
                ("latency", "give latency (extra delay) or loss (extra loss probability), or both")
            )
        return self


class Slow(_Timed):
    """A node's service time is multiplied by ``factor`` from ``at`` to ``until``."""

    slow: str
    factor: Real = Field(gt=0, le=1e6)
    until: Duration | None = None
    _end_field = "until"


class ClockSkew(_Timed):
    """A node's (or region's) clock reads ``offset`` ahead from ``at`` to ``until``."""

    clock_skew: str
    offset: Duration = Field(description="how far ahead the clock reads, ms; negative: behind")
    until: Duration | None = None
    _end_field = "until"


class RandomCrashes(Model):
    """Nodes fail and recover at random: up for a draw of ``mttf``, down for a draw of ``mttr``."""

    random_crashes: Literal["all"] | tuple[str, ...]
    mttf: Dist
    mttr: Dist
    correlated: Literal["none", "region"] = "none"
    amnesia: bool = False
    at: Duration = Field(0.0, ge=0)
    until: Duration | None = None

    @model_validator(mode="after")
    def _ordered(self):
        if self.until is not None and self.until <= self.at:
            raise problems(("until", f"{self.until:g} ms is not after at ({self.at:g} ms)"))
        return self

    @property
    def end(self) -> float | None:
        return self.until


FAULT_KINDS = {
    "crash": Crash,
    "partition": Partition,
    "degrade": Degrade,
    "slow": Slow,
    "clock_skew": ClockSkew,
    "random_crashes": RandomCrashes,
}
_TAG_OF = {kind: f"{kind.capitalize()}Fault" for kind in FAULT_KINDS}  # not a field name: kept off paths
FAULT_TAGS = {tag: FAULT_KINDS[kind] for kind, tag in _TAG_OF.items()}


def _fault_kind(value: object) -> str | None:
    if isinstance(value, dict):
        kinds = [kind for kind in FAULT_KINDS if kind in value]
        return _TAG_OF[kinds[0]] if len(kinds) == 1 else None
    kinds = [kind for kind, model in FAULT_KINDS.items() if isinstance(value, model)]
    return _TAG_OF[kinds[0]] if kinds else None


Fault = Annotated[
    Annotated[Crash, Tag(_TAG_OF["crash"])]
    | Annotated[Partition, Tag(_TAG_OF["partition"])]
    | Annotated[Degrade, Tag(_TAG_OF["degrade"])]
    | Annotated[Slow, Tag(_TAG_OF["slow"])]
    | Annotated[ClockSkew, Tag(_TAG_OF["clock_skew"])]
    | Annotated[RandomCrashes, Tag(_TAG_OF["random_crashes"])],
    Discriminator(
        _fault_kind,
        custom_error_type="fault_kind",
        custom_error_message=f"expected a fault with exactly one of the keys {', '.join(FAULT_KINDS)}",
    ),
]


def fault_kind(fault) -> str:
    """Return the kind of a fault spec: crash, partition, degrade, slow, clock_skew, random_crashes."""
    return next(kind for kind, model in FAULT_KINDS.items() if isinstance(fault, model))


def fault_problems(
    faults: tuple, node_regions: dict[str, str], protocol: str = "leaderless"
) -> list[tuple[str, str]]:
    """Return (path, message) for fault targets that name no node or region, and overlapping groups.

    Args:
        faults: the fault specs (an invalid one may be None: it is skipped).
        node_regions: each node's name and region, in cluster order.
        protocol: ``quorum.protocol`` (``leader`` lets faults target the leader).
    """
    found = []
    nodes, regions = set(node_regions), set(node_regions.values())
    names = nodes | regions
    for i, fault in enumerate(faults):
        if fault is None:
            continue
        kind = fault_kind(fault)
        found += _leader_target_problems(i, fault, kind, protocol)
        if kind in ("crash", "slow"):
            target = getattr(fault, kind)
            if target not in nodes and target != LEADER:
                found.append((f"faults.{i}.{kind}", f"unknown node {target!r}; nodes: {sorted(nodes)}"))
        elif kind == "partition":
            found += _partition_problems(i, fault, node_regions)
        else:
            target = getattr(fault, kind)
            targets = [] if target == "all" else [target] if isinstance(target, str) else list(target)
            found += [
                (f"faults.{i}.{kind}", f"unknown node or region {t!r}; known: {sorted(names)}")
                for t in targets
                if t not in names and t != LEADER
            ]
    return found


def targets_leader(fault) -> bool:
    """True if ``fault`` names ``leader`` among its targets."""
    kind = fault_kind(fault)
    target = getattr(fault, kind)
    if kind == "random_crashes":
        return target != "all" and LEADER in target
    if kind == "partition":
        return any(group not in ("majority", "minority") and LEADER in group for group in target)
    return target == LEADER or (not isinstance(target, str) and LEADER in target)


def _leader_target_problems(i: int, fault, kind: str, protocol: str) -> list[tuple[str, str]]:
    if not targets_leader(fault):
        return []
    if protocol != "leader":
        why = f"{LEADER!r} names the node leading when the fault starts: only with quorum.protocol: leader"
    elif kind not in LEADER_KINDS:
        why = f"{LEADER!r} is a target of {', '.join(LEADER_KINDS)} faults only, not of {kind}"
    else:
        return []
    return [(f"faults.{i}.{kind}", why)]


def slow_problems(
    faults: tuple, zero_service: set[str], every_node_zero: bool = False
) -> list[tuple[str, str]]:
    """Return (path, message) for ``slow`` faults on nodes whose service time is zero (a no-op).

    ``every_node_zero``: no node has a service time (then slowing the leader changes nothing too).
    """
    return [
        (
            f"faults.{i}.slow",
            f"{_whose(fault.slow)} a zero service time, so slowing it changes nothing; give "
            "cluster.replica.service_time (or the node's own service_time) a non-zero distribution",
        )
        for i, fault in enumerate(faults)
        if isinstance(fault, Slow)
        and (fault.slow in zero_service or (fault.slow == LEADER and every_node_zero))
    ]


def _whose(target: str) -> str:
    return "every node (the leader among them) has" if target == LEADER else f"node {target!r} has"


def _partition_problems(i: int, fault: Partition, node_regions: dict[str, str]) -> list[tuple[str, str]]:
    """Unknown names, and a node in two groups (by name, by region, or as majority/minority)."""
    order = list(node_regions)
    majority = len(order) // 2 + 1
    found, owner = [], {}
    for g, group in enumerate(fault.partition):
        if group in ("majority", "minority"):
            members = order[:majority] if group == "majority" else order[majority:]
        else:
            members = []
            for name in group:
                if name in node_regions or name == LEADER:
                    members.append(name)
                elif name in node_regions.values():
                    members += [node for node, region in node_regions.items() if region == name]
                else:
                    found.append((f"faults.{i}.partition.{g}", f"unknown node or region {name!r}"))
        for node in dict.fromkeys(members):
            if node in owner and owner[node] != g:
                found.append((f"faults.{i}.partition.{g}", f"node {node!r} is also in group {owner[node]}"))
            owner.setdefault(node, g)
        if len(members) != len(set(members)):
            found.append((f"faults.{i}.partition.{g}", "a node is named twice in this group"))
    return found
