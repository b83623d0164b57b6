"""The HTML report of a sweep folder: its Pareto frontier, every configuration, plots, grid, failures."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd
import yaml

from qsim.analysis import load_sweep
from qsim.errors import QsimError, ResultsError
from qsim.output import html_figures
from qsim.output.html_parts import document, e, flat, g, mean_ci, plots_note, section
from qsim.output.html_parts import table as html_table
from qsim.output.html_scenario import resolved_differences
from qsim.output.saved import read_mapping, read_text
from qsim.sweep import aggregate
from qsim.sweep.aggregate import pareto
from qsim.sweep.spec import RESERVED
from qsim.units import counted

SWEEP_METRICS = {  # aggregate metric -> column title, in the order shown
    "read_latency_p50_ms": "read p50 ms",
    "read_latency_p99_ms": "read p99 ms",
    "write_latency_p99_ms": "write p99 ms",
    "availability": "availability",
    "stale_fraction": "stale fraction",
    "k_mean": "mean k",
    "t_visibility_99_ms": "t-visibility 99% ms",
    "messages_per_op": "messages / op",
    "lost_writes": "lost writes",
}
HIGHER_IS_BETTER = ("availability", "read_availability", "write_availability")


def render_sweep(folder: str | Path) -> str:
    """Return the HTML report of a sweep folder written by ``qsim sweep``."""
    folder = Path(folder)
    saved = load_sweep(folder) if (folder / "runs.parquet").exists() else None
    state = saved.sweep if saved is not None else read_mapping(folder / "sweep.json")
    name = state.get("name", folder.name)
    given = read_text(folder / "scenario.yaml") if (folder / "scenario.yaml").exists() else None
    grid = _grid(state, given)
    body = [f"<h1>Sweep {e(name)}</h1>"]
    if saved is None:
        body.append('<p class="note">No runs.parquet yet: the sweep has not finished (resume it).</p>')
        body.append(_sweep_scenario(state, given, grid, None, []))
    else:
        runs, configs = saved.runs, saved.aggregate
        factors = list(configs.columns[: configs.columns.get_loc("runs")])
        objectives, best = _frontier(configs, state.get("objectives") or grid.get("objectives"), folder)
        tooltips = {i: _tooltip(row, factors, objectives) for i, row in enumerate(configs.to_dict("records"))}
        plots = html_figures.figures(
            folder, sweep=True, labels=_labels(), tooltips=tooltips, objectives=objectives
        )
        body += [
            _pareto(configs[best].sort_values(f"{objectives[0]}_mean"), factors, objectives),
            _aggregate(configs, factors, best),
            section("Plots", plots_note(), plots),
            _sweep_scenario(state, given, grid, runs, factors, objectives, len(configs)),
            _failed(runs, factors),
        ]
    ran = {key: value for key, value in state.items() if key != "grid"}  # the grid is under Scenario
    body.append(section("Sweep", html_table(["field", "value"], flat(ran), id_="sweep")))
    return document(f"sweep {name}", body)


def _grid(state: Mapping, given: str | None) -> dict:
    """The sweep's grid as recorded: sweep.json's ``grid``, else the ``sweep:`` block of scenario.yaml."""
    if isinstance(state.get("grid"), Mapping):
        return dict(state["grid"])
    try:
        data = yaml.safe_load(given) if given else None
    except yaml.YAMLError:
        return {}
    block = data.get("sweep") if isinstance(data, Mapping) else None
    return dict(block) if isinstance(block, Mapping) else {}


def _frontier(configs: pd.DataFrame, recorded, folder: Path) -> tuple[list[str], pd.Series]:
    """The objectives of the Pareto frontier (as recorded, else pareto()'s defaults) and its rows.

    Raises:
        ResultsError: if the recorded objectives are not metrics.
    """
    parameters = inspect.signature(pareto).parameters
    if "objectives" not in parameters:  # the older pareto(table, x, y) over two fixed metrics
        return [parameters[axis].default.removesuffix("_mean") for axis in ("x", "y")], pareto(configs)
    if recorded:
        try:
            return [str(o) for o in recorded], pareto(configs, recorded)
        except QsimError as exc:
            raise ResultsError(f"{folder / 'sweep.json'}: {exc}") from None
    return list(parameters["objectives"].default), pareto(configs)


def _labels() -> dict[str, str]:
    """Metric name to its title with unit (aggregate's LABELS where it has them)."""
    return dict(SWEEP_METRICS) | getattr(aggregate, "LABELS", {})


def _sweep_scenario(state, given, grid, runs, factors, objectives=(), configurations=0) -> str:
    """The grid (factors, where, zip, seeds, objectives), how many runs it made, and the base scenario
    when the folder keeps it."""
    count = f"<p>{e(_count_text(configurations, runs))}.{_kept(grid)}</p>" if runs is not None else ""
    rows = _grid_rows(state, grid, runs, factors, objectives)
    parts = ["<h3>Grid</h3>", count, html_table(["", "values"], rows, id_="grid", numbers=False)]
    if given is None:
        source = f" It was run from {e(state['scenario'])}." if state.get("scenario") else ""
        parts.append(f'<p class="note">This sweep folder does not keep its base scenario.{source}</p>')
    else:
        parts += _base_scenario(given, factors)
    return section("Scenario", *parts)


def _grid_rows(state, grid: Mapping, runs, factors: list[str], objectives) -> list[list[str]]:
    """Rows of the grid: each factor, where, zip, seeds, objectives (factors and seeds as run, if run)."""
    rows = _factor_rows(runs, factors, grid) if runs is not None else _written_rows(grid)
    if grid.get("where"):
        rows.append(["where", _text(grid["where"])])
    rows += [["zip", _zip_text(group, grid, runs)] for group in _zip_groups(grid)]
    if runs is not None:
        own = " (the scenario's own)" if grid and "seeds" not in grid else ""
        rows.append(["seeds", ", ".join(str(s) for s in runs["seed"].drop_duplicates()) + own])
    elif "seeds" in grid:
        rows.append(["seeds", _text(grid["seeds"])])
    if objectives:
        names = ", ".join(f"{_labels().get(m, m)} [{m}]" for m in objectives)
        rows.append(["objectives", names + ("" if _chosen(state, grid) else " (the default)")])
    return rows


def _chosen(state: Mapping, grid: Mapping) -> bool:
    """Whether the user chose the objectives: a recorded grid holds them only then (sweep.json's
    ``objectives`` are the ones used, chosen or not); older folders hold only the ones used."""
    if "grid" in state:
        return bool(grid.get("objectives"))
    return bool(state.get("objectives") or grid.get("objectives"))


def _base_scenario(given: str, factors: list[str]) -> list[str]:
    """What the base scenario sets otherwise than the defaults (its factors left out), and its text."""
    try:
        data = yaml.safe_load(given)
    except yaml.YAMLError:
        data = None
    base = {k: v for k, v in data.items() if k != "sweep"} if isinstance(data, dict) else None
    differences = resolved_differences(base) if base is not None else None
    parts = []
    if differences is not None:
        rows = [[path, text] for path, text in differences if path not in factors]
        parts += [
            "<h3>Base scenario: what differs from the defaults</h3>",
            html_table(["field", "value"], rows, id_="scenario-differences", numbers=False),
        ]
    note = '<p class="note">Without its sweep block: that is the grid above.</p>'
    return [*parts, "<h3>Base scenario as given</h3>", note, f'<pre class="scenario">{e(given)}</pre>']


def _text(value) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) if not isinstance(v, list | tuple) else f"({_text(v)})" for v in value)
    return str(value)


