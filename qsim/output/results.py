"""The results layout: the only module that knows where and how a run's files are written (reading
them back is :mod:`qsim.output.saved`).

results/<scenario name>/<run id>/
    scenario.resolved.yaml  manifest.json  ops.parquet  faults.parquet  timeline.parquet
    summary.json  summary.md
    plots/latency_percentiles.png  plots/latency_cdf.png  plots/t_visibility.png
    plots/availability_timeline.png  plots/staleness_timeline.png  plots/node_utilization.png
    plots/leadership_timeline.png  plots/election_time_cdf.png   (leader protocol only)
    messages.parquet, sequence.svg, sequence.png   (with --trace-messages)

Every file is written to a temporary name in the same folder and renamed into place, so an
interrupted run never leaves a half-written file under a final name; ``manifest.json`` is written
last, so a folder with a manifest is complete. A temporary name says who writes it,
``.<final name>.<host>-<pid>.<random>.tmp``, so that a later writer removes those left by a killed
one (a process of this host that no longer runs) and never those of a writer still at work.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import yaml

from qsim.errors import ResultsError
from qsim.history import nodes_frame
from qsim.outcome import RunResult
from qsim.output.files import (
    TEMPORARY,
    atomic_write,
    parquet_bytes,
    png_bytes,
    remove_stale_temporaries,
    scratch_folder,
    svg_bytes,
)
from qsim.output.report import summary_markdown
from qsim.output.saved import SavedRun, load_run
from qsim.scenario import Scenario, resolved_dict, run_id, with_seed
from qsim.scenario.base import NAME_PATTERN
from qsim.scenario.load import resolved_yaml

RESULTS_ROOT = Path("results")
PLOTS = (
    "plots/latency_percentiles.png",
    "plots/latency_cdf.png",
    "plots/t_visibility.png",
    "plots/availability_timeline.png",
    "plots/staleness_timeline.png",
    "plots/node_utilization.png",
)
LEADER_PLOTS = ("plots/leadership_timeline.png", "plots/election_time_cdf.png")  # leader protocol only


RUN_MARKERS = ("manifest.json", "scenario.resolved.yaml")  # the first and the last file write_run writes


def default_run_dir(result: RunResult, root: str | Path = RESULTS_ROOT) -> Path:
    """Return ``root/<scenario name>/<run id>``.

    Raises:
        ValueError: if the name or the id is not a plain folder name (never a path).
    """
    return Path(root) / folder_name(result.scenario.name) / folder_name(result.run_id)


def run_dir(scenario: Scenario, seed: int | None = None, root: str | Path = RESULTS_ROOT) -> Path:
    """Return the folder :func:`default_run_dir` gives the discrete-event run of ``scenario`` (with ``seed``).

    Raises:
        ValueError: if the name is not a plain folder name (never a path).
    """
    scenario = with_seed(scenario, seed) if seed is not None else scenario
    return Path(root) / folder_name(scenario.name) / folder_name(run_id(scenario))


def default_sweep_dir(name: str, root: str | Path = RESULTS_ROOT) -> Path:
    """Return ``root/<scenario name>``, the folder of a sweep.

    Raises:
        ValueError: if the name is not a plain folder name (never a path).
    """
    return Path(root) / folder_name(name)


def folder_name(name: str) -> str:
    """Return ``name`` if it is a scenario name (letters, digits, ``.``, ``_``, ``-``; no leading dot).

    Raises:
        ValueError: for anything else, such as a path, ``..``, or an empty name.
    """
    if not isinstance(name, str) or re.fullmatch(NAME_PATTERN, name) is None:
        raise ValueError(f"not a plain folder name: {name!r:.80}")
    return name


def write_run(
    result: RunResult, out_dir: str | Path | None = None, *, plots_too: bool = True, given: str | None = None
) -> Path:
    """Write every file of a run (the manifest last) and return the folder.

    ``given`` is the scenario as its user gave it (``qsim.scenario.written_yaml``), kept as
    ``scenario.yaml``; without it, that file holds the resolved scenario without its empty fields.

    Everything is rendered in memory first, so a rendering error writes nothing; a folder that
    held an earlier run loses that run's manifest (and plots) before anything new is written.

    Raises:
        ResultsError: if the folder is neither new, nor empty, nor a run folder (nothing is written).
    """
    out = Path(out_dir) if out_dir is not None else default_run_dir(result)
    check_run_folder(out)
    files = _render(result, plots_too, given)
    out.mkdir(parents=True, exist_ok=True)
    for folder in (out, out / "plots"):
        remove_stale_temporaries(folder)
    for stale in ("manifest.json", "messages.parquet", "sequence.svg", "sequence.png", *PLOTS, *LEADER_PLOTS):
        (out / stale).unlink(missing_ok=True)
    if (out / "plots").is_dir() and not any((out / "plots").iterdir()):
        (out / "plots").rmdir()
    manifest = files.pop("manifest.json")
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out / name, data)
    if result.ops is None and result.ops_file is not None:  # streamed to a scratch folder in ``out``
        os.replace(result.ops_file, out / "ops.parquet")
    atomic_write(out / "manifest.json", manifest)
    return out


def check_run_folder(path: str | Path, option: str = "the results folder") -> None:
    """Accept ``path`` for a run if it does not exist, is an empty folder, or is a run folder.

    Args:
        option: how the message names the folder, such as ``--out``.

    Raises:
        ResultsError: otherwise, saying what was found and what is expected.
    """
    found = _unknown_entries(path, option)
    if found and not any((Path(path) / marker).is_file() for marker in RUN_MARKERS):
        raise ResultsError(
            f"{option}: {path} holds {_listing(found)}; expected a new or empty folder, or the folder "
            "of an earlier qsim run (with manifest.json or scenario.resolved.yaml)"
        )


def check_sweep_folder(path: str | Path, option: str = "the results folder") -> None:
    """Accept ``path`` for a sweep if it does not exist, is empty, is a sweep folder, or holds only runs.

    A sweep folder holds ``sweep.json`` or ``points/``; the default folder of a scenario,
    ``results/<name>``, may also hold the run folders of ``qsim run``.

    Raises:
        ResultsError: otherwise, saying what was found and what is expected.
    """
    path = Path(path)
    found = _unknown_entries(path, option)
    if (path / "sweep.json").is_file() or (path / "points").is_dir():
        return
    others = [name for name in found if not any((path / name / m).is_file() for m in RUN_MARKERS)]
    if others:
        raise ResultsError(
            f"{option}: {path} holds {_listing(others)}; expected a new or empty folder, or the folder "
            "of an earlier qsim sweep (with sweep.json or points/)"
        )


def _unknown_entries(path: str | Path, option: str) -> list[str]:
    """The names in folder ``path`` other than qsim's temporary files ([] if it does not exist)."""
    path = Path(path)
    try:
        exists, link, folder = path.exists(), path.is_symlink(), path.is_dir()
    except OSError as exc:  # a name too long for the file system, say
        raise ResultsError(f"{option}: cannot use {brief_path(path)}: {exc.strerror or exc}") from None
    if not exists and not link:
        return []
    if link and not exists:
        raise ResultsError(f"{option}: {path} is a link to a missing target; expected a folder")
    if not folder:
        raise ResultsError(f"{option}: {path} is a file; expected a folder")
    try:
        return sorted(e.name for e in os.scandir(path) if TEMPORARY.fullmatch(e.name) is None)
    except OSError as exc:
        raise ResultsError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None


