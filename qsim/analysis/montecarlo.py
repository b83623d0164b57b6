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

As in the discrete-event engine, an operation whose quorum is not complete ``quorum.timeout`` ms
after it started fails then; a read after a failed write starts at timeout + t, and a read is only
checked for staleness when it and its write succeeded. Quorums are chosen at random or, with
``replica_selection: ring``, as the first replicas of the key's preference list. Answers at the
same instant (only possible with atoms such as constants) count in replica order.

Trials are independent across the delays t. :func:`applies` says when the model is the scenario,
:func:`wars` runs it, and :func:`run` turns it into a :class:`qsim.outcome.RunResult`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from qsim.errors import QsimError
from qsim.history import faults_frame
from qsim.metrics import summarize
from qsim.model.recorder import ERROR_TEXT, NO_VERSION, QUORUM_TIMEOUT
from qsim.outcome import RunResult, runtime
from qsim.outcome import manifest as describe
from qsim.rng import RandomStreams
from qsim.scenario import Scenario, run_id, with_seed
from qsim.timeline import availability_timeline, fault_windows_summary

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
    timeout_ms: float

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
    faults, regions, links = len(scenario.faults), len(network.regions), len(network.links)
    checks = [  # (field, whether it fits, what the model needs, what the scenario has)
        ("faults", faults == 0, "models a fault-free cluster", _count(faults, "fault")),
        ("network.loss", network.loss == 0, "needs loss 0 (every message arrives)", f"{network.loss:g}"),
        ("network.regions", regions == 0, "needs no region-pair overrides", _count(regions, "override")),
        ("network.links", links == 0, "needs no link overrides", _count(links, "override")),
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


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + "s" * (number != 1)


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
) -> WarsResult:
    """Run ``trials_per_t`` independent write-then-read trials at each of the scenario's probe delays.

    Args:
        progress: called as ``progress(done, total, "trials")`` after each batch of trials drawn
            (at least once per delay).

    Raises:
        QsimError: if the model does not apply to ``scenario`` (see :func:`applies`).
    """
    _require(scenario)
    delays = np.asarray(scenario.workload.arrival.delays, dtype=float)
    shape = (len(delays), trials_per_t)
    out = {
        "write_latency_ms": np.empty(shape),
        "read_latency_ms": np.empty(shape),
        "fresh": np.empty(shape, dtype=bool),
        "write_replies": np.empty(shape, dtype=np.int8),
        "read_replies": np.empty(shape, dtype=np.int8),
    }
    chunk = max(1, CHUNK_ELEMENTS // scenario.quorum.n)
    for row, t in enumerate(delays):
        for begin in range(0, trials_per_t, chunk):
            end = min(begin + chunk, trials_per_t)
            for name, values in zip(out, _trials(scenario, float(t), end - begin, rng), strict=True):
                out[name][row, begin:end] = values
            if progress is not None:
                progress(row * trials_per_t + end, len(delays) * trials_per_t, "trials")
    return WarsResult(delays_ms=delays, timeout_ms=scenario.quorum.timeout, **out)


def _trials(scenario: Scenario, t: float, m: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Return write latency, read latency, fresh, write replies and read replies of ``m`` trials."""
    quorum, timeout = scenario.quorum, scenario.quorum.timeout
    n = quorum.n
    write_request, write_ack, read_request, read_response = (
        _spec(scenario, kind).sample(rng, m * n).reshape(m, n)
        for kind in ("write_request", "write_ack", "read_request", "read_response")
    )
    acked = write_request + write_ack
    if quorum.write_fanout == "quorum":  # the others never receive the write
        missed = ~_chosen(scenario, rng, m, quorum.w)
        write_request[missed] = acked[missed] = np.inf
    commit = _kth_smallest(acked, quorum.w)
    answered = read_request + read_response
    if quorum.read_fanout == "quorum":
        answered[~_chosen(scenario, rng, m, quorum.r)] = np.inf
    # Replica j holds the write when its read request arrives: W_j <= c + t + R_j.
    start = np.minimum(commit, timeout) + t
    held = write_request <= start[:, None] + read_request
    read_latency, fresh = _first_answers(answered, held, quorum.r)
    return (
        commit,
        read_latency,
        fresh,
        _replies(acked, commit, quorum.w, timeout),
        _replies(answered, read_latency, quorum.r, timeout),
    )


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


def _first_answers(answered: np.ndarray, held: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the R-th answer time of each row and whether one of the first R answers was held.

    Answers at the same time count in column order.
    """
    if r == 1:
        rows, first = np.arange(len(answered)), answered.argmin(axis=1)
        return answered[rows, first], held[rows, first]
    kth = _kth_smallest(answered, r)
    first = answered <= kth[:, None]
    if first.sum() != first.shape[0] * r:  # ties at the R-th answer: keep the earliest columns
        tied = answered == kth[:, None]
        needed = r - (answered < kth[:, None]).sum(axis=1)
        first = (answered < kth[:, None]) | (tied & (np.cumsum(tied, axis=1) <= needed[:, None]))
    return kth, (held & first).any(axis=1)


def _replies(arrivals: np.ndarray, outcome: np.ndarray, needed: int, timeout_ms: float) -> np.ndarray:
    """Return the replies each operation counted: ``needed``, or those in time when it timed out."""
    replies = np.full(len(outcome), needed, dtype=np.int8)
    late = outcome > timeout_ms
    if late.any():
        replies[late] = (arrivals[late] <= timeout_ms).sum(axis=1)
    return replies


def run(
    scenario: Scenario, seed: int | None = None, progress: Callable[[float, float, str], None] | None = None
) -> RunResult:
    """Run the Monte Carlo engine on a probe scenario and return a result like :func:`qsim.simulate`'s.

    Runs ``workload.arrival.trials`` trials per probe delay from the ``"montecarlo"`` random stream,
    and lays them out one after another on a synthetic time axis, as a probe with concurrency 1
    would run them: trial i writes key i, and the delays take turns. That axis is not a simulated
    clock: the runtime and manifest give ``sim_ms`` None and the number of ``trials``, the
    timeline has no windows, and no trial is a warm-up one (trials are independent, so every one
    counts, whatever ``warmup`` says). The result's run id is the scenario's with ``-mc``
    appended, so it never overwrites the discrete-event run of the scenario.

    Args:
        scenario: a validated scenario that :func:`applies` accepts.
        seed: replaces ``scenario.seed`` when given.
        progress: called as ``progress(done, total, "trials")`` as trials are drawn (see :func:`wars`).

    Raises:
        QsimError: if the model does not apply to ``scenario``, listing every reason.
    """
    if seed is not None:
        scenario = with_seed(scenario, seed)
    _require(scenario)
    started = datetime.now(UTC)
    wall_start = time.perf_counter()
    rng = RandomStreams(scenario.seed).generator("montecarlo")
    outcome = wars(scenario, scenario.workload.arrival.trials, rng, progress)
    engine_s = time.perf_counter() - wall_start

    ops = ops_history(outcome, [node.name for node in scenario.cluster.nodes])
    faults = faults_frame([])
    # Trials have no clock to lay windows on: the timeline has none (the plots say why).
    timeline = availability_timeline(ops.iloc[:0], scenario.metrics.window)
    summary = _summary(scenario, ops, faults)
    wall_s = time.perf_counter() - wall_start
    trials = outcome.fresh.size
    summary["runtime"] = runtime(
        wall_s=wall_s, engine_s=engine_s, sim_ms=None, ops=len(ops), events=None, trials=trials
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
    return RunResult(scenario, summary["run_id"], ops, summary, manifest, faults, timeline)


def ops_history(outcome: WarsResult, node_names: list[str]) -> pd.DataFrame:
    """Return the trials as an ops table (:data:`qsim.history.OPS_COLUMNS`), staleness verdicts included.

    Trial i (delay i mod T, T delays) is write op 2i and read op 2i+1 of key i, on client 0, which
    coordinates them; it starts when trial i-1's read ended. A failed operation ends at its
    timeout with version -1, as in the engine. A read returns the write (version 2i) when fresh;
    it is checked when it and its write succeeded, and then stale with k = 1 or fresh with k = 0.
    No operation is a warm-up one: trials are independent.
    """
    count = outcome.fresh.size
    delay = np.tile(outcome.delays_ms, outcome.trials)  # trial-major, so the delays take turns

    def by_trial(values: np.ndarray) -> np.ndarray:
        return values.T.ravel()

    write_ok, read_ok = by_trial(outcome.write_ok), by_trial(outcome.read_ok)
    write_latency = np.where(write_ok, by_trial(outcome.write_latency_ms), outcome.timeout_ms)
    read_latency = np.where(read_ok, by_trial(outcome.read_latency_ms), outcome.timeout_ms)
    fresh, checked = by_trial(outcome.fresh), write_ok & read_ok
    write_start = np.concatenate([[0.0], np.cumsum(write_latency + delay + read_latency)[:-1]])
    read_start = write_start + write_latency + delay
    write_id = 2 * np.arange(count, dtype=np.int64)

    def interleave(write: np.ndarray, read: np.ndarray) -> np.ndarray:
        values = np.empty(2 * count, dtype=np.result_type(write, read))
        values[0::2], values[1::2] = write, read
        return values

    ok = interleave(write_ok, read_ok)
    start = interleave(write_start, read_start)
    latency = interleave(write_latency, read_latency)
    nan = np.full(count, np.nan)
    verdict = interleave(np.zeros(count, bool), checked & ~fresh)
    verdict_mask = interleave(np.ones(count, bool), ~checked)
    return pd.DataFrame(
        {
            "op_id": np.arange(2 * count, dtype=np.int64),
            "client": np.zeros(2 * count, dtype=np.int32),
            "kind": pd.Categorical.from_codes(np.tile(np.array([1, 0], np.int8), count), ["read", "write"]),
            "key": np.repeat(np.arange(count, dtype=np.int64), 2),
            "start_ms": start,
            "end_ms": start + latency,
            "latency_ms": latency,
            "ok": ok,
            "error": pd.array(np.where(ok, None, ERROR_TEXT[QUORUM_TIMEOUT]), dtype="string"),
            "replies": interleave(by_trial(outcome.write_replies), by_trial(outcome.read_replies)),
            "version": interleave(
                np.where(write_ok, write_id, NO_VERSION), np.where(fresh & read_ok, write_id, NO_VERSION)
            ),
            "ts_ms": interleave(write_start, nan),
            "commit_ms": interleave(np.where(write_ok, write_start + write_latency, np.nan), nan),
            "coordinator": pd.Categorical.from_codes(np.zeros(2 * count, np.int8), ["client", *node_names]),
            "stale": pd.arrays.BooleanArray(verdict, mask=verdict_mask),
            "k": pd.arrays.IntegerArray(verdict.astype(np.int64), mask=verdict_mask),
            "t_ms": interleave(nan, np.where(checked, delay, np.nan)),
            "attempts": np.ones(2 * count, dtype=np.int8),
            "faults": pd.array(np.full(2 * count, ""), dtype="string"),
            "warmup": np.zeros(2 * count, dtype=bool),
            "probe_delay_ms": interleave(nan, delay),
        }
    )


def _summary(scenario: Scenario, ops: pd.DataFrame, faults: pd.DataFrame) -> dict:
    """Return the summary sections :func:`qsim.engine.simulate` writes, for a fault-free model run."""
    acknowledged = int(((ops["kind"] == "write") & ops["ok"]).sum())
    return {
        "scenario": scenario.name,
        "run_id": f"{run_id(scenario)}-mc",
        "seed": scenario.seed,
        "engine": "montecarlo",
        "quorum": {"n": scenario.quorum.n, "r": scenario.quorum.r, "w": scenario.quorum.w},
        **summarize(ops),
        "faults": {
            "count": 0,
            "window_ms": scenario.metrics.window,
            "recovery": [],
            **fault_windows_summary(ops, faults),
        },
        # Nothing is lost without faults, and one write per key leaves last-writer-wins nothing to drop.
        "durability": {
            "acknowledged_writes": acknowledged,
            "lost_writes": 0,
            "lost_fraction": 0.0 if acknowledged else None,
            "lww_lost_updates": 0,
        },
        "nodes": {},
        "messages": {},
    }
