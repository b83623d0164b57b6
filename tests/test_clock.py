"""qsim.model.clock: cheap callbacks, and the event loop that runs a model, against SimPy's own."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

import qsim
from qsim.model.build import build
from qsim.model.clock import call_later, run_until
from qsim.rng import RandomStreams


def _busy_env(run, seed: int = 3):
    """Callbacks, processes, timeouts and a failing-then-caught process; return what happened, in order."""
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    seen = []

    def tick(event):
        seen.append(("tick", env.now, event.value))
        if event.value < 200:
            call_later(env, float(rng.exponential(1.0)), tick, event.value + 1)

    def worker(name):
        for step in range(20):
            yield env.timeout(float(rng.exponential(2.0)))
            seen.append((name, env.now, step))

    def catcher():
        try:
            yield env.process(failing())
        except ValueError as error:
            seen.append(("caught", env.now, str(error)))

    def failing():
        yield env.timeout(5)
        raise ValueError("inner")

    call_later(env, 0.0, tick, 0)
    done = env.all_of([env.process(worker("a")), env.process(worker("b")), env.process(catcher())])
    value = run(env, done)
    return seen, env.now, sorted(value.todict().values(), key=repr)


def test_run_until_runs_exactly_what_simpy_runs():
    mine = _busy_env(run_until)
    simpys = _busy_env(lambda env, until: env.run(until=until))
    assert len(mine[0]) > 60 and {kind for kind, *_ in mine[0]} == {"tick", "a", "b", "caught"}
    assert mine == simpys


def test_a_failure_nobody_catches_is_raised_as_by_simpy():
    env = simpy.Environment()

    def failing():
        yield env.timeout(1)
        raise KeyError("lost")

    env.process(failing())
    with pytest.raises(KeyError, match="lost") as raised:
        run_until(env, env.timeout(10))
    assert isinstance(raised.value.__cause__, KeyError)
    assert env.now == 1


def test_an_empty_schedule_before_the_end_is_an_error_and_a_processed_end_returns_its_value():
    env = simpy.Environment()
    never = env.event()
    env.timeout(1)
    with pytest.raises(RuntimeError, match="No scheduled events left"):
        run_until(env, never)
    done = env.timeout(1, value="v")
    assert run_until(env, done) == "v"
    assert run_until(env, done) == "v"  # processed already: at once


def test_callbacks_after_the_stop_run_when_the_loop_resumes():
    env, late = simpy.Environment(), []
    end = env.timeout(2, value=7)

    def add_late(_event):  # a callback on the end event after the stop that run_until appended
        end.callbacks.append(lambda _: late.append(env.now))

    call_later(env, 1.0, add_late)
    assert run_until(env, end) == 7
    assert late == []
    env.run()  # as after Environment.run: the end event is due again, with what the stop left
    assert late == [2]


@pytest.mark.parametrize(
    "overrides",
    [[], ["quorum.protocol=leader", "quorum.n=5"], ["faults=[{at: 200, crash: n1, recover_at: 600}]"]],
)
def test_a_model_run_by_run_until_records_what_env_run_records(overrides):
    s = qsim.load_scenario("bench/scenarios/core.yaml", ["workload.max_ops=3000", *overrides])
    mine, simpys = build(s, RandomStreams(1)), build(s, RandomStreams(1))
    mine.run()
    stop = simpys.start()
    simpys.env.run(until=stop)
    for name, column in mine.recorder.columns().items():
        np.testing.assert_array_equal(column, simpys.recorder.columns()[name], err_msg=name)
    assert mine.env.now == simpys.env.now
