"""The benchmark's minimal callback model (bench/bench_eventloop.py) and qsim simulate the same protocol.

bench_eventloop.py times qsim's event loop against a minimal SimPy model of core.yaml's protocol;
the comparison means something only if both compute the same thing. They share no code and no
random numbers, so they agree in distribution: mean quorum latencies within a few standard
errors of each other and of the order statistic the protocol implies, and equal stale fractions.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

import qsim
from tests.conftest import ROOT

CORE = ROOT / "bench" / "scenarios" / "core.yaml"
OPS = 12_000


def minimal_module():
    """The benchmark script, imported from its file (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_eventloop", ROOT / "bench" / "bench_eventloop.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stale_reads(is_write, key, start, commit, op_id, version) -> tuple[int, int]:
    """(stale reads, reads with a committed write before them), by brute force over sorted arrays.

    A read is stale if it returns an older version than the newest write of its key that committed
    before it started. Both models stamp a write's version with its start time, so versions are
    ordered as op ids are.
    """
    writes, reads = is_write & ~np.isnan(commit), ~is_write
    keys = np.concatenate([key[writes], key[reads]])
    times = np.concatenate([commit[writes], start[reads]])
    is_read = np.concatenate([np.zeros(writes.sum(), bool), np.ones(reads.sum(), bool)])
    # Events by key, then time; a read starting at a commit's very instant comes first (not after).
    order = np.lexsort((~is_read, times, keys))
    base = keys[order] * 2**32  # ids are below 2**32 and keys ascend: a running max stays in its key
    ids = np.concatenate([op_id[writes], np.full(reads.sum(), -1)])[order]
    newest = np.maximum.accumulate(np.where(is_read[order], -1, base + ids)) - base
    returned = np.concatenate([np.zeros(writes.sum(), np.int64), version[reads]])[order]
    checked = is_read[order] & (newest >= 0)
    return int((returned[checked] < newest[checked]).sum()), int(checked.sum())


def run_minimal(r: int, w: int, keys: int) -> dict:
    model = minimal_module().MinimalModel(OPS, seed=7, r=r, w=w, keys=keys)
    model.run()
    return model.columns()


def run_qsim(r: int, w: int, keys: int):
    overrides = [f"workload.max_ops={OPS}", f"quorum.r={r}", f"quorum.w={w}", f"workload.keys.count={keys}"]
    return qsim.simulate(qsim.load_scenario(CORE, overrides), reraise=True).ops


def order_statistic_mean(k: int, n: int = 3, draws: int = 400_000) -> float:
    """E[k-th smallest of n round trips], a round trip being two exponential(1 ms) links (brute force)."""
    rng = np.random.default_rng(0)
    trips = rng.exponential(1.0, (draws, n)) + rng.exponential(1.0, (draws, n))
    return float(np.sort(trips, axis=1)[:, k - 1].mean())


@pytest.mark.parametrize(("quorum", "keys"), [(2, 10_000), (1, 10)])
def test_the_minimal_model_and_qsim_agree(quorum, keys):
    mine, theirs = run_minimal(quorum, quorum, keys), run_qsim(quorum, quorum, keys)
    expected = order_statistic_mean(quorum)
    for write in (True, False):
        a = (mine["end_ms"] - mine["start_ms"])[mine["is_write"] == write]
        b = theirs.loc[(theirs["kind"] == "write") == write, "latency_ms"].to_numpy()
        se = math.hypot(a.std() / math.sqrt(len(a)), b.std() / math.sqrt(len(b)))
        assert abs(a.mean() - b.mean()) < 5 * se
        assert abs(a.mean() - expected) < 5 * a.std() / math.sqrt(len(a))

    stale_a, checked_a = stale_reads(
        mine["is_write"], mine["key"], mine["start_ms"], mine["commit_ms"], mine["op_id"], mine["version"]
    )
    reads = theirs[theirs["kind"] == "read"]
    stale_b, checked_b = int(reads["stale"].sum()), int(reads["stale"].notna().sum())
    ops = theirs
    brute = stale_reads(
        (ops["kind"] == "write").to_numpy(),
        ops["key"].to_numpy(),
        ops["start_ms"].to_numpy(),
        ops["commit_ms"].to_numpy(),
        ops["op_id"].to_numpy(),
        ops["version"].to_numpy(),
    )
    assert brute == (stale_b, checked_b)  # the brute force agrees with qsim's own checker
    p_a, p_b = stale_a / checked_a, stale_b / checked_b
    if quorum == 2:  # R + W > N, fault-free: a read always sees the last committed write
        assert stale_a == stale_b == 0
    else:
        pooled = (stale_a + stale_b) / (checked_a + checked_b)
        se = math.sqrt(pooled * (1 - pooled) * (1 / checked_a + 1 / checked_b))
        assert p_a > 0.005 and p_b > 0.005
        assert abs(p_a - p_b) < 5 * se


def test_the_lock_step_runs_measure_whole_runs_of_both_sides():
    # Run in slices of simulated time, the minimal model computes what it computes in one run.
    bench = minimal_module()
    whole = bench.MinimalModel(3_000, seed=3)
    whole.run()
    sliced = bench.MinimalModel(3_000, seed=3)
    sliced.start()
    for ms in (100.0, 100.0, 700.0, 1_200.0):  # a repeated and a later time are fine
        sliced.run_to(ms)
        assert sliced.env.now == ms
    sliced.run_to(None)
    for name, column in whole.columns().items():
        np.testing.assert_array_equal(sliced.columns()[name], column, err_msg=name)
    # The lock-step rounds finish both runs (each asserts every operation ended) and time them.
    assert 0 < bench.lockstep_loop(3_000) < 100
    assert 0 < bench.lockstep_simulate(3_000) < 100
