"""The event loop's bookkeeping: message counts derived at the end, deadlines without a timer per op."""

from __future__ import annotations

import math

import pytest

import qsim
from qsim.model.build import build
from qsim.rng import RandomStreams
from qsim.scenario.schema import MESSAGE_KINDS
from tests.conftest import ROOT, SCENARIOS

CORE = ROOT / "bench" / "scenarios" / "core.yaml"


def counts(model) -> tuple[list, list, list]:
    """(delivered per kind, dropped per kind, received per endpoint) as the network reports them."""
    network = model.network
    kinds = range(len(MESSAGE_KINDS))
    endpoints = range(len(network.endpoint_regions))
    return (
        [network.delivered(k) for k in kinds],
        list(network.dropped),
        [network.received(e) for e in endpoints],
    )


def run(path, overrides, trace=()):
    scenario = qsim.load_scenario(path, overrides)
    model = build(scenario, RandomStreams(scenario.seed), trace)
    model.run()
    return model


@pytest.mark.parametrize(
    ("path", "overrides"),
    [
        (SCENARIOS / "crash-recover.yaml", ["workload.max_ops=6000", "network.loss=0.01"]),
        (SCENARIOS / "partition-majority.yaml", ["duration=9s", "network.loss=0.01"]),
        (
            SCENARIOS / "quickstart.yaml",
            ["duration=1s", "repair.read_repair=foreground", "network.loss=0.01"],
        ),
    ],
)
def test_derived_counts_match_every_message_traced(path, overrides):
    # Tracing every operation records each message's fate one by one, on another code path.
    model = run(path, overrides, trace=range(10**9))
    records = model.network.tracer.records  # [op_id, kind, src, dst, sent, delivered, dropped, ...]
    delivered, dropped, received = counts(model)
    for kind in range(len(MESSAGE_KINDS)):
        assert delivered[kind] == sum(1 for r in records if r[1] == kind and not math.isnan(r[5]))
        assert dropped[kind] == sum(1 for r in records if r[1] == kind and r[6])
    for endpoint, count in enumerate(received):
        assert count == sum(1 for r in records if r[3] == endpoint and not math.isnan(r[5]))
    assert sum(dropped) > 0
    # Mid-run, each window's messages per node (counted while others were in flight) match too.
    window = model.sampler._window
    for start, node, messages, _, _ in model.sampler.records:
        assert messages == sum(1 for r in records if r[3] == node and start <= r[5] < start + window)


def test_the_fault_free_path_counts_as_the_checked_path_does():
    # Tracing takes the checked path and changes no outcome: the fast path's counts must match.
    overrides = ["workload.max_ops=5000", "network.loss=0.02"]
    fast, checked = run(CORE, overrides), run(CORE, overrides, trace=range(10))
    assert counts(fast) == counts(checked)
    assert fast.sampler.records == checked.sampler.records  # read mid-run, with messages in flight
    assert sum(counts(fast)[1]) > 0
    assert fast.recorder.columns()["end_ms"].tolist() == checked.recorder.columns()["end_ms"].tolist()


def test_a_failure_detector_does_not_arm_a_timer_per_operation():
    # Fault-free with a detector (sloppy failover): an operation costs its arrival and 2N messages.
    ops = 5000
    model = run(CORE, [f"workload.max_ops={ops}", "quorum.failover=sloppy", "quorum.timeout=100ms"])
    events = next(model.env._eid)
    assert len(model.recorder) == ops
    assert events < 7.05 * ops
