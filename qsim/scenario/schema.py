"""The scenario: every field, its unit, its default and its rules, in one place.

A scenario is validated completely before anything runs and is immutable afterwards. Times are
milliseconds (YAML may use units), rates are per second. Cross-field rules raise
:func:`problems`, which carries the exact sub-path of each problem for the error report.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError, model_validator

from qsim.distributions import Dist, Duration, Int, Rate, Real, whole_number
from qsim.errors import problems
from qsim.inputs import brief
from qsim.scenario.base import NAME_MAX_LENGTH, NAME_PATTERN, Model
from qsim.scenario.faults import TARGET_KEYWORDS, Fault, fault_problems, slow_problems
from qsim.scenario.leader import Leader, group_size, leader_problems
from qsim.scenario.limits import MAX_CLIENTS, MAX_KEYS, MAX_N, MAX_NODES, MAX_SEED, MAX_VNODES, size_problems
from qsim.scenario.systems import System, spans_nodes, system_problems, uses_system
from qsim.units import parse_duration

MESSAGE_KINDS = (
    "write_request",
    "write_ack",
    "read_request",
    "read_response",
    "client_request",
    "client_response",
    "read_repair",
    "read_repair_ack",
    "hint",
    "hint_ack",
    "anti_entropy",
    "append_entries",
    "append_ack",
    "request_vote",
    "vote",
)
LEADER_KINDS = ("append_entries", "append_ack", "request_vote", "vote")  # the leader protocol's alone
CLIENT_KINDS = ("client_request", "client_response")  # both protocols send these
CONSISTENCY_ALIASES = ("one", "quorum", "majority", "all")  # majority: another name for quorum
REGION_LEVELS = ("local_one", "local_quorum", "each_quorum")  # counted per region, at run time


class Node(Model):
    """One replica server; ``service_time`` and ``concurrency`` override cluster.replica for it."""

    name: str = Field(pattern=NAME_PATTERN)
    region: str = Field("default", pattern=NAME_PATTERN)
    service_time: Dist | None = None
    concurrency: Int | None = Field(None, ge=1)


def _numbered_nodes(value: object) -> object:
    """Let ``nodes: 5`` mean nodes n1..n5 in region ``default``."""
    if isinstance(value, list | tuple):
        return value
    try:
        value = whole_number(value)
    except ValueError:
        raise ValueError(f"expected a number of nodes or a list of nodes, found {brief(value)}") from None
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"expected at least one node, found {value}")
        if value > MAX_NODES:  # refused before a list of that length is built
            raise ValueError(f"expected at most {MAX_NODES} nodes (the limit), found {value}")
        return [{"name": f"n{i + 1}"} for i in range(value)]
    return value


class Replica(Model):
    """How a replica serves requests: a queue in front of ``concurrency`` parallel servers."""

    service_time: Dist = Field(default_factory=lambda: {"dist": "constant", "value": 0.0})
    concurrency: Int | None = Field(8, ge=1, description="parallel requests; null = unbounded")


class Cluster(Model):
    """The replica servers and how keys map onto them."""

    nodes: Annotated[tuple[Node, ...], BeforeValidator(_numbered_nodes)] = Field(
        default_factory=lambda: _numbered_nodes(5), min_length=1, max_length=MAX_NODES
    )
    replica: Replica = Replica()
    vnodes: Int = Field(64, ge=1, le=MAX_VNODES, description="tokens per node on the consistent-hashing ring")

    @model_validator(mode="after")
    def _unique_names(self):
        seen: set[str] = set()
        found = []
        for i, node in enumerate(self.nodes):
            if node.name in seen:
                found.append((f"nodes.{i}.name", f"duplicate node name {node.name!r}"))
            seen.add(node.name)
        found += _name_clashes(self.nodes)
        if found:
            raise problems(*found)
        return self

    @property
    def regions(self) -> tuple[str, ...]:
        """Regions that hold nodes, in order of first appearance."""
        return tuple(dict.fromkeys(node.region for node in self.nodes))


def _name_clashes(nodes: tuple[Node, ...]) -> list[tuple[str, str]]:
    """Refuse node and region names that a fault target could read two ways."""
    keywords = ", ".join(TARGET_KEYWORDS)
    names = {node.name for node in nodes}
    first = {node.region: i for i, node in reversed(list(enumerate(nodes)))}  # each region once
    found = []
    for i, node in enumerate(nodes):
        found += [
            (f"nodes.{i}.{field}", f"{value!r} is a fault keyword ({keywords}); choose another {what}")
            for field, value, what in (("name", node.name, "name"), ("region", node.region, "region name"))
            if value in TARGET_KEYWORDS and (field == "name" or first[value] == i)
        ]
        if node.region in names and node.region not in TARGET_KEYWORDS and first[node.region] == i:
            found.append(
                (
                    f"nodes.{i}.region",
                    f"{node.region!r} is also a node name; fault targets name nodes and regions alike, "
                    "so the two must differ",
                )
            )
    return found


class KindLatencies(Model):
    """Latency per message kind (the WARS model of PBS, plus the client hops); null = inherit."""

    write_request: Dist | None = None
    write_ack: Dist | None = None
    read_request: Dist | None = None
    read_response: Dist | None = None
    client_request: Dist | None = None
    client_response: Dist | None = None
    read_repair: Dist | None = None
    read_repair_ack: Dist | None = None
    hint: Dist | None = None
    hint_ack: Dist | None = None
    anti_entropy: Dist | None = None
    append_entries: Dist | None = None
    append_ack: Dist | None = None
    request_vote: Dist | None = None
    vote: Dist | None = None


class Override(Model):
    """Latency and loss for a pair of endpoints: ``between: [a, b]`` (both ways) or ``from``/``to``."""

    between: tuple[str, str] | None = None
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    latency: Dist | None = None
    kinds: KindLatencies = KindLatencies()
    loss: Real | None = Field(None, ge=0, lt=1)

    @model_validator(mode="after")
    def _one_shape(self):
        one_way = self.from_ is not None or self.to is not None
        if self.between is None and not one_way:
            raise problems(("between", "give between: [a, b] or both from: and to:"))
        if self.between is not None and one_way:
            raise problems(("between", "give either between or from/to, not both"))
        if one_way and (self.from_ is None or self.to is None):
            raise problems(("from" if self.from_ is None else "to", "from and to go together"))
        return self

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The directed (source, destination) pairs this override applies to."""
        if self.between is not None:
            a, b = self.between
            return ((a, b),) if a == b else ((a, b), (b, a))
        return ((self.from_, self.to),)


