"""Shared test fixtures and the --slow switch.

Statistical tests that take more than a few seconds are marked ``@pytest.mark.slow``; they are
skipped unless pytest runs with ``--slow`` (as CI and the README's test command do).
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


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