def brief_path(path: Path, limit: int = 120) -> str:
    """``path`` as text, its middle cut out past ``limit`` characters (a hostile name can be huge)."""
    text = str(path)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 :]}"


def _listing(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:3])
    return f"{shown} and {len(names) - 3} more" if len(names) > 3 else shown


def _render(result: RunResult, plots_too: bool, given: str | None) -> dict[str, str | bytes]:
    """Return every file of the run by name, in writing order (the manifest last)."""
    files: dict[str, str | bytes] = {
        "scenario.resolved.yaml": yaml.safe_dump(resolved_dict(result.scenario), sort_keys=False),
        "ops.parquet": parquet_bytes(result.ops) if result.ops is not None else None,
        "faults.parquet": parquet_bytes(result.faults),
        "timeline.parquet": parquet_bytes(result.timeline),
        "nodes.parquet": parquet_bytes(result.nodes if result.nodes is not None else nodes_frame([], [])),
        "summary.json": json.dumps(result.summary, indent=2, allow_nan=False, default=_json_default),
        "summary.md": summary_markdown(result.summary, result.manifest),
        "scenario.yaml": given or resolved_yaml(result.scenario),  # for people to read
    }
    if files["ops.parquet"] is None:
        del files["ops.parquet"]
    if result.messages is not None:
        files["messages.parquet"] = parquet_bytes(result.messages)
    if plots_too:
        title = f"{result.scenario.name} ({result.run_id})"
        regions = {node.name: node.region for node in result.scenario.cluster.nodes}
        latency = result.sorted_latency if result.sorted_latency is not None else result.ops
        figures = run_figures(
            latency, result.summary, result.faults, result.timeline, result.nodes, title, regions=regions
        )
        files |= {name: png_bytes(figure) for name, figure in figures.items()}
    if result.messages is not None:  # asked for by tracing: drawn with or without the plots
        from qsim.output import diagram  # matplotlib loads only when something is drawn

        title = diagram.traced_title(f"{result.scenario.name} ({result.run_id})", result.manifest)
        figure = diagram.sequence_diagram(result.messages, result.faults, result.ops, title=title)
        files["sequence.svg"], files["sequence.png"] = svg_bytes(figure), png_bytes(figure)
    files["manifest.json"] = json.dumps(result.manifest, indent=2, default=_json_default)
    return files