class Network(Model):
    """Message latency and loss: a default, then per kind, per region pair and per link."""

    latency: Dist = Field(default_factory=lambda: {"dist": "exponential", "mean": 1.0})
    kinds: KindLatencies = KindLatencies()
    loss: Real = Field(0.0, ge=0, lt=1)
    regions: tuple[Override, ...] = ()
    links: tuple[Override, ...] = ()


def resolve_consistency(data: object) -> object:
    """Replace ``one``/``quorum``/``majority``/``all`` in r and w by counts, using n (or its default)."""
    if not isinstance(data, dict):
        return data
    replicas = data.get("replicas")
    if isinstance(replicas, dict) and "n" not in data:
        with contextlib.suppress(ValueError):  # an invalid count is reported by its field
            data = {**data, "n": sum(whole_number(c) for c in replicas.values())}  # n follows the counts
    try:  # n as its field reads it (3, 3.0 and "3" alike); an invalid n is reported by the field
        n = TypeAdapter(Int).validate_python(data.get("n", Quorum.model_fields["n"].default))
    except ValidationError:
        return data
    counts = {"one": 1, "quorum": n // 2 + 1, "majority": n // 2 + 1, "all": n}
    return {k: counts.get(v, v) if k in ("r", "w") and isinstance(v, str) else v for k, v in data.items()}


def _count_or_alias(value: object) -> object:
    if isinstance(value, str) and value in REGION_LEVELS + CONSISTENCY_ALIASES:
        return value  # an alias left unresolved only when quorum.n is invalid, which is reported
    try:
        value = whole_number(value)
    except ValueError:
        levels = ", ".join(CONSISTENCY_ALIASES + REGION_LEVELS)
        raise ValueError(
            f"expected a whole number of replicas or one of {levels}, found {brief(value)}"
        ) from None
    if value < 1:
        raise ValueError(f"expected at least 1 replica, found {value}")
    return value


Count = Annotated[
    Annotated[int, Field(ge=1)]
    | Literal["local_one", "local_quorum", "each_quorum", "one", "quorum", "majority", "all"],
    BeforeValidator(_count_or_alias),
]


def _delay_or_percentile(value: object) -> object:
    """A delay in ms (units allowed), or a percentile such as ``p99`` kept as text."""
    if isinstance(value, str) and value.startswith("p"):
        try:
            level = float(value[1:])
        except ValueError:
            level = -1.0
        if not 0 < level < 100:
            raise ValueError(f"expected a delay or a percentile such as p95 or p99.9, found {value!r}")
        return value
    delay = parse_duration(value)
    if delay < 0:
        raise ValueError(f"expected a delay >= 0 or a percentile such as p99, found {value!r}")
    return delay


class Hedge(Model):
    """Speculative requests: an operation without its quorum after ``after`` asks one more replica."""

    after: Annotated[float | str, BeforeValidator(_delay_or_percentile)] = Field(
        description="a delay (ms, units allowed), or pNN: that percentile of recent latencies"
    )
    writes: bool = Field(False, description="hedge writes too (reads always)")

    @property
    def percentile(self) -> float | None:
        """The percentile of recent latencies to wait, or None for a fixed delay."""
        return float(self.after[1:]) if isinstance(self.after, str) else None


class Quorum(Model):
    """The replication protocol: leaderless (Dynamo-style), or leader (Raft-style, ``leader``)."""

    protocol: Literal["leaderless", "leader"] = "leaderless"
    n: Int = Field(
        3,
        ge=1,
        le=MAX_N,
        description="replicas per key; with protocol: leader the number of nodes (the default then)",
    )
    r: Count = Field(
        2, description="read replies needed; or one | quorum | all | local_one | local_quorum | each_quorum"
    )
    w: Count = Field(
        2, description="write acks needed; or one | quorum | all | local_one | local_quorum | each_quorum"
    )
    read_fanout: Literal["all", "quorum"] = "all"
    write_fanout: Literal["all", "quorum"] = "all"
    replica_selection: Literal[
        "random", "ring", "nearest", "least_outstanding", "latency_ewma", "two_choices"
    ] = "random"
    ewma_alpha: Real = Field(0.2, gt=0, le=1, description="latency_ewma: weight of the newest response time")
    ewma_reset: Duration | None = Field(
        10_000.0, gt=0, description="latency_ewma: forget all scores this often"
    )
    hedge: Hedge | None = None
    replicas: dict[str, Int] | None = Field(None, description="replicas per region (NetworkTopologyStrategy)")
    coordinator: Literal["client", "random", "local", "replica"] = "client"
    timeout: Duration = Field(1000.0, gt=0, description="per attempt, ms")
    failover: Literal["strict", "sloppy", "shrink"] = "strict"
    shrink: Literal["majority", "drop"] = Field(
        "majority",
        description="failover shrink: cut R and W to a majority of the survivors, or drop each "
        "suspected replica from them (R and W fall by one per suspected replica)",
    )
    suspicion: Duration = Field(1000.0, gt=0, description="how long a silent replica stays suspected, ms")
    retries: Int = Field(0, ge=0, le=20, description="further attempts after a timeout")
    retry_backoff: Duration = Field(10.0, ge=0, description="wait before retry k: backoff x 2^(k-1), ms")
    leader: Leader = Leader()
    system: System | None = Field(
        None,
        exclude_if=lambda value: value is None,  # left out: the resolved form and run id of before
        description="the quorum system (see qsim.scenario.systems); null = threshold: any r (w) of n",
    )

    _resolve = model_validator(mode="before")(resolve_consistency)

    @model_validator(mode="after")
    def _within_n(self):
        found = [
            (field, f"{value} is larger than quorum.n ({self.n})")
            for field, value in (("r", self.r), ("w", self.w))
            if isinstance(value, int) and value > self.n and self.protocol != "leader"  # unused there
        ]
        found += [
            (field, f"{value} counts replicas per region: give quorum.replicas (replicas per region)")
            for field, value in (("r", self.r), ("w", self.w))
            if isinstance(value, str) and self.replicas is None
        ]
        if self.replicas is not None:
            found += [
                (f"replicas.{region}", f"expected at least 1, found {count}")
                for region, count in self.replicas.items()
                if count < 1
            ]
            if sum(self.replicas.values()) != self.n:
                found.append(
                    ("n", f"{self.n} is not the sum of quorum.replicas ({sum(self.replicas.values())})")
                )
        if found:
            raise problems(*found)
        return self


class AntiEntropy(Model):
    """Periodic pairwise synchronisation of replicas that share keys."""

    interval: Duration = Field(gt=0, description="between rounds, ms")


class Repair(Model):
    """The repair mechanisms; each can be switched on and off."""

    read_repair: Annotated[
        Literal["off", "background", "foreground", "write_back"],
        BeforeValidator(lambda value: "off" if value is False else value),  # YAML reads `off` as false
    ] = "off"
    hinted_handoff: bool = True
    handoff_interval: Duration = Field(1000.0, gt=0, description="how often hints are offered, ms")
    anti_entropy: AntiEntropy | None = None


class Metrics(Model):
    """How results are aggregated."""

    window: Duration = Field(1000.0, gt=0, description="availability timeline window, ms")


class Poisson(Model):
    """Open loop: operations arrive as a Poisson process, whatever the system's speed."""

    type: Literal["poisson"]
    rate: Rate = Field(gt=0, description="operations per second, all clients together")


class Closed(Model):
    """Closed loop: each client issues one operation, waits for it, thinks, and repeats."""

    type: Literal["closed"]
    think_time: Dist = Field(default_factory=lambda: {"dist": "constant", "value": 0.0})


class Probe(Model):
    """PBS probe: write a fresh key, wait for the commit, wait t, read it; ``trials`` per t."""

    type: Literal["probe"]
    delays: tuple[Duration, ...] = Field(min_length=1, description="the t values, ms")
    trials: Int = Field(1000, ge=1, description="write-then-read trials per delay")
    concurrency: Int = Field(1, ge=1, le=MAX_CLIENTS, description="trials in flight at once")

    @model_validator(mode="after")
    def _non_negative(self):
        bad = [
            (f"delays.{i}", f"expected a delay >= 0, found {d:g}") for i, d in enumerate(self.delays) if d < 0
        ]
        if bad:
            raise problems(*bad)
        return self


Arrival = Annotated[Poisson | Closed | Probe, Field(discriminator="type")]
ARRIVAL_TYPES = ("poisson", "closed", "probe")


class Keys(Model):
    """The key space and how often each key is used."""

    count: Int = Field(1000, ge=1, le=MAX_KEYS)
    popularity: Literal["uniform", "zipf", "hotset"] = "uniform"
    s: Real = Field(0.99, ge=0, description="Zipf exponent: P(rank i) ~ 1/i^s")
    hot_fraction: Real = Field(0.01, gt=0, le=1, description="hotset: share of keys that are hot")
    hot_weight: Real = Field(0.9, ge=0, le=1, description="hotset: share of accesses to hot keys")


class Workload(Model):
    """Who issues operations, how often, and on which keys."""

    arrival: Arrival = Field(default_factory=lambda: {"type": "poisson", "rate": 1000.0})
    clients: Int = Field(1, ge=1, le=MAX_CLIENTS)
    client_regions: tuple[str, ...] | None = Field(
        None, description="regions the clients are spread over, round-robin; null = node regions"
    )
    read_fraction: Real = Field(0.5, ge=0, le=1)
    keys: Keys = Keys()
    max_ops: Int | None = Field(None, ge=1, description="stop issuing after this many operations")


class Scenario(Model):
    """A complete, validated scenario; build it with :func:`qsim.load_scenario`."""

    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)
    description: str = ""
    seed: Int = Field(1, ge=0, le=MAX_SEED)
    duration: Duration = Field(10_000.0, gt=0, description="operations are issued until then, ms")
    warmup: Duration = Field(0.0, ge=0, description="operations starting earlier are not summarized")
    cluster: Cluster = Cluster()
    network: Network = Network()
    quorum: Quorum = Quorum()
    repair: Repair = Repair()
    workload: Workload = Workload()
    faults: tuple[Fault, ...] = ()
    metrics: Metrics = Metrics()
    sweep: dict[str, Any] | None = Field(
        None, description="the grid `qsim sweep` runs (see qsim.sweep); ignored by `qsim run`"
    )

    _group = model_validator(mode="before")(group_size)

    @model_validator(mode="after")
    def _consistent(self):
        found = cross_problems(self.cluster, self.network, self.quorum, self.workload, self.faults)
        quorum = self.quorum
        found += leader_problems(quorum.protocol, quorum.n, quorum.leader, len(self.cluster.nodes))
        found += _write_back_problems(self.quorum, self.repair)
        if self.warmup >= self.duration:
            found.append(
                (
                    "warmup",
                    f"{self.warmup:g} ms is not shorter than duration ({self.duration:g} ms)",
                )
            )
        found += _sweep_problems(self.sweep)
        if not found:  # the estimates assume a consistent scenario
            found = size_problems(self)
        if found:
            raise problems(*found)
        return self

    @property
    def client_regions(self) -> tuple[str, ...]:
        """The region of each client, in client order."""
        return client_regions(self.cluster, self.workload)


