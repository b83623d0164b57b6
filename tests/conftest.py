"""Shared test fixtures and the --slow switch.

Statistical tests that take more than a few seconds are marked ``@pytest.mark.slow``; they are
skipped unless pytest runs with ``--slow`` (as CI and the README's test command do).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from qsim.model.replica import Replica

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
# What a run folder holds (README, "Results layout"): listed here, not taken from qsim.output.results.
DATA_FILES = (
    "scenario.resolved.yaml",
    "manifest.json",
    "ops.parquet",
    "faults.parquet",
    "timeline.parquet",
    "nodes.parquet",
    "summary.json",
    "summary.md",
    "scenario.yaml",
)
PLOT_FILES = (
    "plots/latency_percentiles.png",
    "plots/latency_cdf.png",
    "plots/t_visibility.png",
    "plots/availability_timeline.png",
    "plots/staleness_timeline.png",
    "plots/node_utilization.png",
)


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False, help="also run the slow statistical tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow statistical test: run pytest with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def scenarios_dir() -> Path:
    """The folder of shipped scenarios."""
    return SCENARIOS


@pytest.fixture
def failing_write(monkeypatch) -> None:
    """Make the 50th write a replica applies raise RuntimeError (fault injection into the model)."""
    original = Replica._write
    calls = itertools.count(1)

    def apply_write(self, message):
        if next(calls) == 50:
            raise RuntimeError("injected failure in Replica._write")
        return original(self, message)

    monkeypatch.setattr(Replica, "_write", apply_write)