def _tooltip(row: Mapping, factors: list[str], objectives: list[str]) -> str:
    """The hover text of a configuration: its factors, then its objectives (mean ± 95% CI half-width)."""
    configuration = ", ".join(f"{f.split('.')[-1]}={g(row[f])}" for f in factors)
    values = "; ".join(f"{_labels().get(m, m)} {mean_ci(row, m)}" for m in objectives if f"{m}_mean" in row)
    return f"{configuration}: {values}"


def _count_text(configurations: int, runs: pd.DataFrame) -> str:
    """``23 configurations x 3 seeds = 69 runs`` (configurations and runs alone if they do not multiply)."""
    seeds = runs["seed"].nunique(dropna=False)
    configured = counted(configurations, "configuration")
    if configurations * seeds != len(runs):
        return f"{configured}, {counted(len(runs), 'run')}"
    return f"{configured} \u00d7 {counted(seeds, 'seed')} = {counted(len(runs), 'run')}"


def _kept(grid: Mapping) -> str:
    """What a filter did, for the sentence after the count ('' without one)."""
    if not grid.get("where"):
        return ""
    return " Only the combinations of the values below where <code>where</code> holds are configurations."


def _factor_rows(runs: pd.DataFrame, factors: list[str], grid: Mapping) -> list[list[str]]:
    """Each factor's values that ran (a range also as written, ``1..n -> 1, 2, 3``; a zipped list as
    written, in its order)."""
    zipped = {path for group in _zip_groups(grid) for path in group}
    rows = []
    for f in factors:
        values = ", ".join(g(v) for v in _sorted(runs[f].drop_duplicates()))
        written = grid.get(f)
        if f in zipped and isinstance(written, list):  # in the order written: the zip pairs them by position
            values = _text(written)
        elif isinstance(written, str) and ".." in written:
            values = f"{written} \u2192 {values}"
        rows.append([f, values])
    return rows