def _sweep_problems(block: dict | None) -> list[tuple[str, str]]:
    """Check the ``sweep:`` block's shape, as ``qsim sweep`` would (its points are checked there)."""
    if block is None:
        return []
    from qsim.sweep.spec import SweepError, sweep_from_mapping  # the sweep package builds on scenarios

    try:
        sweep_from_mapping(block)
    except SweepError as exc:
        return [("sweep", problem) for problem in exc.problems]
    return []


def _write_back_problems(quorum: Quorum, repair: Repair) -> list[tuple[str, str]]:
    """Refuse per-region levels with write-back reads, which count W holders among the key's replicas."""
    if repair.read_repair != "write_back":
        return []
    if uses_system(quorum):
        return [
            (
                "repair.read_repair",
                f"write_back counts W of a key's replicas, and quorum.system strategy "
                f"{quorum.system.strategy} has no W; use off, background or foreground",
            )
        ]
    return [
        (
            f"quorum.{field}",
            f"{level} counts replies per region, and repair.read_repair: write_back needs R and W as "
            "counts (a number, one, quorum, majority or all) to know when W replicas hold what a read "
            "returns; give a count, or another read_repair mode",
        )
        for field, level in (("r", quorum.r), ("w", quorum.w))
        if level in REGION_LEVELS
    ]


