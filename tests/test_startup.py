"""Starting qsim loads only what the command needs: no pandas, pyarrow, matplotlib, SimPy or numpy
for help, for `import qsim`, or for checking a leaderless scenario and its sweep (issue 11: instant
start). Checking a leader scenario loads numpy: it draws election timeouts to check them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import SCENARIOS

HEAVY = ("pandas", "pyarrow", "matplotlib", "simpy", "numpy")


def loaded_after(code: str) -> set[str]:
    """The heavy modules a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys\nprint('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    return set(filter(None, line.removeprefix("loaded:").split(",")))


def cli(*args: str) -> str:
    return (
        "from click.testing import CliRunner\nfrom qsim.cli import main\n"
        f"result = CliRunner().invoke(main, {list(args)!r})\n"
        "assert result.exit_code == 0, result.output"
    )


def test_import_qsim_loads_nothing_heavy_and_names_still_resolve():
    assert loaded_after("import qsim") == set()
    assert loaded_after("import qsim\nassert qsim.scenario_from_dict and qsim.scenario.check_name") == set()
    assert {"pandas", "simpy"} <= loaded_after("import qsim\nqsim.simulate")


@pytest.mark.parametrize(
    "args",
    [("--help",), ("run", "--help"), ("validate", str(SCENARIOS / "choose-nrw.yaml"))],
    ids=["help", "run-help", "validate-a-sweep"],
)
def test_help_and_validate_load_nothing_heavy(args):
    assert loaded_after(cli(*args)) == set()


def test_validating_a_leader_scenario_loads_numpy_only():
    assert loaded_after(cli("validate", str(SCENARIOS / "leader-failover.yaml"))) == {"numpy"}
