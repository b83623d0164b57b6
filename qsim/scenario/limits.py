"""How much work a scenario asks for, estimated before anything runs, and the limits on it.

A typo (``rate: 2e12/s``, ``metrics.window: 1e-9``, ``mttf: 0``) should cost a clear message, not
a run that never ends or a process that eats the machine. :func:`estimate` sizes a run from the
scenario alone (operations, simulated time, events, timeline windows, ring table, memory), and
:func:`size_problems` names the field that drives each estimate past its limit. The estimates
are rough (within a small factor); the limits sit far above any run that can finish and fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qsim.distributions import mean_latency

if TYPE_CHECKING:
    from qsim.scenario.schema import Scenario

MAX_SEED = 2**63 - 1  # seeds are numpy SeedSequence entropy kept to 63 bits
MAX_NODES = 1000  # the network keeps (nodes + regions)^2 routes per message kind
MAX_VNODES = 10_000
MAX_RING_ENTRIES = 10_000_000  # the ring keeps every node's order from every token: nodes^2 x vnodes
MAX_N = 100  # replies per operation are recorded in 8 bits
MAX_CLIENTS = 1_000_000  # also probe lanes: a closed loop starts one operation per client at once
MAX_KEYS = 2**31 - 1  # key ids are recorded in 32 bits
MAX_ZIPF_KEYS = 50_000_000  # Zipf popularity keeps a table of 8 bytes per key (and temporaries)
MAX_OPERATIONS = 200_000_000  # ~54 B of records each (11 GB), and ~30 min at ~100k ops/s
MAX_EVENTS = 2_000_000_000  # scheduled callbacks: about an hour at ~700k events/s
MAX_WINDOW_ROWS = 10_000_000  # timeline windows x nodes: one row of per-node load each
MAX_FAULT_EPISODES = 100_000  # random crash episodes: each is a fault row checked against every op
MAX_MEMORY = 64 << 30  # bytes, the estimate below
CHUNK_OPS = 1 << 19  # operations held in memory at a time (a longer run streams its history)

OP_BYTES = 600  # records, the ops table, staleness verdicts and summaries, per operation (measured)
KEY_BYTES = 120  # a stored version (per replica) and the ring's cache entry, per key touched
WINDOW_ROW_BYTES = 150  # a per-node load row of one window


@dataclass(frozen=True)
class Work:
    """The estimated size of one run.

    Attributes:
        operations: operations issued (reads and writes; a probe trial is two).
        sim_ms: simulated time, ms (for open and closed loops an upper bound: duration plus
            every attempt's timeout and backoff).
        op_events: scheduled events of the operations (arrival and messages).
        windows: timeline windows of ``metrics.window``.
        ring_entries: entries of the ring table, nodes^2 x vnodes.
        memory_bytes: the memory it needs, roughly.
    """

    operations: float
    sim_ms: float
    op_events: float
    windows: float
    ring_entries: int
    memory_bytes: float


def estimate(scenario: Scenario) -> Work:
    """Return the estimated size of one run of ``scenario``."""
    nodes = len(scenario.cluster.nodes)
    operations, sim_ms = _operations(scenario)
    quorum = scenario.quorum
    hops = 0 if quorum.coordinator == "client" else 2
    op_events = operations * (1 + 2 * (quorum.n + 1) + hops)  # arrival, requests and replies, a hedge
    windows = sim_ms / scenario.metrics.window + 1
    ring = nodes * nodes * scenario.cluster.vnodes
    keys = min(float(scenario.workload.keys.count), operations)
    memory = (
        operations * OP_BYTES
        + keys * KEY_BYTES * quorum.n
        + min(windows * nodes, 1e300) * WINDOW_ROW_BYTES
        + ring * 10
        + _zipf_keys(scenario) * 24
    )
    return Work(operations, sim_ms, op_events, windows, ring, memory)


def size_problems(scenario: Scenario) -> list[tuple[str, str]]:
    """Return (path, message) for each estimate of ``scenario`` past its limit."""
    work = estimate(scenario)
    nodes = len(scenario.cluster.nodes)
    found = []
    if work.windows * nodes > MAX_WINDOW_ROWS:
        rows = (
            f"{work.windows:.3g} windows of {scenario.metrics.window:g} ms x {nodes} nodes = "
            f"{work.windows * nodes:.3g} rows of per-node load, more than the limit of {MAX_WINDOW_ROWS:.3g}"
        )
        found.append(
            _retry_blame(scenario, work, rows)
            or ("metrics.window", f"about {work.sim_ms:.3g} ms of simulated time: {rows}")
        )
    if work.ring_entries > MAX_RING_ENTRIES:
        found.append(
            (
                "cluster.vnodes",
                f"{nodes} nodes x {nodes} x {scenario.cluster.vnodes} vnodes = {work.ring_entries:.3g} "
                f"ring entries, more than the limit of {MAX_RING_ENTRIES:.3g}; use fewer vnodes",
            )
        )
    if _zipf_keys(scenario) > MAX_ZIPF_KEYS:
        found.append(
            (
                "workload.keys.count",
                f"{scenario.workload.keys.count:.3g} keys with Zipf popularity need a table of every key; "
                f"the limit is {MAX_ZIPF_KEYS:.3g} (uniform and hotset have no table)",
            )
        )
    found += _background_problems(scenario, work)
    # The memory estimate includes the parts above; each of those is refused by itself first.
    return _operation_problems(scenario, work, memory=not found) + found


# --- operations --------------------------------------------------------------------------------


def _operations(scenario: Scenario) -> tuple[float, float]:
    """Return (operations, simulated time in ms) of the workload."""
    workload = scenario.workload
    arrival = workload.arrival
    tail = sum(_retry_tail(scenario))
    if arrival.type == "probe":
        trials = arrival.trials * len(arrival.delays)
        per_trial = sum(arrival.delays) / len(arrival.delays) + 2 * _round_trip(scenario)
        return 2.0 * trials, trials / min(arrival.concurrency, trials) * per_trial + tail
    if arrival.type == "poisson":
        operations = arrival.rate * scenario.duration / 1e3
    else:
        cycle = mean_latency(arrival.think_time) + _round_trip(scenario)
        operations = math.inf if cycle == 0 else workload.clients * scenario.duration / cycle
    if workload.max_ops is not None:
        operations = min(operations, workload.max_ops)
    return operations, scenario.duration + tail


def _retry_tail(scenario: Scenario) -> tuple[float, float]:
    """Return the (timeouts, backoffs) an operation may add to the run's end, ms: every attempt's."""
    quorum = scenario.quorum
    return quorum.timeout * (quorum.retries + 1), quorum.retry_backoff * (2**quorum.retries - 1)


def _retry_blame(scenario: Scenario, work: Work, cost: str) -> tuple[str, str] | None:
    """Name the retry field for ``cost`` if the retries of the last operation dominate the simulated time.

    The simulated time is an upper bound: the last operation issued may time out on every attempt
    and wait out every backoff, so the run may last that much past its workload.
    """
    timeouts, backoffs = _retry_tail(scenario)
    if timeouts + backoffs <= work.sim_ms / 2:
        return None
    quorum = scenario.quorum
    field = "quorum.retry_backoff" if backoffs >= timeouts else "quorum.timeout"
    span = (
        f"{quorum.retries} retries with a doubling backoff from {quorum.retry_backoff:g} ms and a "
        f"{quorum.timeout:g} ms timeout per attempt make one operation span up to "
        f"{timeouts + backoffs:.3g} ms"
    )
    why = "the last operation issued may take that long, so the run may simulate that long"
    return field, f"{span}; {why}: about {work.sim_ms:.3g} ms of simulated time, {cost}"


def _round_trip(scenario: Scenario) -> float:
    """A rough mean time of one operation without faults, ms: the messages there and back."""
    hops = 2 if scenario.quorum.coordinator == "client" else 4
    return hops * mean_latency(scenario.network.latency) + mean_latency(scenario.cluster.replica.service_time)


def _operation_problems(scenario: Scenario, work: Work, memory: bool) -> list[tuple[str, str]]:
    workload = scenario.workload
    arrival = workload.arrival
    if arrival.type == "probe":
        field, how = "workload.arrival.trials", f"{arrival.trials} trials x {len(arrival.delays)} delays x 2"
    elif arrival.type == "poisson":
        field, how = "workload.arrival.rate", f"{arrival.rate:.3g}/s for {scenario.duration:g} ms (duration)"
    elif math.isinf(work.operations):
        return [
            (
                "workload.arrival.think_time",
                "a closed loop with zero think time over zero-latency messages never advances simulated "
                "time (endless); give a think time, a latency, or workload.max_ops",
            )
        ]
    else:
        field, how = "workload.clients", f"{workload.clients} clients for {scenario.duration:g} ms (duration)"
    ops = f"{how} is about {work.operations:.3g} operations"
    if work.operations > MAX_OPERATIONS:
        return [(field, f"{ops}, more than the limit of {MAX_OPERATIONS:.3g} a run")]
    if work.op_events > MAX_EVENTS:
        events = f"about {work.op_events:.3g} events with N={scenario.quorum.n}"
        return [(field, f"{ops}: {events}, more than the limit of {MAX_EVENTS:.3g}")]
    if memory and work.memory_bytes > MAX_MEMORY:
        need = f"about {_gib(work.memory_bytes)} of memory in all, more than the limit of {_gib(MAX_MEMORY)}"
        return [(field, f"{ops}: {need} (~{OP_BYTES} bytes an operation)")]
    return []


# --- background processes ----------------------------------------------------------------------


def _background_problems(scenario: Scenario, work: Work) -> list[tuple[str, str]]:
    """Periodic rounds (anti-entropy, hinted handoff, score resets) and random crash episodes."""
    nodes = len(scenario.cluster.nodes)
    quorum, repair = scenario.quorum, scenario.repair
    found = []
    periodic = []
    if repair.anti_entropy is not None:
        pairs = nodes * (nodes - 1) / 2
        keys = min(float(scenario.workload.keys.count), work.operations) * quorum.n / nodes
        periodic.append(("repair.anti_entropy.interval", repair.anti_entropy.interval, pairs * (2 + keys),
                         "node pairs x keys each holds"))  # fmt: skip
    if quorum.failover == "sloppy" and repair.hinted_handoff:
        periodic.append(("repair.handoff_interval", repair.handoff_interval, nodes, "nodes"))
    if quorum.protocol == "leader":
        periodic.append(("quorum.leader.heartbeat", quorum.leader.heartbeat, 2 * (nodes - 1),
                         "AppendEntries and acks to each follower"))  # fmt: skip
    if quorum.replica_selection == "latency_ewma" and quorum.ewma_reset is not None:
        periodic.append(("quorum.ewma_reset", quorum.ewma_reset, 1, "reset"))
    for path, interval, per_round, what in periodic:
        steps = work.sim_ms / interval * per_round
        if steps > MAX_EVENTS:
            rounds = (
                f"{work.sim_ms / interval:.3g} rounds of {path} ({interval:g} ms) x {per_round:.3g} ({what}) "
                f"= {steps:.3g} steps, more than the limit of {MAX_EVENTS:.3g}"
            )
            found.append(
                _retry_blame(scenario, work, rounds)
                or (path, f"about {work.sim_ms:.3g} ms of simulated time: {rounds}")
            )
    return found + _crash_problems(scenario, work)


def _crash_problems(scenario: Scenario, work: Work) -> list[tuple[str, str]]:
    found = []
    for i, fault in enumerate(scenario.faults):
        if not hasattr(fault, "random_crashes"):
            continue
        units = len(scenario.cluster.nodes)
        span = max((fault.until if fault.until is not None else work.sim_ms) - fault.at, 0.0)
        cycle = mean_latency(fault.mttf) + mean_latency(fault.mttr)
        episodes = math.inf if cycle == 0 else units * span / cycle
        if episodes > MAX_FAULT_EPISODES:
            found.append(
                (
                    f"faults.{i}.mttf",
                    f"mean mttf + mean mttr = {cycle:.3g} ms over about {span:.3g} ms on up to {units} "
                    f"nodes is about {episodes:.3g} crash episodes, more than the limit of "
                    f"{MAX_FAULT_EPISODES:.3g}",
                )
            )
    return found


def _zipf_keys(scenario: Scenario) -> int:
    keys = scenario.workload.keys
    return keys.count if keys.popularity == "zipf" and scenario.workload.arrival.type != "probe" else 0


def _gib(size: float) -> str:
    return f"{size / (1 << 30):.3g} GiB"