def client_regions(cluster: Cluster, workload: Workload) -> tuple[str, ...]:
    """Return the region of each client: ``client_regions`` (or the node regions) round-robin."""
    regions = workload.client_regions or cluster.regions
    return tuple(regions[i % len(regions)] for i in range(workload.clients))


def _local_level_problems(cluster: Cluster, quorum: Quorum, workload: Workload) -> list[tuple[str, str]]:
    """Refuse local_one / local_quorum where a coordinator's region holds no replicas: never satisfied.

    These levels count replies from the coordinator's region only; with none of a key's replicas
    there, every such operation waits its full timeout and fails. (each_quorum counts every region
    that holds replicas, wherever the coordinator is.)
    """
    if quorum.replicas is None:
        return []
    if quorum.coordinator in ("client", "local"):
        where, regions = "clients coordinate from", set(client_regions(cluster, workload))
    else:
        where, regions = f"coordinator: {quorum.coordinator} picks nodes in", set(cluster.regions)
    bare = sorted(regions - {region for region, count in quorum.replicas.items() if count > 0})
    return [
        (
            f"quorum.{field}",
            f"{level} counts only replicas in the coordinator's region, and {where} regions {bare}, "
            "which hold none (no quorum.replicas entry): every such operation would time out; give "
            "those regions replicas, or use each_quorum or a count",
        )
        for field, level in (("r", quorum.r), ("w", quorum.w))
        if level in ("local_one", "local_quorum") and bare
    ]


