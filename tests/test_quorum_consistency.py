"""Staleness and the consistency checkers on a quorum system's runs, unchanged.

A 2x3 grid reads a row and writes one node of every row: every read quorum meets every write
quorum, so no read can miss a committed write, but two write quorums may miss each other. qsim's
versions are (timestamp, writer, op id) with the timestamp taken by the coordinator when the write
begins (Dynamo's last-writer-wins, not Gifford's read-the-version-then-write), so two writes that
miss each other are still ordered by their timestamps: without skew, no stale read and no
linearizability violation on five hot keys. With node n1's clock set 50 ms back, the writes it
coordinates carry old timestamps: a write that ended before another began can lose to it (a lost
update), which the linearizability checker must find, per key, on the same run shape.
"""

from __future__ import annotations

import qsim


def run(skewed: bool) -> dict:
    spec = {
        "name": "skew",
        "duration": "3s",
        "cluster": {"nodes": 6},
        "network": {"latency": {"dist": "exponential", "mean": "1ms"}},
        "quorum": {
            "read_fanout": "quorum",
            "write_fanout": "quorum",
            "coordinator": "random",  # nodes coordinate: n1's clock stamps a sixth of the writes
            "system": {"kind": "grid", "rows": 2, "cols": 3, "read": "row", "write": "row_cover"},
        },
        "workload": {
            "arrival": {"type": "poisson", "rate": "1000/s"},
            "clients": 8,
            "read_fraction": 0.5,
            "keys": {"count": 5},
        },
    }
    if skewed:
        spec["faults"] = [{"clock_skew": "n1", "offset": "-50ms", "at": "0s"}]
    result = qsim.simulate(qsim.scenario_from_dict(spec), seed=1)
    assert result.error is None
    return result.summary


def test_a_grid_whose_writes_miss_each_other_is_consistent_without_skew():
    summary = run(skewed=False)
    assert not summary["quorum_system"]["writes_intersect"]
    assert summary["staleness"]["reads_checked"] > 1000
    assert summary["staleness"]["stale"] == 0
    assert summary["consistency"]["linearizability"]["violations"] == 0


def test_the_linearizability_checker_finds_the_lost_updates_of_a_skewed_clock():
    linearizability = run(skewed=True)["consistency"]["linearizability"]
    assert linearizability["violations"] > 10
    assert linearizability["keys_invalid"] >= 3  # of the five keys
