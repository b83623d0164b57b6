"""Hostile output folders and damaged results, through the real CLI: nothing written where it must
not be, no user file replaced, and every damaged file reported by name without a traceback."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import qsim
from qsim.cli import main
from qsim.errors import QsimError
from tests.conftest import SCENARIOS

QUICKSTART = SCENARIOS / "quickstart.yaml"
SHORT = ("--set", "duration=200ms", "--set", "warmup=0")
RUN = ("run", str(QUICKSTART), *SHORT, "--no-plots", "--quiet")
SWEEP = ("sweep", str(QUICKSTART), *SHORT, "--executor", "serial", "--no-plots", "--quiet")
GRID = ("--factor", "quorum.r=1,2")


def invoke(*args) -> Result:
    """Run ``qsim ARGS`` in-process."""
    return CliRunner().invoke(main, [str(arg) for arg in args])


def assert_refused(result: Result, *fragments: str) -> None:
    """A non-zero exit with a message (no traceback) that holds every fragment."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


def user_folder(path: Path) -> Path:
    """A folder of a user's own files, two of them named like files of a run."""
    path.mkdir()
    (path / "notes.txt").write_text("mine\n")
    (path / "messages.parquet").write_bytes(b"my own table")
    (path / "plots").mkdir()
    (path / "plots" / "latency_cdf.png").write_bytes(b"my own plot")
    return path


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    assert invoke(*RUN, "--out", out).exit_code == 0
    return out


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "sweep"
    assert invoke(*SWEEP, *GRID, "--out", out).exit_code == 0
    return out


# --- 1. where results may be written ----------------------------------------------------------


@pytest.mark.parametrize("command", [RUN, (*SWEEP, *GRID), (*SWEEP, *GRID, "--resume")])
def test_a_folder_of_user_files_is_refused_and_left_untouched(tmp_path, command):
    folder = user_folder(tmp_path / "mine")
    before = snapshot(folder)
    result = invoke(*command, "--out", folder)
    assert_refused(result, "--out", str(folder), "notes.txt", "expected a new or empty folder")
    assert snapshot(folder) == before


@pytest.mark.parametrize("out", [".", ""])
@pytest.mark.parametrize("command", [RUN, (*SWEEP, *GRID)])
def test_the_current_folder_is_not_a_results_folder(tmp_path, monkeypatch, command, out):
    monkeypatch.chdir(user_folder(tmp_path / "cwd"))
    before = snapshot(Path.cwd())
    assert_refused(invoke(*command, "--out", out), "--out")
    assert snapshot(Path.cwd()) == before


def test_a_file_is_not_a_results_folder(tmp_path):
    (tmp_path / "file").write_text("mine\n")
    assert_refused(invoke(*RUN, "--out", tmp_path / "file"), "--out")
    assert (tmp_path / "file").read_text() == "mine\n"


def test_the_folder_is_checked_before_the_run(tmp_path):
    # A run long enough to notice: the refusal must not wait for it.
    folder = user_folder(tmp_path / "mine")
    result = invoke("run", QUICKSTART, "--set", "duration=30s", "--no-plots", "--out", folder)
    assert_refused(result, "--out")


def test_an_earlier_or_interrupted_run_folder_is_accepted(run_folder, tmp_path):
    again = shutil.copytree(run_folder, tmp_path / "again")
    assert invoke(*RUN, "--seed", "2", "--out", again).exit_code == 0
    assert json.loads((again / "manifest.json").read_text())["seed"] == 2
    interrupted = tmp_path / "interrupted"  # killed after its first file
    interrupted.mkdir()
    shutil.copy(run_folder / "scenario.resolved.yaml", interrupted)
    (interrupted / ".ops.parquet.0000abcd-4194303.x1.tmp").write_bytes(b"half")
    assert invoke(*RUN, "--out", interrupted).exit_code == 0
    assert (interrupted / "manifest.json").is_file()


def test_write_run_refuses_a_folder_of_user_files(tmp_path):
    result = qsim.simulate(qsim.load_scenario(QUICKSTART, ["duration=100ms", "warmup=0"]))
    folder = user_folder(tmp_path / "mine")
    before = snapshot(folder)
    with pytest.raises(QsimError, match=r"notes\.txt"):
        qsim.write_run(result, folder, plots_too=False)
    assert snapshot(folder) == before


