"""qsim: a discrete-event simulator of quorum-replicated storage.

The library API that the CLI and notebooks share::

    import qsim
    scenario = qsim.load_scenario("scenarios/quickstart.yaml", ["quorum.r=1"])
    result = qsim.simulate(scenario, seed=3)
    folder = qsim.write_run(result)
    saved = qsim.load_run(folder)          # ops DataFrame, summary, manifest
    sweep = qsim.load_sweep("results/choose-nrw")   # runs and aggregate tables
"""

from qsim.analysis import SavedSweep, load_sweep
from qsim.engine import RunResult, simulate
from qsim.errors import QsimError, ScenarioError
from qsim.results import SavedRun, load_run, write_run
from qsim.scenario import (
    Scenario,
    consistency_warnings,
    load_scenario,
    resolved_dict,
    run_id,
    scenario_from_dict,
)

__all__ = [
    "QsimError",
    "RunResult",
    "SavedRun",
    "SavedSweep",
    "Scenario",
    "ScenarioError",
    "consistency_warnings",
    "load_run",
    "load_scenario",
    "load_sweep",
    "resolved_dict",
    "run_id",
    "scenario_from_dict",
    "simulate",
    "write_run",
]