def _written_rows(grid: Mapping) -> list[list[str]]:
    """The factors as written (a sweep that has no runs table yet)."""
    return [[key, _text(value)] for key, value in grid.items() if key not in RESERVED]


def _zip_groups(grid: Mapping) -> list[list[str]]:
    groups = grid.get("zip") or []
    return [list(map(str, group)) for group in groups if isinstance(group, list | tuple)]


def _zip_text(group: list[str], grid: Mapping, runs: pd.DataFrame | None) -> str:
    """``quorum.r, quorum.w vary together, element by element: (one, all), (quorum, quorum)``: the
    tuples that ran (in point order), else those written, else the names alone."""
    together = f"{', '.join(group)} vary together, element by element"
    if runs is not None and set(group) <= set(runs.columns):
        rows = runs[group].drop_duplicates().to_dict("split")["data"]
        return f"{together}: " + ", ".join(f"({', '.join(g(v) for v in row)})" for row in rows)
    lists = [grid.get(path) for path in group]
    if not all(isinstance(values, list) for values in lists):
        return together
    return f"{together}: " + ", ".join(f"({_text(list(row))})" for row in zip(*lists, strict=False))


def _sorted(values: Iterable) -> list:
    try:
        return sorted(values)
    except TypeError:  # a factor of mixed values keeps its order
        return list(values)


def _pareto(best: pd.DataFrame, factors: list[str], objectives: list[str]) -> str:
    others = [m for m in ("availability", "stale_fraction") if m not in objectives and f"{m}_mean" in best]
    metrics = [*objectives, *others]
    header = [*factors, *(_labels().get(m, m) for m in metrics), "runs"]
    rows = [
        [*(g(row[f]) for f in factors), *(mean_ci(row, m) for m in metrics), str(row["runs"])]
        for row in best.to_dict("records")
    ]
    directions = ", ".join(
        f"{_labels().get(m, m)} ({'higher' if m in HIGHER_IS_BETTER else 'lower'} is better)"
        for m in objectives
    )
    note = (
        f"<p>The frontier is over {e(directions)}: no other configuration is at least as good on every "
        "objective (mean over seeds) and strictly better on one. Means ± 95% CI half-widths.</p>"
    )
    return section("Pareto-optimal configurations", note, html_table(header, rows, id_="pareto"))


def _aggregate(configs: pd.DataFrame, factors: list[str], best: pd.Series) -> str:
    header = [*factors, "runs", "failed", *SWEEP_METRICS.values()]
    rows = [
        [*(g(row[f]) for f in factors), str(row["runs"]), str(row["failed"])]
        + [mean_ci(row, metric) for metric in SWEEP_METRICS]
        for row in configs.to_dict("records")  # iterrows() would turn integer factors into floats
    ]
    classes = ["best" if b else "" for b in best]
    note = '<p class="note">Mean ± 95% CI half-width over seeds; Pareto-optimal rows highlighted.</p>'
    return section("All configurations", note, html_table(header, rows, classes, id_="aggregate"))


def _failed(runs: pd.DataFrame, factors: list[str]) -> str:
    failed = runs[runs["error"].notna()]
    if failed.empty:
        return section("Failed runs", "<p>No run failed.</p>")
    header = ["point", "run id", "seed", *factors, "error"]
    rows = [
        [str(r["point"]), r["run_id"], str(r["seed"]), *(g(r[f]) for f in factors), r["error"]]
        for r in failed.to_dict("records")
    ]
    return section("Failed runs", html_table(header, rows, id_="failed"))
