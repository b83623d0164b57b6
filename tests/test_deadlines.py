"""Deadlines hold the operations in flight, not every operation of the last timeout."""

from __future__ import annotations

import tracemalloc

import simpy

import qsim
from qsim.model.build import build
from qsim.model.timeouts import Deadlines
from qsim.rng import RandomStreams
from tests.conftest import SCENARIOS


def event_loop_peak_bytes(timeout: str, trials: int) -> int:
    """Peak traced memory of the event loop of pbs-probe.yaml with that timeout and trial count."""
    scenario = qsim.load_scenario(
        SCENARIOS / "pbs-probe.yaml", [f"quorum.timeout={timeout}", f"workload.arrival.trials={trials}"]
    )
    tracemalloc.start()
    try:
        model = build(scenario, RandomStreams(scenario.seed))
        built = tracemalloc.get_traced_memory()[0]
        model.run()
        return tracemalloc.get_traced_memory()[1] - built
    finally:
        tracemalloc.stop()


def test_memory_does_not_depend_on_the_timeout():
    # A probe run lasts ~5 s; a 1 h timeout once kept all of its operations queued to the end.
    short, long = event_loop_peak_bytes("1s", 1000), event_loop_peak_bytes("1h", 1000)
    assert long < 1.15 * short


class Op:
    def __init__(self, op_id: int):
        self.id, self.done = op_id, False


def test_finished_operations_are_dropped_and_the_others_still_expire():
    env = simpy.Environment()
    expired = []
    deadlines = Deadlines(env, expired.append)
    ops = [Op(i) for i in range(10_000)]
    for op in ops:
        deadlines.add(op, 1e9)
        if op.id % 100:
            op.done = True  # 99 of every 100 finish before their deadline
    assert len(deadlines.pending()) <= 2 * Deadlines._MIN_PRUNE
    env.run()
    assert [op.id for op in expired] == list(range(0, 10_000, 100))


def test_with_a_detector_finished_operations_stay_until_settled():
    env = simpy.Environment()
    checked, unsettled = [], {5, 17}
    deadlines = Deadlines(env, lambda op: None, checked.append, lambda op: op.id not in unsettled)
    for i in range(5000):
        op = Op(i)
        op.done = True
        deadlines.add(op, 1e9)
    assert {op.id for op in deadlines.pending()} >= unsettled
    env.run()
    assert {5, 17} <= {op.id for op in checked}
