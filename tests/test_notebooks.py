"""The notebooks: each runs top to bottom on a fresh kernel, and none is committed with outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 120


def _snapshot(folder: Path) -> dict[Path, int]:
    """Every file under ``folder`` with its modification time (ns); empty if there is no folder."""
    return {path: path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


def test_the_notebooks_are_there():
    assert [path.name for path in NOTEBOOKS] == [
        "01-quickstart.ipynb",
        "02-choosing-nrw.ipynb",
        "03-failures.ipynb",
        "04-theory-vs-simulation.ipynb",
        "05-leader-failover.ipynb",
        "06-quorum-systems.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {index} has outputs"
            assert cell.execution_count is None, f"{path.name}: cell {index} has an execution count"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    out = tmp_path / "notebook-out"
    monkeypatch.setenv("QSIM_NOTEBOOK_OUT", str(out))  # the kernel inherits the environment
    results_before = _snapshot(ROOT / "results")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},  # the kernel's working directory
    )
    client.execute()  # raises CellExecutionError, with the cell's traceback, if a cell fails
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
              if o.output_type == "error"]  # fmt: skip
    assert errors == []
    assert any(path.is_file() for path in out.rglob("*")), "the notebook wrote nothing under OUT"
    assert _snapshot(ROOT / "results") == results_before, "the notebook wrote under the repo's results/"
