"""The HTML pieces every qsim report is made of: the document, sections, tables, escaped text."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping

import pandas as pd

MARKER = '<meta name="generator" content="qsim">'  # in the first lines of every report
FOOTER = '<p class="note">Written by qsim.</p>\n</body>\n</html>\n'  # the last lines, marker or not
NUMBER = re.compile(r"^[-+]?(\d[\d,]*(\.\d*)?|\.\d+)(e[-+]?\d+)?%?( ± \S+)?$")
CSS = """
body { font-family: system-ui, sans-serif; color: #222; line-height: 1.4; max-width: 76em;
       margin: 2em auto; padding: 0 1em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .9em; }
th, td { padding: .25em .7em; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
div.wide { overflow-x: auto; max-width: 100%; }
tr.agree td { background: #e6f4e6; }
tr.disagree td { background: #fbe3e3; font-weight: bold; }
tr.best td { background: #fff6d6; }
.error { background: #fbe3e3; border-left: 4px solid #c00; padding: .5em 1em; }
.note { color: #666; font-size: .9em; }
pre { background: #f6f8fa; padding: 1em; overflow: auto; font-size: .85em; }
figure { margin: 1.2em 0; overflow-x: auto; }
figure.plot img { cursor: zoom-in; }
figure.plot:focus { outline: 1px dashed #999; }
figure.plot:focus img, figure.plot:focus svg { max-width: none; cursor: zoom-out; }
img, svg { max-width: 100%; height: auto; }
figcaption { color: #444; font-size: .9em; max-width: 60em; }
figcaption .file { color: #888; font-size: .9em; }
svg g[id^="config:"] { cursor: help; }
"""


def document(title: str, body: Iterable[str]) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n{MARKER}\n'
        f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(part for part in body if part)
        + "\n"
        + FOOTER
    )


def section(title: str, *parts: str) -> str:
    return f"<section>\n<h2>{e(title)}</h2>\n" + "\n".join(p for p in parts if p) + "\n</section>"


def table(
    header: list[str],
    rows: list[list[str]],
    classes: list[str] | None = None,
    id_: str = "",
    *,
    numbers: bool = True,
) -> str:
    """A table of text cells (escaped here); cells that read as numbers are right-aligned (unless not
    ``numbers``: a column that mixes numbers and text reads better aligned left)."""
    head = "".join(f"<th>{e(cell)}</th>" for cell in header)
    attribute = f' id="{e(id_)}"' if id_ else ""
    # The wrapper scrolls a table wider than the page instead of wrapping its numbers.
    lines = [f'<div class="wide"><table{attribute}>', f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    for i, row in enumerate(rows):
        kind = f' class="{e(classes[i])}"' if classes and classes[i] else ""
        cells = "".join(
            f'<td class="num">{e(c)}</td>' if numbers and NUMBER.match(str(c)) else f"<td>{e(c)}</td>"
            for c in row
        )
        lines.append(f"<tr{kind}>{cells}</tr>")
    return "\n".join([*lines, "</tbody>", "</table></div>"])


def plots_note() -> str:
    return '<p class="note">Click a plot to see it at full size (click beside it to shrink it again).</p>'


def flat(mapping: Mapping, prefix: str = "") -> list[list[str]]:
    """Rows of (dotted key, value) for a nested mapping."""
    rows = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            rows += flat(value, f"{prefix}{key}.")
        else:
            rows.append([f"{prefix}{key}", g(value)])
    return rows


def g(value) -> str:
    """A value as table text: floats to 6 significant digits, booleans yes / no, None and NaN '-'."""
    if missing(value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return ", ".join(g(item) for item in value)
    return str(value)


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def e(value) -> str:
    return html.escape(str(value))


def mean_ci(row: Mapping, metric: str) -> str:
    mean, ci = row[f"{metric}_mean"], row[f"{metric}_ci95"]
    if missing(mean):
        return "-"
    return f"{mean:.4g}" if missing(ci) else f"{mean:.4g} ± {ci:.2g}"
