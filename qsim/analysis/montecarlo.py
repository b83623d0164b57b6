"""A vectorized Monte Carlo of the PBS WARS model: one write, then one read t ms after its outcome.

Each trial draws, for every replica i, a write-request delay W_i, a write-ack delay A_i, a
read-request delay R_i and a read-response delay S_i from the scenario's own distributions for
those message kinds. The client coordinates, replicas answer on arrival, nothing is lost, so:

- the write reaches every replica (fan-out ``all``) or W chosen ones (``quorum``) and commits at
  c = the W-th smallest W_i + A_i among them (its latency, ms);
- the read starts at c + t and asks every replica (``all``) or R chosen ones (``quorum``); replica
  j answers at c + t + R_j + S_j and holds the write iff it received it and W_j <= c + t + R_j;
- the read takes the first R answers (its latency is the R-th smallest R_j + S_j) and is
  consistent iff one of them held the write.

Which R replicas answer first does not depend on t, so the read is consistent at every delay
t >= t* = min over those R replicas j of (W_j - R_j) - c, and at none below: t* is the trial's
``consistent_from_ms`` (infinite when none of them received the write, which no delay mends).

As in the discrete-event engine, an operation whose quorum is not complete ``quorum.timeout`` ms
after it started fails then; a read after a failed write starts at timeout + t, and a read is only
checked for staleness when it and its write succeeded. Quorums are chosen at random or, with
``replica_selection: ring``, as the first replicas of the key's preference list. Answers at the
same instant (only possible with atoms such as constants) count in replica order. With
``network.regions`` latencies, each operation's coordinator sits in a random region: see
:mod:`qsim.analysis.wars_wan`.

Trials are independent across the delays t. :func:`applies` says when the model is the scenario,
:func:`wars` runs it, and :func:`run` turns it into a :class:`qsim.outcome.RunResult`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from qsim.analysis.wars_wan import KINDS, RegionModel, region_checks, region_model
from qsim.errors import QsimError
from qsim.outcome import RunResult, runtime
from qsim.outcome import manifest as describe
from qsim.rng import RandomStreams
from qsim.scenario import Scenario, with_seed
from qsim.scenario.systems import uses_system
from qsim.units import counted

CHUNK_ELEMENTS = 1 << 20  # trials x replicas drawn at once (~350k trials at N=3, ~70 MB)


@dataclass(frozen=True)
class WarsResult:
    """Per-trial outcomes of :func:`wars`, arrays of shape (len(delays_ms), trials); times in ms."""

    delays_ms: np.ndarray  # the t of each row
    write_latency_ms: np.ndarray  # when the W-th ack arrived, possibly after the timeout
    read_latency_ms: np.ndarray  # when the R-th response arrived, possibly after the timeout
    fresh: np.ndarray  # one of the first R responses held the write
    write_replies: np.ndarray  # acks before the outcome: W if in time, fewer on a timeout
    read_replies: np.ndarray  # responses before the outcome: R if in time, fewer on a timeout
    consistent_from_ms: np.ndarray  # t*: the read is consistent at delay t iff t >= t* (where checked)
    timeout_ms: float
    # With region-pair latencies: the coordinator region (an index into ``regions``) of each
    # write and read; None when every route is the network's.
    write_region: np.ndarray | None = None
    read_region: np.ndarray | None = None
    regions: tuple[str, ...] = ()

    @property
    def trials(self) -> int:
        """Trials per delay."""
        return self.fresh.shape[1]

    @property
    def write_ok(self) -> np.ndarray:
        """Writes that committed within the timeout."""
        return self.write_latency_ms <= self.timeout_ms

    @property
    def read_ok(self) -> np.ndarray:
        """Reads that completed within the timeout."""
        return self.read_latency_ms <= self.timeout_ms

    @property
    def checked(self) -> np.ndarray:
        """Reads checked for staleness: the read and its write both succeeded."""
        return self.write_ok & self.read_ok

    @property
    def reads_checked(self) -> np.ndarray:
        """Checked reads per delay."""
        return self.checked.sum(axis=1)

    @property
    def consistent(self) -> np.ndarray:
        """Checked reads that returned the write, per delay."""
        return (self.fresh & self.checked).sum(axis=1)

    @property
    def p_consistent(self) -> np.ndarray:
        """t-visibility: P(consistent) per delay (NaN where no read was checked)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.consistent / self.reads_checked


