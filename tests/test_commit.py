"""A write's commit under retries: the first attempt to reach W acknowledgements commits it.

The history is rebuilt from a full message trace, independently of the coordinator's bookkeeping,
and every read's staleness verdict is checked by brute force against it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import qsim

TIMEOUT_MS, BACKOFF_MS, RETRIES, W = 20.0, 5.0, 2, 1

# Replies lost between the regions: a first attempt often reaches its W acks while its answer to
# the client is lost, so the client retries a write that has already committed.
LOST_REPLIES = {
    "name": "lost-replies",
    "seed": 1,
    "duration": "4s",
    "cluster": {
        "nodes": [
            {"name": "a1", "region": "a"},
            {"name": "b1", "region": "b"},
            {"name": "b2", "region": "b"},
            {"name": "b3", "region": "b"},
        ]
    },
    "network": {
        "latency": {"dist": "exponential", "mean": 1},
        "regions": [{"between": ["a", "b"], "loss": 0.3}],
    },
    "quorum": {
        "n": 3,
        "r": 1,
        "w": W,
        "coordinator": "random",
        "timeout": TIMEOUT_MS,
        "retries": RETRIES,
        "retry_backoff": BACKOFF_MS,
    },
    "workload": {
        "arrival": {"type": "poisson", "rate": "500/s"},
        "clients": 2,
        "client_regions": ["a"],
        "keys": {"count": 20},
    },
}


@pytest.fixture(scope="module")
def traced() -> qsim.RunResult:
    result = qsim.simulate(qsim.scenario_from_dict(LOST_REPLIES), trace_messages=10**9)
    assert result.error is None
    return result


def attempt_deadlines(start_ms: float) -> list[float]:
    """When each attempt of an operation started at ``start_ms`` is given up (README, Retries)."""
    deadlines = [start_ms + TIMEOUT_MS]
    for k in range(1, RETRIES + 1):
        deadlines.append(deadlines[-1] + BACKOFF_MS * 2 ** (k - 1) + TIMEOUT_MS)
    return deadlines


def commits_from_trace(ops: pd.DataFrame, messages: pd.DataFrame, first_only_from_last: bool = False):
    """Each write's commit time, from the acks each attempt's coordinator received by its deadline.

    With ``first_only_from_last``, only the write's last attempt counts (the old, wrong definition).
    """
    acks = messages[(messages["kind"] == "write_ack") & ~messages["dropped"]]
    by_attempt = {key: group["delivered_ms"].to_numpy() for key, group in acks.groupby(["op_id", "attempt"])}
    commits = {}
    for write in ops[ops["kind"] == "write"].itertuples():
        deadlines = attempt_deadlines(write.start_ms)
        attempts = [write.attempts - 1] if first_only_from_last else range(write.attempts)
        times = []
        for a in attempts:
            delivered = np.sort(by_attempt.get((write.op_id, a), np.array([])))
            delivered = delivered[delivered <= deadlines[a]]
            if len(delivered) >= W:
                times.append(delivered[W - 1])
        commits[write.op_id] = min(times) if times else math.nan
    return commits


def brute_force_staleness(ops: pd.DataFrame, commits: dict) -> dict:
    """(stale, k) of every ok read with a committed write of its key at or before its start."""
    writes = ops[ops["kind"] == "write"].set_index("op_id")
    order = {op_id: (w.ts_ms, w.client, op_id) for op_id, w in writes.iterrows()}
    verdicts = {}
    for read in ops[(ops["kind"] == "read") & ops["ok"]].itertuples():
        committed = [order[w] for w in writes.index[writes["key"] == read.key] if commits[w] <= read.start_ms]
        if not committed:
            continue
        returned = order[read.version] if read.version >= 0 else None
        missed = sum(1 for v in committed if returned is None or v > returned)
        verdicts[read.op_id] = (missed > 0, missed)
    return verdicts


def test_commit_is_the_first_attempt_to_reach_w_acks(traced):
    ops, messages = traced.ops, traced.messages
    commits = commits_from_trace(ops, messages)
    writes = ops[ops["kind"] == "write"].set_index("op_id")
    expected = pd.Series(commits).reindex(writes.index)
    np.testing.assert_allclose(writes["commit_ms"], expected, rtol=0, atol=1e-9)
    # The situation under test really happens: committed writes that the client retried anyway.
    retried_after_commit = (writes["attempts"] > 1) & (writes["commit_ms"] < writes["end_ms"])
    assert retried_after_commit.mean() > 0.05


def test_retries_keep_the_first_version_timestamp(traced):
    ops, messages = traced.ops, traced.messages
    requests = messages[messages["kind"] == "write_request"]
    first_sent = requests.groupby("op_id")["sent_ms"].min()
    writes = ops[(ops["kind"] == "write") & ops["op_id"].isin(first_sent.index)].set_index("op_id")
    np.testing.assert_allclose(writes["ts_ms"], first_sent.reindex(writes.index), rtol=0, atol=1e-9)
    # Every attempt carries the same version: no replica ever holds two versions of one write.
    assert (writes["attempts"] > 1).any()


def test_every_read_is_checked_against_the_traced_commits(traced):
    ops = traced.ops
    verdicts = brute_force_staleness(ops, commits_from_trace(ops, traced.messages))
    checked = ops[ops["stale"].notna()].set_index("op_id")
    assert set(checked.index) == set(verdicts)
    for op_id, (stale, k) in verdicts.items():
        assert (bool(checked.at[op_id, "stale"]), int(checked.at[op_id, "k"])) == (stale, k), op_id
    # Taking the commit from the last attempt (the old rule) would call some of these reads fresh.
    old = brute_force_staleness(ops, commits_from_trace(ops, traced.messages, first_only_from_last=True))
    called_fresh = [op for op, (stale, _) in verdicts.items() if stale and not old.get(op, (False, 0))[0]]
    assert called_fresh
