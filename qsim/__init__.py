"""qsim: a discrete-event simulator of quorum-replicated storage.

The library API that the CLI and notebooks share::

    import qsim
    scenario = qsim.load_scenario("scenarios/quickstart.yaml", ["quorum.r=1"])
    result = qsim.simulate(scenario, seed=3)
    folder = qsim.write_run(result)
    saved = qsim.load_run(folder)          # ops DataFrame, summary, manifest
    sweep = qsim.load_sweep("results/choose-nrw")   # runs and aggregate tables
"""

from __future__ import annotations

import importlib

# Each name loads its module on first use (PEP 562), so `qsim --help` and `import qsim` do not
# pay for pandas, pyarrow and matplotlib before anything needs them.
_WHERE = {
    "SavedSweep": "qsim.analysis",
    "load_sweep": "qsim.analysis",
    "RunResult": "qsim.engine",
    "simulate": "qsim.engine",
    "QsimError": "qsim.errors",
    "ScenarioError": "qsim.errors",
    "SavedRun": "qsim.output.saved",
    "load_run": "qsim.output.saved",
    "write_run": "qsim.output.results",
    "Scenario": "qsim.scenario",
    "consistency_warnings": "qsim.scenario",
    "load_scenario": "qsim.scenario",
    "resolved_dict": "qsim.scenario",
    "run_id": "qsim.scenario",
    "scenario_from_dict": "qsim.scenario",
}


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
    else:  # a submodule, as `import qsim` made them all available before names loaded lazily
        try:
            value = importlib.import_module(f"qsim.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"qsim.{name}":
                raise
            raise AttributeError(f"module 'qsim' has no attribute {name!r}") from None
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


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