def cross_problems(
    cluster: Cluster | None,
    network: Network | None,
    quorum: Quorum | None,
    workload: Workload | None,
    faults: tuple = (),
) -> list[tuple[str, str]]:
    """Return (path, message) for rules that span sections; a section given as None is skipped."""
    found = []
    if (
        cluster is not None
        and quorum is not None
        and quorum.n > len(cluster.nodes)
        and not spans_nodes(quorum)
    ):
        found.append(("quorum.n", f"{quorum.n} is larger than the number of nodes ({len(cluster.nodes)})"))
    if cluster is None:
        return found
    if quorum is not None:
        found += system_problems(quorum, cluster.nodes, workload.read_fraction if workload else None)
    regions = set(cluster.regions)
    if quorum is not None and quorum.replicas:
        for region, count in quorum.replicas.items():
            have = sum(node.region == region for node in cluster.nodes)
            if have == 0:
                found.append(
                    (
                        f"quorum.replicas.{region}",
                        f"unknown region {region!r}; regions with nodes: {sorted(regions)}",
                    )
                )
            elif count > have:
                found.append(
                    (f"quorum.replicas.{region}", f"{count} replicas but the region has {have} nodes")
                )
    if workload is not None:
        for i, region in enumerate(workload.client_regions or ()):
            if region not in regions:
                found.append(
                    (
                        f"workload.client_regions.{i}",
                        f"unknown region {region!r}; regions with nodes: {sorted(regions)}",
                    )
                )
        if quorum is not None:
            found += _local_level_problems(cluster, quorum, workload)
        if quorum is not None and quorum.coordinator == "local":
            empty = sorted(set(client_regions(cluster, workload)) - regions)
            if empty:
                found.append(
                    (
                        "quorum.coordinator",
                        f"'local' needs nodes in every client region; none in {empty}",
                    )
                )
    if network is not None:
        node_names = {node.name for node in cluster.nodes}
        for group, known, what in (("links", node_names, "node"), ("regions", regions, "region")):
            for i, override in enumerate(getattr(network, group)):
                if override is None:  # invalid by itself (lenient checking): reported already
                    continue
                ends = (
                    {"between": override.between}
                    if override.between
                    else {"from": override.from_, "to": override.to}
                )
                found.extend(
                    (f"network.{group}.{i}.{field}", f"unknown {what} {end!r}; known: {sorted(known)}")
                    for field, value in ends.items()
                    for end in dict.fromkeys([value] if isinstance(value, str) else value)
                    if end not in known
                )
    protocol = quorum.protocol if quorum is not None else "leaderless"
    found += fault_problems(faults, {node.name: node.region for node in cluster.nodes}, protocol)
    service = cluster.replica.service_time
    zero = {n.name for n in cluster.nodes if (n.service_time or service).is_zero()}
    found += slow_problems(faults, zero, every_node_zero=len(zero) == len(cluster.nodes))
    return found