def test_a_sweep_may_share_the_scenarios_folder_with_its_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert invoke(*RUN).exit_code == 0  # results/quickstart/<run id>/
    result = invoke(*SWEEP, *GRID)  # results/quickstart/
    assert result.exit_code == 0, result.output
    assert (tmp_path / "results" / "quickstart" / "runs.parquet").is_file()


def test_a_sweep_folder_is_accepted_again(sweep_folder, tmp_path):
    again = shutil.copytree(sweep_folder, tmp_path / "again")
    assert invoke(*SWEEP, *GRID, "--out", again).exit_code == 0
    assert invoke(*SWEEP, *GRID, "--out", again, "--resume").exit_code == 0


def test_report_does_not_replace_a_file_it_did_not_write(run_folder, tmp_path):
    for name, text in [("notes.txt", "mine\n"), ("page.html", "<!DOCTYPE html>\n<p>mine</p>\n")]:
        (tmp_path / name).write_text(text)
        assert_refused(invoke("report", run_folder, "--out", tmp_path / name), str(tmp_path / name))
        assert (tmp_path / name).read_text() == text


def test_report_replaces_its_own_report(run_folder, tmp_path):
    out = tmp_path / "report.html"
    assert invoke("report", run_folder, "--out", out).exit_code == 0
    first = out.read_text()
    assert invoke("report", run_folder, "--out", out).exit_code == 0
    assert out.read_text() == first
    # A report of an earlier version, without the marker, ends with the same footer.
    out.write_text(first.replace('<meta name="generator" content="qsim">\n', ""))
    assert invoke("report", run_folder, "--out", out).exit_code == 0
    assert out.read_text() == first