def applies(scenario: Scenario) -> list[str]:
    """Return why the WARS model is not the scenario, one reason per field (empty: it applies)."""
    network, quorum, repair = scenario.network, scenario.quorum, scenario.repair
    service = scenario.cluster.replica.service_time
    arrival = scenario.workload.arrival.type
    faults, links = len(scenario.faults), len(network.links)
    checks = [  # (field, whether it fits, what the model needs, what the scenario has)
        (
            "quorum.protocol",
            quorum.protocol == "leaderless",
            "models leaderless N/R/W quorums",
            quorum.protocol,
        ),
        (
            "quorum.system",
            not uses_system(quorum),
            "models r and w of a key's n replicas (a threshold system with strategy selection)",
            "" if quorum.system is None else f"{quorum.system.kind}, strategy {quorum.system.strategy}",
        ),
        ("faults", faults == 0, "models a fault-free cluster", counted(faults, "fault")),
        ("network.loss", network.loss == 0, "needs loss 0 (every message arrives)", f"{network.loss:g}"),
        *region_checks(scenario),
        ("network.links", links == 0, "needs no link overrides", counted(links, "override")),
        (
            "cluster.replica.service_time",
            service.is_zero(),
            "needs zero service time (replicas answer on arrival, no queueing)",
            f"{service.dist} service times",
        ),
        (
            "quorum.coordinator",
            quorum.coordinator == "client",
            "needs client coordinators",
            quorum.coordinator,
        ),
        ("quorum.failover", quorum.failover == "strict", "needs strict failover", quorum.failover),
        ("quorum.r", isinstance(quorum.r, int), "needs R as a number of replicas", f"{quorum.r}"),
        ("quorum.w", isinstance(quorum.w, int), "needs W as a number of replicas", f"{quorum.w}"),
        ("quorum.replicas", quorum.replicas is None, "needs replicas placed by the ring alone", "per region"),
        (
            "quorum.replica_selection",
            quorum.replica_selection in ("random", "ring"),
            "needs random or ring replica selection",
            quorum.replica_selection,
        ),
        ("quorum.hedge", quorum.hedge is None, "needs no hedged requests", "hedging"),
        ("quorum.retries", quorum.retries == 0, "needs retries 0", f"{quorum.retries}"),
        ("repair.read_repair", repair.read_repair == "off", "needs read repair off", repair.read_repair),
        ("repair.anti_entropy", repair.anti_entropy is None, "needs anti-entropy off", "it on"),
        (
            "workload.arrival",
            arrival == "probe",
            "models probe workloads (write, then read after t)",
            arrival,
        ),
    ]
    return [
        f"{path}: the Monte Carlo engine {need}; found {found}"
        for path, fits, need, found in checks
        if not fits
    ]


def _require(scenario: Scenario) -> None:
    reasons = applies(scenario)
    if reasons:
        lines = "\n".join(f"  - {reason}" for reason in reasons)
        raise QsimError(f"the Monte Carlo engine cannot run scenario {scenario.name!r}:\n{lines}")


