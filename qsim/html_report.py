"""One self-contained HTML page for a run folder or a sweep folder, built from its files.

Everything is inside the page: plots as base64 data URIs, SVG diagrams inline, CSS in a
``<style>`` element; nothing is fetched, so the file can be mailed or archived alone. Every piece
of text from the folder is escaped.

A report never replaces a file it did not write: an existing file is overwritten only if its name
ends in ``.html`` and it starts with qsim's ``<meta name="generator">`` marker (or ends with the
footer of reports written before the marker).
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from qsim.analysis import load_sweep
from qsim.errors import QsimError, ResultsError
from qsim.report import (
    HEADER,
    clock_text,
    fault_lines,
    kind_rows,
    ops_text,
    percent,
    staleness_line,
    t_range,
)
from qsim.results import atomic_write, load_run, read_mapping
from qsim.sweep.aggregate import pareto

REPORT = "report.html"
MARKER = '<meta name="generator" content="qsim">'  # in the first lines of every report
FOOTER = '<p class="note">Written by qsim.</p>\n</body>\n</html>\n'  # the last lines, marker or not
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
PARETO_METRICS = ("read_latency_p99_ms", "write_latency_p99_ms", "stale_fraction", "availability")
ORACLE_COLUMNS = ("quantity", "model", "theory", "simulated", "ci_low", "ci_high", "agrees")
_NUMBER = re.compile(r"^[-+]?(\d[\d,]*(\.\d*)?|\.\d+)(e[-+]?\d+)?%?( ± \S+)?$")
_CSS = """
body { font-family: system-ui, sans-serif; color: #222; line-height: 1.4; max-width: 76em;
       margin: 2em auto; padding: 0 1em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .9em; }
