"""One self-contained HTML page for a run folder or a sweep folder, built from its files.

Everything is inside the page: plots as base64 data URIs, SVG diagrams inline, CSS in a
``<style>`` element; nothing is fetched, so the file can be mailed or archived alone. Every piece
of text from the folder is escaped.

A report never replaces a file it did not write: an existing file is overwritten only if its name
ends in ``.html`` and it starts with qsim's ``<meta name="generator">`` marker (or ends with the
footer of reports written before the marker).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qsim.errors import QsimError, ResultsError
from qsim.output import html_figures
from qsim.output.files import atomic_write
from qsim.output.html_parts import FOOTER, MARKER, document, e, flat, g, plots_note, section, table
from qsim.output.html_scenario import fault_params_text, scenario_parts
from qsim.output.html_sweep import render_sweep
from qsim.output.report import (
    HEADER,
    KIND_WORDS,
    QUORUM_NODE_HEADER,
    clock_text,
    consistency_line,
    fault_lines,
    kind_rows,
    leader_lines,
    ops_text,
    percent,
    quorum_node_rows,
    quorum_system_lines,
    quorum_text,
    staleness_line,
    t_range,
)
from qsim.output.saved import load_run
from qsim.scenario.schema import CLIENT_KINDS, LEADER_KINDS, MESSAGE_KINDS

REPORT = "report.html"
__all__ = ["REPORT", "check_report_target", "render", "render_run", "render_sweep", "write_report"]
ORACLE_COLUMNS = ("quantity", "model", "theory", "simulated", "ci_low", "ci_high", "agrees")


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
        _leader(summary),
        _quorum_system(summary),
        _consistency(summary),
        _faults(summary, saved.faults),
        _nodes(summary),
        _messages(summary),
        _oracle(summary),
        section("Plots", plots_note(), html_figures.figures(saved.path)),
        section("Scenario", *scenario_parts(saved.given, saved.scenario, table)),
        section("Run", table(["field", "value"], flat(manifest), id_="manifest")),
    ]
    return document(f"{summary['scenario']} ({summary['run_id']})", body)


def _run_head(summary: dict, manifest: dict, scenario: dict) -> str:
    runtime = summary["runtime"]
    parts = [
        f"<h1>{e(summary['scenario'])}</h1>",
        f"<p>Run <code>{e(summary['run_id'])}</code>, seed {e(summary['seed'])}, "
        f"{e(quorum_text(summary['quorum']))}, {e(ops_text(summary))}, {e(clock_text(runtime))}.</p>",
    ]
    if scenario["description"]:
        parts.append(f"<p>{e(scenario['description'])}</p>")
    if manifest["error"]:
        parts.append(f'<p class="error">The run stopped early: {e(manifest["error"])}</p>')
    return "\n".join(parts)


def _operations(summary: dict) -> str:
    header = [cell or "kind" for cell in HEADER]
    errors = [
        [kind, reason, str(count)]
        for kind in ("reads", "writes")
        for reason, count in summary[kind]["errors"].items()
    ]
    return section(
        "Operations",
        table(header, kind_rows(summary), id_="operations"),
        '<p class="note">Latency in milliseconds, over operations that completed ok.</p>',
        table(["kind", "error", "count"], errors) if errors else "",
    )


def _staleness(staleness: dict) -> str:
    checked = staleness["reads_checked"]
    k_rows = [[k, str(n), percent(n / checked) if checked else "-"] for k, n in staleness["k"].items()]
    points = staleness["t_visibility"]
    t_rows = [
        [t_range(p), f"{p['p_consistent']:.4f}", str(p["reads"]), f"{p['ci_low']:.4f}-{p['ci_high']:.4f}"]
        for p in points
    ]
    parts = [f"<p>{e(staleness_line(staleness))}.</p>"]
    if k_rows:
        parts.append("<h3>Versions missed (k)</h3>\n" + table(["k", "reads", "fraction"], k_rows, id_="k"))
    if t_rows:
        header = ["t (ms)", "P(consistent)", "reads", "95% interval"]
        parts.append("<h3>t-visibility</h3>\n" + table(header, t_rows, id_="t-visibility"))
    return section("Staleness", *parts)


def _leader(summary: dict) -> str:
    """Elections and time without a leader (empty unless the run used the leader protocol)."""
    lines = leader_lines(summary)
    return section("Leader", *(f"<p>{e(line)}.</p>" for line in lines)) if lines else ""


def _quorum_system(summary: dict) -> str:
    """The quorum system on paper and each node's load measured beside it (empty without a system)."""
    lines = quorum_system_lines(summary)
    if not lines:
        return ""
    rows = quorum_node_rows(summary)
    return section(
        "Quorum system",
        *(f"<p>{e(line.strip())}</p>" for line in lines),
        table(QUORUM_NODE_HEADER, rows, id_="quorum-nodes"),
    )


