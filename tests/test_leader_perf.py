"""What the leader protocol's fast paths rely on, checked on the real model.

Followers apply committed entries in batches (see ``Node.apply``): a run must end exactly as if
they applied each entry at once. The hot objects keep their attributes in slots: an attribute
added to ``__init__`` but not to ``__slots__`` still works, but lands in an unshared dict and
slows every access, so a test names it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import qsim
from qsim.model.build import build
from qsim.model.clock import call_later
from qsim.rng import RandomStreams
from tests.test_leader import BASE, CHAOS, scenario

CORE = "bench/scenarios/core.yaml"
SKEW = "{at: 0, clock_skew: n1, offset: 0}"  # a fault: the checked network path


def _run(s: qsim.Scenario, seed: int, eager: bool):
    model = build(s, RandomStreams(seed))
    if eager:
        model.protocol.apply_span = 0  # every follower applies each entry as it learns it is committed
    model.run()
    return model


@pytest.mark.parametrize("seed", [1, 2])
def test_followers_that_apply_in_batches_end_with_the_stores_of_applying_at_once(seed):
    # Crashes, partitions and loss, with compaction every few dozen entries: the moments a
    # follower's store is read or replaced (crash, election, snapshot, the run's end) all happen.
    s = scenario({"snapshot_every": 25}, **CHAOS, workload={**BASE["workload"], "max_ops": 2500})
    lazy, eager = _run(s, seed, eager=False), _run(s, seed, eager=True)
    assert lazy.protocol.apply_span == 50
    pd.testing.assert_frame_equal(pd.DataFrame(lazy.held_versions()), pd.DataFrame(eager.held_versions()))
    for name, column in lazy.recorder.columns().items():
        np.testing.assert_array_equal(column, eager.recorder.columns()[name], err_msg=name)
    assert lazy.protocol.summary() == eager.protocol.summary()
    assert sum(node.snapshots_sent for node in lazy.protocol.nodes) > 0  # snapshots were installed
    # Before the run's end, a follower's store may lag its commit index; settling caught it up.
    assert all(node.applied == node.commit for node in lazy.protocol.nodes)


def _apply_lags(s: qsim.Scenario, every_ms: float) -> list[int]:
    """Run ``s``; every ``every_ms``, each node's commit index less its last applied index."""
    model = build(s, RandomStreams(1))
    lags = []

    def look(_event) -> None:
        lags.extend(node.commit - node.applied for node in model.protocol.nodes)
        call_later(model.env, every_ms, look)

    call_later(model.env, every_ms, look)
    model.run()
    return lags


def test_a_calm_follower_applies_only_where_it_would_compact():
    s = scenario({"snapshot_every": 100}, workload={**BASE["workload"], "max_ops": 1000})
    assert 0 < max(_apply_lags(s, 50.0)) < 2 * 100  # behind, but never past where it compacts


def test_follower_reads_see_every_entry_applied_as_soon_as_it_is_committed():
    s = scenario({"read_mode": "follower"}, workload={**BASE["workload"], "max_ops": 1000})
    lags = _apply_lags(s, 7.0)
    assert len(lags) > 100 and max(lags) == 0


@pytest.mark.parametrize(
    "overrides",
    [
        ["quorum.protocol=leader"],
        ["quorum.protocol=leader", "quorum.leader.read_mode=lease", f"faults=[{SKEW}]"],
        [],
        ["quorum.failover=sloppy", "repair.read_repair=background"],
        ["quorum.system={kind: grid, rows: 1, cols: 3}"],
    ],
)
def test_hot_objects_hold_every_attribute_in_a_slot(overrides):
    s = qsim.load_scenario(CORE, ["cluster.nodes=3", "workload.max_ops=500", *overrides])
    model = build(s, RandomStreams(1))
    model.run()
    protocol = model.protocol
    objects = [protocol, *getattr(protocol, "nodes", [])]
    for obj in objects:
        outside = {name for name in vars(obj) if not hasattr(type(obj), name)}  # not a method put in place
        assert not outside, f"{type(obj).__name__}: {sorted(outside)} not in __slots__"