@pytest.mark.parametrize("out", ["", "."])
def test_report_out_is_not_a_folder(run_folder, tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    assert_refused(invoke("report", run_folder, "--out", out), "--out")
    assert list(tmp_path.iterdir()) == []


# --- 2. seeds ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [str(2**63), "99999999999999999999"])
def test_a_seed_beyond_the_schema_is_refused_cleanly(tmp_path, seed):
    assert_refused(invoke(*RUN, "--seed", seed, "--out", tmp_path / "out"), "--seed", str(2**63 - 1))
    assert not (tmp_path / "out").exists()


def test_the_largest_seed_runs(tmp_path):
    result = invoke(*RUN, "--seed", str(2**63 - 1), "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["seed"] == 2**63 - 1


# --- 3. damaged point files of a sweep --------------------------------------------------------------


def point_paths(out: Path) -> list[Path]:
    return sorted(p for p in (out / "points").glob("*.json") if len(p.stem) == 12)


def test_a_foreign_file_in_points_is_left_alone(sweep_folder, tmp_path):
    out = shutil.copytree(sweep_folder, tmp_path / "sweep")
    (out / "points" / "mine.json").write_text('{"x": 1}')
    for extra in ((), ("--resume",)):
        result = invoke(*SWEEP, *GRID, "--out", out, *extra)
        assert result.exit_code == 0, result.output
        assert (out / "points" / "mine.json").read_text() == '{"x": 1}'
        assert qsim.load_sweep(out).runs["error"].isna().all()


@pytest.mark.parametrize(
    "damage", ["", "{", "[1, 2]", '"text"', "\xff\xfe", "{}", "no error field", "no metric"]
)
def test_a_damaged_point_file_is_run_again_with_a_warning(sweep_folder, tmp_path, damage):
    out = shutil.copytree(sweep_folder, tmp_path / "sweep")
    damaged, kept = point_paths(out)
    row = json.loads(damaged.read_text())
    if damage == "no error field":
        damage = json.dumps({k: v for k, v in row.items() if k != "error"})
    elif damage == "no metric":
        damage = json.dumps({k: v for k, v in row.items() if k != "stale_fraction"})
    damaged.write_bytes(damage.encode("latin-1"))
    kept_before = kept.stat().st_mtime_ns
    result = invoke(*SWEEP, *GRID, "--out", out, "--resume")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert f"warning: {damaged}" in result.output
    assert json.loads(damaged.read_text()) == row  # run again: the same row
    assert kept.stat().st_mtime_ns == kept_before  # the finished point is kept, not run again
    runs = qsim.load_sweep(out).runs
    assert len(runs) == 2 and runs["error"].isna().all()


# --- 4. damaged run and sweep folders ----------------------------------------------------------------


def garbage(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 4)


RUN_DAMAGE = {
    "summary.json": lambda p: p.write_text("{"),
    "manifest.json": lambda p: p.write_text("[1, 2]"),
    "scenario.resolved.yaml": lambda p: p.write_text("a: [b"),
    "ops.parquet": Path.unlink,
    "faults.parquet": garbage,
    "timeline.parquet": lambda p: p.write_bytes(b""),
    "nodes.parquet": garbage,
}


@pytest.mark.parametrize("command", ["plot", "report"])
@pytest.mark.parametrize("name", list(RUN_DAMAGE))
def test_a_damaged_run_folder_is_reported_by_file(run_folder, tmp_path, command, name):
    folder = shutil.copytree(run_folder, tmp_path / "run")
    RUN_DAMAGE[name](folder / name)
    result = invoke(command, folder)
    assert_refused(result, str(folder / name))
    assert result.exit_code == 1


def test_a_summary_without_its_fields_is_damaged(run_folder, tmp_path):
    folder = shutil.copytree(run_folder, tmp_path / "run")
    (folder / "summary.json").write_text("{}")
    assert_refused(invoke("plot", folder), str(folder / "summary.json"), "'scenario'")
    with pytest.raises(QsimError, match=r"summary\.json"):
        qsim.load_run(folder)


SWEEP_DAMAGE = {
    "runs.parquet": garbage,
    "aggregate.parquet": Path.unlink,
    "sweep.json": lambda p: p.write_text("{"),
}


@pytest.mark.parametrize("command", ["plot", "report"])
@pytest.mark.parametrize("name", list(SWEEP_DAMAGE))
def test_a_damaged_sweep_folder_is_reported_by_file(sweep_folder, tmp_path, command, name):
    folder = shutil.copytree(sweep_folder, tmp_path / "sweep")
    SWEEP_DAMAGE[name](folder / name)
    result = invoke(command, folder)
    assert_refused(result, str(folder / name))
    assert result.exit_code == 1
    with pytest.raises(QsimError, match=re.escape(name)):
        qsim.load_sweep(folder)


def test_a_damaged_plot_in_a_run_folder_is_reported_by_report(run_folder, tmp_path):
    folder = shutil.copytree(run_folder, tmp_path / "run")
    (folder / "sequence.svg").write_text("not an image")
    assert_refused(invoke("report", folder), str(folder / "sequence.svg"))


@pytest.mark.parametrize(
    "payload",
    [
        "<script>alert(1)</script>",
        '<g onmouseover="alert(1)"></g>',
        '<a href="https://example.com/x"><text>x</text></a>',
        '<a xlink:href="javascript:alert(1)"><text>x</text></a>',
        "<foreignObject><div>x</div></foreignObject>",
    ],
    ids=["script", "handler", "link", "javascript", "foreign"],
)
def test_a_report_never_inlines_an_svg_that_could_run_or_fetch(sweep_folder, tmp_path, payload):
    folder = shutil.copytree(sweep_folder, tmp_path / "sweep")
    assert invoke("plot", folder).exit_code == 0
    frontier = folder / "plots" / "frontier.svg"
    frontier.write_text(frontier.read_text().replace("</svg>", payload + "</svg>"))
    result = invoke("report", folder)
    assert_refused(result, str(frontier))
    assert not (folder / "report.html").exists()


def test_qsims_own_svgs_pass_the_check(sweep_folder, tmp_path):
    folder = shutil.copytree(sweep_folder, tmp_path / "sweep")
    assert invoke("plot", folder).exit_code == 0
    svg = (folder / "plots" / "frontier.svg").read_text()
    assert "data:image/png;base64," in svg and 'href="#' in svg  # what the check must let through
    assert invoke("report", folder).exit_code == 0


def test_an_out_name_too_long_or_a_dangling_link_is_a_message(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from qsim.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "lnk").symlink_to(tmp_path / "missing")
    scenario = str(Path(__file__).resolve().parent.parent / "scenarios" / "quickstart.yaml")
    for out, said in (("x" * 300, "File name too long"), ("lnk", "a link to a missing target")):
        result = CliRunner().invoke(main, ["run", scenario, "--out", out, "--set", "duration=1s"])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "--out: " in result.output and said in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lnk"]