def wars(
    scenario: Scenario,
    trials_per_t: int,
    rng: np.random.Generator,
    progress: Callable[[float, float, str], None] | None = None,
    *,
    delays_ms: tuple[float, ...] | None = None,
    reads_from: Literal["random", "writer"] = "random",
) -> WarsResult:
    """Run ``trials_per_t`` independent write-then-read trials at each of the scenario's probe delays.

    Args:
        progress: called as ``progress(done, total, "trials")`` after each batch of trials drawn
            (at least once per delay).
        delays_ms: the delays t to run, ms, instead of the scenario's.
        reads_from: with region-pair latencies, where each read's coordinator is: in a region
            drawn independently of its write's (``"random"``, the PBS WAN model), or in the
            write's (``"writer"``, as the discrete-event probe, which reads from the writing client).

    Raises:
        QsimError: if the model does not apply to ``scenario`` (see :func:`applies`).
    """
    _require(scenario)
    delays = np.asarray(scenario.workload.arrival.delays if delays_ms is None else delays_ms, dtype=float)
    regions = region_model(scenario)
    random_regions = regions is not None and regions.random_coordinators
    shape = (len(delays), trials_per_t)
    out = {
        "write_latency_ms": np.empty(shape),
        "read_latency_ms": np.empty(shape),
        "fresh": np.empty(shape, dtype=bool),
        "write_replies": np.empty(shape, dtype=np.int8),
        "read_replies": np.empty(shape, dtype=np.int8),
        "consistent_from_ms": np.empty(shape),
    }
    if random_regions:
        out |= {
            "write_region": np.empty(shape, dtype=np.int16),
            "read_region": np.empty(shape, dtype=np.int16),
        }
    chunk = max(1, CHUNK_ELEMENTS // scenario.quorum.n)
    for row, t in enumerate(delays):
        for begin in range(0, trials_per_t, chunk):
            end = min(begin + chunk, trials_per_t)
            drawn = _trials(scenario, float(t), end - begin, rng, regions, reads_from == "writer")
            for name, values in zip(out, drawn, strict=True):
                out[name][row, begin:end] = values
            if progress is not None:
                progress(row * trials_per_t + end, len(delays) * trials_per_t, "trials")
    names = regions.regions if random_regions else ()
    return WarsResult(delays_ms=delays, timeout_ms=scenario.quorum.timeout, regions=names, **out)


def _trials(
    scenario: Scenario,
    t: float,
    m: int,
    rng: np.random.Generator,
    regions: RegionModel | None = None,
    same_region: bool = False,
) -> tuple[np.ndarray, ...]:
    """Return write latency, read latency, fresh, write and read replies, t* (and regions) of ``m`` trials."""
    quorum, timeout = scenario.quorum, scenario.quorum.timeout
    write_request, write_ack, read_request, read_response, where = _delays(
        scenario, m, rng, regions, same_region
    )
    acked = write_request + write_ack
    if quorum.write_fanout == "quorum":  # the others never receive the write
        missed = ~_chosen(scenario, rng, m, quorum.w)
        write_request[missed] = acked[missed] = np.inf
    commit = _kth_smallest(acked, quorum.w)
    answered = read_request + read_response
    if quorum.read_fanout == "quorum":
        answered[~_chosen(scenario, rng, m, quorum.r)] = np.inf
    read_latency, first = _first_answers(answered, quorum.r)
    # Replica j holds the write when its read request arrives: W_j <= c + t + R_j, that is
    # W_j - R_j <= c + t. The read is fresh iff the least W_j - R_j of its first R answers is.
    if quorum.r == 1:
        at = first + quorum.n * np.arange(m)
        earliest = write_request.ravel()[at] - read_request.ravel()[at]
    else:
        margin = write_request - read_request
        np.copyto(margin, np.inf, where=~first)
        earliest = _row_min(margin)
    fresh = earliest <= np.minimum(commit, timeout) + t
    consistent_from = earliest - commit
    return (
        commit,
        read_latency,
        fresh,
        _replies(acked, commit, quorum.w, timeout),
        _replies(answered, read_latency, quorum.r, timeout),
        consistent_from,
        *where,
    )


def _delays(
    scenario: Scenario, m: int, rng: np.random.Generator, regions: RegionModel | None, same_region: bool
) -> tuple:
    """Return the (m, n) W, A, R and S delays and, if each operation draws its region, the regions."""
    n = scenario.quorum.n
    if regions is None:
        drawn = [_spec(scenario, kind).sample(rng, m * n).reshape(m, n) for kind in KINDS]
        return (*drawn, ())
    if not regions.random_coordinators:
        return (*(regions.sample(kind, regions.lane_regions[0], rng, m) for kind in KINDS), ())
    write_region = regions.draw_regions(rng, m)
    read_region = write_region if same_region else regions.draw_regions(rng, m)
    write_request, write_ack = (regions.sample(kind, write_region, rng, m) for kind in KINDS[:2])
    read_request, read_response = (regions.sample(kind, read_region, rng, m) for kind in KINDS[2:])
    return write_request, write_ack, read_request, read_response, (write_region, read_region)


def _spec(scenario: Scenario, kind: str):
    """Return the latency spec of a message kind: its own, else the network default."""
    network = scenario.network
    return getattr(network.kinds, kind) or network.latency


def _chosen(scenario: Scenario, rng: np.random.Generator, m: int, k: int) -> np.ndarray:
    """Return an (m, n) mask of the k replicas an operation sends to, per trial."""
    n = scenario.quorum.n
    if scenario.quorum.replica_selection == "ring" or k == n:
        return np.broadcast_to(np.arange(n) < k, (m, n))  # the first k of the preference list
    draws = rng.random((m, n))
    return draws <= _kth_smallest(draws, k)[:, None]


def _kth_smallest(values: np.ndarray, k: int) -> np.ndarray:
    """Return the k-th smallest of each row."""
    if k == 1:
        return values.min(axis=1)
    if k == values.shape[1]:
        return values.max(axis=1)
    return np.partition(values, k - 1, axis=1)[:, k - 1]


def _row_min(values: np.ndarray) -> np.ndarray:
    """Return the least value of each row (column by column: faster than ``min(axis=1)`` on few columns)."""
    least = values[:, 0].copy()
    for column in range(1, values.shape[1]):
        np.minimum(least, values[:, column], out=least)
    return least


def _first_answers(answered: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the R-th answer time of each row and which answers came first.

    For R = 1 the second value is the column of the first answer; otherwise a mask of the first R.
    Answers at the same time count in column order.
    """
    if r == 1:
        first = answered.argmin(axis=1)
        return answered[np.arange(len(answered)), first], first
    kth = _kth_smallest(answered, r)
    first = answered <= kth[:, None]
    if first.sum() != first.shape[0] * r:  # ties at the R-th answer: keep the earliest columns
        tied = answered == kth[:, None]
        needed = r - (answered < kth[:, None]).sum(axis=1)
        first = (answered < kth[:, None]) | (tied & (np.cumsum(tied, axis=1) <= needed[:, None]))
    return kth, first


def _replies(arrivals: np.ndarray, outcome: np.ndarray, needed: int, timeout_ms: float) -> np.ndarray:
    """Return the replies each operation counted: ``needed``, or those in time when it timed out."""
    replies = np.full(len(outcome), needed, dtype=np.int8)
    late = outcome > timeout_ms
    if late.any():
        replies[late] = (arrivals[late] <= timeout_ms).sum(axis=1)
    return replies


def run(
    scenario: Scenario,
    seed: int | None = None,
    progress: Callable[[float, float, str], None] | None = None,
    *,
    table: bool = False,
) -> RunResult:
    """Run the Monte Carlo engine on a probe scenario and return a result like :func:`qsim.simulate`'s.

    Runs ``workload.arrival.trials`` trials per probe delay from the ``"montecarlo"`` random stream.
    The summary comes straight from the trials' arrays, with ``staleness.t_at_probability``: the
    exact t at which P(consistent) reaches each of 0.9, 0.99, 0.999 and 0.9999. The trials lie one after
    another on a synthetic axis, as a probe with concurrency 1 would run them (see
    :func:`qsim.analysis.montecarlo_summary.ops_history`); that axis is not a simulated clock:
    the runtime and manifest give ``sim_ms`` None and the number of ``trials``, the timeline has
    no windows, and no trial is a warm-up one (trials are independent, so every one counts,
    whatever ``warmup`` says). The result's run id is the scenario's with ``-mc`` appended, so it
    never overwrites the discrete-event run of the scenario.

    Args:
        scenario: a validated scenario that :func:`applies` accepts.
        seed: replaces ``scenario.seed`` when given.
        progress: called as ``progress(done, total, "trials")`` as trials are drawn (see :func:`wars`).
        table: also build the per-trial ops table (two rows per trial) as the result's ``ops``;
            otherwise ``ops`` is None and ``sorted_latency`` carries the latencies the plots draw.

    Raises:
        QsimError: if the model does not apply to ``scenario``, listing every reason.
    """
    from qsim.analysis import montecarlo_summary as summaries  # it builds on this module

    if seed is not None:
        scenario = with_seed(scenario, seed)
    _require(scenario)
    started = datetime.now(UTC)
    wall_start = time.perf_counter()
    rng = RandomStreams(scenario.seed).generator("montecarlo")
    outcome = wars(scenario, scenario.workload.arrival.trials, rng, progress)
    engine_s = time.perf_counter() - wall_start

    latencies = summaries.ok_latencies(outcome)
    summary = summaries.summary_from_arrays(scenario, outcome, latencies)
    ops = summaries.ops_history(outcome, [node.name for node in scenario.cluster.nodes]) if table else None
    timeline = summaries.empty_timeline(scenario.metrics.window)
    wall_s = time.perf_counter() - wall_start
    trials = outcome.fresh.size
    summary["runtime"] = runtime(
        wall_s=wall_s, engine_s=engine_s, sim_ms=None, ops=2 * trials, events=None, trials=trials
    )
    manifest = describe(
        summary,
        engine="montecarlo",
        started=started,
        wall_s=wall_s,
        sim_ms=None,
        events=None,
        error=None,
        trials=trials,
    )
    faults = summaries.no_faults()
    return RunResult(
        scenario,
        summary["run_id"],
        ops,
        summary,
        manifest,
        faults,
        timeline,
        sorted_latency=latencies,
    )