def run_figures(latency: pd.DataFrame | dict, summary: dict, faults, timeline, nodes, title: str, *,
                regions: dict[str, str] | None = None) -> dict:  # fmt: skip
    """Every plot of a run by its file name in the run folder: PLOTS in order, then any LEADER_PLOTS.

    Args:
        latency: the ops table, or the latencies of its counted ok operations by kind
            (:class:`qsim.checks.digest.Latencies`): what the latency plots draw. None: no latency plots
            (a Monte Carlo run that kept no ops table is redrawn without them).
        regions: each node's region, so that the node plot marks a region's fault on its nodes' rows.
    """
    from qsim.output import plots  # matplotlib loads only when something is drawn

    widths_ms = timeline["window_end_ms"] - timeline["window_start_ms"]
    # The node samples use the same windows, whole ones only; the timeline's last may be cut at the end.
    window_ms = float(widths_ms.max()) if len(widths_ms) else None
    stale = f"Stale reads per window (fraction of checked reads) - {title}"
    by_latency = (None, None)
    if latency is not None:
        by_latency = (
            plots.latency_percentiles(latency, f"Latency by percentile (ms), ok operations - {title}"),
            plots.latency_cdf(latency, f"Latency CDF (ms), ok operations - {title}"),
        )
    figures = (
        *by_latency,
        plots.t_visibility(summary, f"t-visibility: P(consistent) against t (ms) - {title}"),
        plots.availability_timeline(timeline, faults, f"Availability per window (fraction ok) - {title}"),
        plots.staleness_timeline(timeline, faults, stale),
        plots.node_load(nodes, faults, f"Load per node - {title}", window_ms=window_ms, regions=regions),
    )
    drawn = dict(zip(PLOTS, figures, strict=True))
    if summary.get("leader"):
        drawn |= dict(zip(LEADER_PLOTS, plots.leader_figures(summary, timeline, faults, title), strict=True))
    return {name: figure for name, figure in drawn.items() if figure is not None}


def redraw_run(path: str | Path) -> list[Path]:
    """Draw every plot of a saved run again from its files; return the files written.

    A Monte Carlo run that kept no ops table keeps its latency plots as they are.
    """
    saved = load_run(path)
    title = f"{saved.summary['scenario']} ({saved.summary['run_id']})"
    with scratch_folder(saved.path) as scratch:  # the latencies of a long run wait there on disk
        latencies = saved.latencies(scratch) if saved.has_ops else None  # none: keep the latency plots
        figures = run_figures(
            latencies,
            saved.summary,
            saved.faults,
            saved.timeline,
            saved.nodes,
            title,
            regions=_regions(saved),
        )
        files = {name: png_bytes(figure) for name, figure in figures.items()}
        for latency in (latencies or {}).values():
            latency.close()
    if saved.messages is not None:
        from qsim.output import diagram

        traced = diagram.traced_title(title, saved.manifest)
        figure = diagram.sequence_diagram(saved.messages, saved.faults, saved.ops, title=traced)
        files["sequence.svg"], files["sequence.png"] = svg_bytes(figure), png_bytes(figure)
    for folder in (saved.path, saved.path / "plots"):
        remove_stale_temporaries(folder)
    for name, data in files.items():
        (saved.path / name).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(saved.path / name, data)
    return [saved.path / name for name in files]


def _regions(saved: SavedRun) -> dict[str, str]:
    """Each node's region, from the saved resolved scenario (none if it does not say)."""
    cluster = saved.scenario.get("cluster") if isinstance(saved.scenario, dict) else None
    nodes = cluster.get("nodes") if isinstance(cluster, dict) else None
    return {
        n["name"]: n["region"] for n in nodes or () if isinstance(n, dict) and {"name", "region"} <= n.keys()
    }


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
