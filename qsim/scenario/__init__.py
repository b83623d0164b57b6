"""Scenarios: the schema, loading from YAML, overrides and the resolved form."""

from qsim.scenario.advice import consistency_warnings
from qsim.scenario.load import (
    check_name,
    load_scenario,
    load_scenario_given,
    read_scenario_data,
    resolved_dict,
    run_id,
    scenario_from_dict,
    with_overrides,
    with_seed,
    with_values,
    written_yaml,
)
from qsim.scenario.schema import Scenario

__all__ = [
    "Scenario",
    "check_name",
    "consistency_warnings",
    "load_scenario",
    "load_scenario_given",
    "read_scenario_data",
    "resolved_dict",
    "run_id",
    "scenario_from_dict",
    "with_overrides",
    "with_seed",
    "with_values",
    "written_yaml",
]
