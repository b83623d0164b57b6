"""Planning a sweep: expand the grid over the base scenario and validate every point, before any runs.

Kept apart from :mod:`qsim.sweep.run` so that `qsim validate` checks a sweep without loading the
simulator, pandas or the plots.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from qsim.errors import ScenarioError
from qsim.scenario import Scenario, run_id, scenario_from_dict, with_values
from qsim.sweep.expand import Point, expand, invalid_points
from qsim.sweep.spec import Sweep


@dataclass(frozen=True)
class PlannedRun:
    """One point of the sweep with its validated scenario."""

    point: Point
    scenario: Scenario
    run_id: str


def plan(base: Mapping, sweep: Sweep, *, base_dir: str | Path | None = None) -> list[PlannedRun]:
    """Expand ``sweep`` over the raw base scenario data and validate every point.

    Raises:
        SweepError: for a bad sweep, or points whose scenario is invalid (all of them at once).
    """
    base = {key: value for key, value in base.items() if key != "sweep"}
    points = expand(sweep)
    planned, failures = [], []
    for point in points:
        values = dict(point.factors) | ({"seed": point.seed} if point.seed is not None else {})
        try:
            scenario = scenario_from_dict(with_values(base, values), base_dir=base_dir)
        except ScenarioError as exc:
            failures.append((point, exc.problems))
            continue
        planned.append(PlannedRun(point, scenario, run_id(scenario)))
    if failures:
        raise invalid_points(failures, points)
    return planned