th, td { padding: .25em .7em; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.agree td { background: #e6f4e6; }
tr.disagree td { background: #fbe3e3; font-weight: bold; }
tr.best td { background: #fff6d6; }
.error { background: #fbe3e3; border-left: 4px solid #c00; padding: .5em 1em; }
.note { color: #666; font-size: .9em; }
pre { background: #f6f8fa; padding: 1em; overflow: auto; font-size: .85em; }
figure { margin: 1em 0; }
img, svg { max-width: 100%; height: auto; }
figcaption { color: #666; font-size: .85em; }
"""


def render(folder: str | Path) -> str:
    """Return the report of a run folder (it has manifest.json) or a sweep folder (runs.parquet or
    sweep.json).

    Raises:
        QsimError: if the folder is neither.
    """
    folder = Path(folder)
    if (folder / "manifest.json").is_file():
        return render_run(folder)
    if (folder / "runs.parquet").is_file() or (folder / "sweep.json").is_file():
        return render_sweep(folder)
    raise QsimError(
        f"{folder} is not a qsim results folder: expected manifest.json (a run folder) "
        "or runs.parquet / sweep.json (a sweep folder)"
    )


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``folder`` to ``out`` (default: ``folder/report.html``), atomically.

    Returns:
        The path written; ``out`` may also name an existing folder to write report.html into.

    Raises:
        QsimError: if ``folder`` is not a results folder or is damaged, or ``out`` is a file that is
            not a report of qsim (nothing is written).
    """
    path = Path(out) if out is not None else Path(folder) / REPORT
    if path.is_dir():
        path = path / REPORT
    check_report_target(path)
    text = render(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)
    return path


def check_report_target(path: Path) -> None:
    """Accept ``path`` if nothing is there or it holds an HTML report written by qsim.

    Raises:
        ResultsError: otherwise.
    """
    if not path.exists() and not path.is_symlink():
        return
    if not (path.is_file() and path.suffix.lower() == ".html" and _ours(path)):
        raise ResultsError(
            f"{path} exists and is not an HTML report written by qsim (a .html file that starts with "
            f"{MARKER}); refusing to replace it"
        )


def _ours(path: Path) -> bool:
    with path.open("rb") as file:
        head = file.read(512)
        file.seek(max(0, path.stat().st_size - len(FOOTER)))
        tail = file.read()
    return (head.startswith(b"<!DOCTYPE html>") and MARKER.encode() in head) or tail == FOOTER.encode()


# --- a run ----------------------------------------------------------------------------------------


def render_run(folder: str | Path) -> str:
    """Return the HTML report of a run folder written by :func:`qsim.write_run`."""
    saved = load_run(folder)
    summary, manifest = saved.summary, saved.manifest
    body = [
        _run_head(summary, manifest, saved.scenario),
        _operations(summary),
        _staleness(summary["staleness"]),
        _faults(summary, saved.faults),
        _nodes(summary),
        _messages(summary),
        _oracle(summary),
        _section("Plots", _figures(saved.path)),
        _section("Scenario", f"<pre>{_e((saved.path / 'scenario.resolved.yaml').read_text())}</pre>"),
        _section("Run", _table(["field", "value"], _flat(manifest), id_="manifest")),
    ]
    return _document(f"{summary['scenario']} ({summary['run_id']})", body)


def _run_head(summary: dict, manifest: dict, scenario: dict) -> str:
    quorum, runtime = summary["quorum"], summary["runtime"]
    parts = [
        f"<h1>{_e(summary['scenario'])}</h1>",
        f"<p>Run <code>{_e(summary['run_id'])}</code>, seed {_e(summary['seed'])}, "
        f"N={_e(quorum['n'])} R={_e(quorum['r'])} W={_e(quorum['w'])}, {_e(ops_text(summary))}, "
        f"{_e(clock_text(runtime))}.</p>",
    ]
    if scenario["description"]:
        parts.append(f"<p>{_e(scenario['description'])}</p>")
    if manifest["error"]:
        parts.append(f'<p class="error">The run stopped early: {_e(manifest["error"])}</p>')
    return "\n".join(parts)


def _operations(summary: dict) -> str:
    header = [cell or "kind" for cell in HEADER]
    errors = [
        [kind, reason, str(count)]
        for kind in ("reads", "writes")
        for reason, count in summary[kind]["errors"].items()
    ]
    return _section(
        "Operations",
        _table(header, kind_rows(summary), id_="operations"),
        '<p class="note">Latency in milliseconds, over operations that completed ok.</p>',
        _table(["kind", "error", "count"], errors) if errors else "",
    )


def _staleness(staleness: dict) -> str:
    checked = staleness["reads_checked"]
    k_rows = [[k, str(n), percent(n / checked) if checked else "-"] for k, n in staleness["k"].items()]
    points = staleness["t_visibility"]
    t_rows = [
        [t_range(p), f"{p['p_consistent']:.4f}", str(p["reads"]), f"{p['ci_low']:.4f}-{p['ci_high']:.4f}"]
        for p in points
    ]
    parts = [f"<p>{_e(staleness_line(staleness))}.</p>"]
    if k_rows:
        parts.append("<h3>Versions missed (k)</h3>\n" + _table(["k", "reads", "fraction"], k_rows, id_="k"))
    if t_rows:
        header = ["t (ms)", "P(consistent)", "reads", "95% interval"]
        parts.append("<h3>t-visibility</h3>\n" + _table(header, t_rows, id_="t-visibility"))
    return _section("Staleness", *parts)


def _faults(summary: dict, faults: pd.DataFrame) -> str:
    """Faults and durability, when the run had faults or lost writes (empty otherwise)."""
    lines = fault_lines(summary)
    if not lines and faults.empty:
        return ""
    items = "".join(f"<li>{_e(line)}</li>" for line in lines)
    rows = [
        [str(f.fault_id), f.kind, f.target, _g(f.start_ms), _g(f.end_ms), f.params]
        for f in faults.itertuples(index=False)
    ]
    header = ["id", "kind", "target", "start ms", "end ms", "params"]
    return _section(
        "Faults and durability", f"<ul>{items}</ul>", _table(header, rows, id_="faults") if rows else ""
    )


def _nodes(summary: dict) -> str:
    """Messages and utilization per node (empty for a Monte Carlo run, which models no nodes)."""
    if not summary["nodes"]:
        return ""
    rows = [[name, str(n["messages"]), percent(n["utilization"])] for name, n in summary["nodes"].items()]
    return _section("Nodes", _table(["node", "messages received", "utilization"], rows, id_="nodes"))


def _messages(summary: dict) -> str:
    """Messages sent, delivered and dropped per kind (empty for a Monte Carlo run)."""
    if not summary["messages"]:
        return ""
    rows = [
        [kind, str(m["sent"]), str(m["delivered"]), str(m["dropped"])]
        for kind, m in summary["messages"].items()
    ]
    return _section("Messages", _table(["kind", "sent", "delivered", "dropped"], rows, id_="messages"))


def _oracle(summary: dict) -> str:
    """The oracle's checks, agreements and disagreements highlighted (empty without an oracle)."""
    if "oracle" not in summary:
        return ""
    checks = summary["oracle"]
    if not checks:
        return _section("Oracle", "<p>No check applies to this run.</p>")
    columns = [*ORACLE_COLUMNS, *sorted({key for check in checks for key in check} - set(ORACLE_COLUMNS))]
    rows = [[_g(check.get(column)) for column in columns] for check in checks]
    classes = ["agree" if check.get("agrees") else "disagree" for check in checks]
    disagree = classes.count("disagree")
    note = f"<p>{len(checks)} checks, {disagree} disagree{'s' if disagree == 1 else ''}.</p>"
    return _section("Oracle", note, _table(columns, rows, classes, id_="oracle"))


# --- a sweep --------------------------------------------------------------------------------------


def render_sweep(folder: str | Path) -> str:
    """Return the HTML report of a sweep folder written by ``qsim sweep``."""
    folder = Path(folder)
    saved = load_sweep(folder) if (folder / "runs.parquet").exists() else None
    state = saved.sweep if saved is not None else read_mapping(folder / "sweep.json")
    name = state.get("name", folder.name)
    body = [
        f"<h1>Sweep {_e(name)}</h1>",
        _section("Sweep", _table(["field", "value"], _flat(state), id_="sweep")),
    ]
    if saved is not None:
        runs, table = saved.runs, saved.aggregate
        factors = list(table.columns[: table.columns.get_loc("runs")])
        best = pareto(table)
        body += [
            _section("Factors", _table(["factor", "values"], _factor_rows(runs, factors))),
            _pareto(table[best].sort_values("read_latency_p99_ms_mean"), factors),
            _aggregate(table, factors, best),
            _section("Plots", _figures(folder)),
            _failed(runs, factors),
        ]
    else:
        body.append('<p class="note">No runs.parquet yet: the sweep has not finished (resume it).</p>')
    return _document(f"sweep {name}", body)


def _factor_rows(runs: pd.DataFrame, factors: list[str]) -> list[list[str]]:
    rows = [[f, ", ".join(_g(v) for v in _sorted(runs[f].drop_duplicates()))] for f in factors]
    return [*rows, ["seeds", ", ".join(str(s) for s in runs["seed"].drop_duplicates())]]


def _sorted(values: Iterable) -> list:
    try:
        return sorted(values)
    except TypeError:  # a factor of mixed values keeps its order
        return list(values)


def _pareto(best: pd.DataFrame, factors: list[str]) -> str:
    header = [*factors, *(SWEEP_METRICS[m] for m in PARETO_METRICS), "runs"]
    rows = [
        [*(_g(row[f]) for f in factors), *(_mean_ci(row, m) for m in PARETO_METRICS), str(row["runs"])]
        for row in best.to_dict("records")
    ]
    note = "<p>No other configuration has both a lower mean p99 read latency and a lower mean stale-read "
    note += "fraction (at least as low on both, strictly lower on one). Means ± 95% CI half-widths.</p>"
    return _section("Pareto-optimal configurations", note, _table(header, rows, id_="pareto"))


def _aggregate(table: pd.DataFrame, factors: list[str], best: pd.Series) -> str:
    header = [*factors, "runs", "failed", *SWEEP_METRICS.values()]
    rows = [
        [*(_g(row[f]) for f in factors), str(row["runs"]), str(row["failed"])]
        + [_mean_ci(row, metric) for metric in SWEEP_METRICS]
        for row in table.to_dict("records")  # iterrows() would turn integer factors into floats
    ]
    classes = ["best" if b else "" for b in best]
    note = '<p class="note">Mean ± 95% CI half-width over seeds; Pareto-optimal rows highlighted.</p>'
    return _section("All configurations", note, _table(header, rows, classes, id_="aggregate"))


def _failed(runs: pd.DataFrame, factors: list[str]) -> str:
    failed = runs[runs["error"].notna()]
    if failed.empty:
        return _section("Failed runs", "<p>No run failed.</p>")
    header = ["point", "run id", "seed", *factors, "error"]
    rows = [
        [str(r["point"]), r["run_id"], str(r["seed"]), *(_g(r[f]) for f in factors), r["error"]]
        for r in failed.to_dict("records")
    ]
    return _section("Failed runs", _table(header, rows, id_="failed"))


def _mean_ci(row: Mapping, metric: str) -> str:
    mean, ci = row[f"{metric}_mean"], row[f"{metric}_ci95"]
    if _missing(mean):
        return "-"
    return f"{mean:.4g}" if _missing(ci) else f"{mean:.4g} ± {ci:.2g}"


# --- HTML pieces ----------------------------------------------------------------------------------


def _document(title: str, body: Iterable[str]) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n{MARKER}\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(part for part in body if part)
        + "\n"
        + FOOTER
    )


def _section(title: str, *parts: str) -> str:
    return f"<section>\n<h2>{_e(title)}</h2>\n" + "\n".join(p for p in parts if p) + "\n</section>"


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None, id_: str = "") -> str:
    """A table of text cells (escaped here); cells that read as numbers are right-aligned."""
    head = "".join(f"<th>{_e(cell)}</th>" for cell in header)
    attribute = f' id="{_e(id_)}"' if id_ else ""
    lines = [f"<table{attribute}>", f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    for i, row in enumerate(rows):
        kind = f' class="{_e(classes[i])}"' if classes and classes[i] else ""
        cells = "".join(
            f'<td class="num">{_e(c)}</td>' if _NUMBER.match(str(c)) else f"<td>{_e(c)}</td>" for c in row
        )
        lines.append(f"<tr{kind}>{cells}</tr>")
    return "\n".join([*lines, "</tbody>", "</table>"])


def _figures(folder: Path) -> str:
    """Every SVG (inline) and PNG (base64) in the folder and its plots/, a PNG with an SVG twin left out."""
    places = [folder, folder / "plots"]
    svgs = [path for place in places for path in sorted(place.glob("*.svg"))]
    pngs = [
        path
        for place in places
        for path in sorted(place.glob("*.png"))
        if path.with_suffix(".svg") not in svgs
    ]
    parts = [_figure(_inline_svg(path), path, folder) for path in svgs]
    parts += [_figure(_png_img(path), path, folder) for path in pngs]
    return "\n".join(parts) if parts else '<p class="note">No plots in this folder.</p>'


def _figure(content: str, path: Path, folder: Path) -> str:
    return f"<figure>\n{content}\n<figcaption>{_e(path.relative_to(folder))}</figcaption>\n</figure>"


def _png_img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(path.stem)}">'


def _inline_svg(path: Path) -> str:
    """The SVG element alone: no XML declaration or DOCTYPE (which names a DTD URL), no metadata.

    Raises:
        ResultsError: if the file is not readable text holding an ``<svg`` element.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise ResultsError(f"{path}: not readable ({exc})") from None
    if "<svg" not in text:
        raise ResultsError(f"{path}: no <svg> element; the file is damaged")
    text = text[text.index("<svg") :]
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)


def _flat(mapping: Mapping, prefix: str = "") -> list[list[str]]:
    """Rows of (dotted key, value) for a nested mapping."""
    rows = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            rows += _flat(value, f"{prefix}{key}.")
        else:
            rows.append([f"{prefix}{key}", _g(value)])
    return rows


def _g(value) -> str:
    """A value as table text: floats to 6 significant digits, booleans yes / no, None and NaN '-'."""
    if _missing(value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _e(value) -> str:
    return html.escape(str(value))
