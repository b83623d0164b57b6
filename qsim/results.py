"""The results layout: the only module that knows where and how a run's files are written.

results/<scenario name>/<run id>/
    scenario.resolved.yaml  manifest.json  ops.parquet  faults.parquet  timeline.parquet
    summary.json  summary.md
    plots/latency_cdf.png  plots/t_visibility.png  plots/availability_timeline.png
    plots/staleness_timeline.png
    messages.parquet, sequence.svg, sequence.png   (with --trace-messages)

Every file is written to a temporary name in the same folder and renamed into place, so an
interrupted run never leaves a half-written file under a final name; ``manifest.json`` is written
last, so a folder with a manifest is complete.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from qsim import diagram, plots
from qsim.history import nodes_frame
from qsim.outcome import RunResult
from qsim.report import summary_markdown
from qsim.scenario import resolved_dict

RESULTS_ROOT = Path("results")
PLOTS = (
    "plots/latency_cdf.png",
    "plots/t_visibility.png",
    "plots/availability_timeline.png",
    "plots/staleness_timeline.png",
    "plots/node_utilization.png",
)


def default_run_dir(result: RunResult, root: str | Path = RESULTS_ROOT) -> Path:
    """Return ``root/<scenario name>/<run id>``."""
    return Path(root) / result.scenario.name / result.run_id


def write_run(result: RunResult, out_dir: str | Path | None = None, *, plots_too: bool = True) -> Path:
    """Write every file of a run (the manifest last) and return the folder.

    Everything is rendered in memory first, so a rendering error writes nothing; a folder that
    held an earlier run loses that run's manifest (and plots) before anything new is written.
    """
    out = Path(out_dir) if out_dir is not None else default_run_dir(result)
    files = _render(result, plots_too)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("manifest.json", "messages.parquet", "sequence.svg", "sequence.png", *PLOTS):
        (out / stale).unlink(missing_ok=True)
    if (out / "plots").is_dir() and not any((out / "plots").iterdir()):
        (out / "plots").rmdir()
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out / name, data)
    return out


def _render(result: RunResult, plots_too: bool) -> dict[str, str | bytes]:
    """Return every file of the run by name, in writing order (the manifest last)."""
    files: dict[str, str | bytes] = {
        "scenario.resolved.yaml": yaml.safe_dump(resolved_dict(result.scenario), sort_keys=False),
        "ops.parquet": parquet_bytes(result.ops),
        "faults.parquet": parquet_bytes(result.faults),
        "timeline.parquet": parquet_bytes(result.timeline),
        "nodes.parquet": parquet_bytes(result.nodes if result.nodes is not None else nodes_frame([], [])),
        "summary.json": json.dumps(result.summary, indent=2, allow_nan=False, default=_json_default),
        "summary.md": summary_markdown(result.summary, result.manifest),
    }
    if result.messages is not None:
        files["messages.parquet"] = parquet_bytes(result.messages)
    if plots_too:
        title = f"{result.scenario.name} ({result.run_id})"
        figures = run_figures(result.ops, result.summary, result.faults, result.timeline, result.nodes, title)
        files |= {name: png_bytes(figure) for name, figure in figures.items()}
        if result.messages is not None:
            figure = diagram.sequence_diagram(result.messages, result.faults, result.ops, title=title)
            files["sequence.svg"], files["sequence.png"] = svg_bytes(figure), png_bytes(figure)
    files["manifest.json"] = json.dumps(result.manifest, indent=2, default=_json_default)
    return files


def run_figures(ops: pd.DataFrame, summary: dict, faults, timeline, nodes, title: str) -> dict:
    """Every plot of a run, by its file name in the run folder."""
    return {
        PLOTS[0]: plots.latency_cdf(ops, f"Latency CDF - {title}"),
        PLOTS[1]: plots.t_visibility(summary, f"t-visibility - {title}"),
        PLOTS[2]: plots.availability_timeline(timeline, faults, f"Availability - {title}"),
        PLOTS[3]: plots.staleness_timeline(timeline, faults, f"Staleness - {title}"),
        PLOTS[4]: plots.node_utilization(nodes, faults, f"Node load - {title}"),
    }


def redraw_run(path: str | Path) -> list[Path]:
    """Draw every plot of a saved run again from its files; return the files written."""
    saved = load_run(path)
    title = f"{saved.summary['scenario']} ({saved.summary['run_id']})"
    files = {
        name: png_bytes(f)
        for name, f in run_figures(
            saved.ops, saved.summary, saved.faults, saved.timeline, saved.nodes, title
        ).items()
    }
    if saved.messages is not None:
        figure = diagram.sequence_diagram(saved.messages, saved.faults, saved.ops, title=title)
        files["sequence.svg"], files["sequence.png"] = svg_bytes(figure), png_bytes(figure)
    for name, data in files.items():
        (saved.path / name).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(saved.path / name, data)
    return [saved.path / name for name in files]


@dataclass(frozen=True)
class SavedRun:
    """A run read back from its folder."""

    path: Path
    scenario: dict
    manifest: dict
    summary: dict
    ops: pd.DataFrame
    faults: pd.DataFrame
    timeline: pd.DataFrame
    messages: pd.DataFrame | None  # when the run traced messages
    nodes: pd.DataFrame  # per-node load per window


def load_run(path: str | Path) -> SavedRun:
    """Read a run folder written by :func:`write_run` (no simulation is started)."""
    path = Path(path)
    return SavedRun(
        path=path,
        scenario=yaml.safe_load((path / "scenario.resolved.yaml").read_text()),
        manifest=json.loads((path / "manifest.json").read_text()),
        summary=json.loads((path / "summary.json").read_text()),
        ops=pd.read_parquet(path / "ops.parquet"),
        faults=pd.read_parquet(path / "faults.parquet"),
        timeline=pd.read_parquet(path / "timeline.parquet"),
        messages=pd.read_parquet(path / "messages.parquet") if (path / "messages.parquet").exists() else None,
        nodes=pd.read_parquet(path / "nodes.parquet")
        if (path / "nodes.parquet").exists()
        else nodes_frame([], []),
    )


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def svg_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg")
    return buffer.getvalue()


def png_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