def _consistency(summary: dict) -> str:
    """Linearizability and session-guarantee counts, and the first anomalies (empty if not checked)."""
    line = consistency_line(summary)
    if line is None:
        return ""
    rows = [
        [KIND_WORDS.get(a["kind"], a["kind"]), str(a["key"]), ", ".join(map(str, a["ops"])), a["note"]]
        for a in summary["consistency"]["anomalies"]
    ]
    parts = [f"<p>{e(line)}.</p>"]
    if rows:
        parts.append(
            "<h3>First anomalies of each kind</h3>\n"
            + table(["kind", "key", "ops (op ids)", "what happened"], rows, id_="anomalies")
        )
    return section("Consistency", *parts)


def _faults(summary: dict, faults: pd.DataFrame) -> str:
    """Faults and durability, when the run had faults or lost writes (empty otherwise)."""
    lines = fault_lines(summary)
    if not lines and faults.empty:
        return ""
    items = "".join(f"<li>{e(line)}</li>" for line in lines)
    rows = [
        [str(f.fault_id), f.kind, f.target, g(f.start_ms), g(f.end_ms), fault_params_text(f.kind, f.params)]
        for f in faults.itertuples(index=False)
    ]
    header = ["id", "kind", "target", "start ms", "end ms", "params"]
    return section(
        "Faults and durability", f"<ul>{items}</ul>", table(header, rows, id_="faults") if rows else ""
    )


def _nodes(summary: dict) -> str:
    """Messages and utilization per node (empty for a Monte Carlo run, which models no nodes)."""
    if not summary["nodes"]:
        return ""
    rows = [[name, str(n["messages"]), percent(n["utilization"])] for name, n in summary["nodes"].items()]
    return section("Nodes", table(["node", "messages received", "utilization"], rows, id_="nodes"))


def _messages(summary: dict) -> str:
    """Messages sent, delivered and dropped per kind (empty for a Monte Carlo run)."""
    if not summary["messages"]:
        return ""
    leader = summary["quorum"].get("protocol") == "leader"
    other = set(MESSAGE_KINDS) - {*LEADER_KINDS, *CLIENT_KINDS} if leader else set(LEADER_KINDS)
    rows = [
        [kind, str(m["sent"]), str(m["delivered"]), str(m["dropped"])]
        for kind, m in summary["messages"].items()
        if m["sent"] or kind not in other  # the other protocol's kinds, unused, are left out
    ]
    return section("Messages", table(["kind", "sent", "delivered", "dropped"], rows, id_="messages"))


def _oracle(summary: dict) -> str:
    """The oracle's checks, agreements and disagreements highlighted (empty without an oracle)."""
    if "oracle" not in summary:
        return ""
    checks = summary["oracle"]
    if not checks:
        return section("Oracle", "<p>No check applies to this run.</p>")
    columns = [*ORACLE_COLUMNS, *sorted({key for check in checks for key in check} - set(ORACLE_COLUMNS))]
    rows = [[g(check.get(column)) for column in columns] for check in checks]
    classes = ["agree" if check.get("agrees") else "disagree" for check in checks]
    disagree = classes.count("disagree")
    note = f"<p>{len(checks)} checks, {disagree} disagree{'s' if disagree == 1 else ''}.</p>"
    return section("Oracle", note, table(columns, rows, classes, id_="oracle"))
