"""The plots of a results folder as report figures: in reading order, each with a caption.

PNGs are embedded as base64 data URIs, SVGs inline (so their markers can carry hover text); a PNG
with an SVG twin is shown once, as the SVG.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from qsim.errors import ResultsError

NODE_LOAD = (
    "Messages each node received per second in each time window, one row per node, on a colour scale "
    "that starts at 0 (and, when replicas have a service time, how busy they were); a fault is hatched on "
    "the rows of the nodes it hits (a crash on its node, a region or link fault on its nodes) and a "
    "partition outlined across all: look for a row that goes blank or runs hotter than the others."
)
# Known plots by name (without folder or suffix), in the order a reader wants them.
CAPTIONS = {
    # a run
    "latency_percentiles": "Latency in milliseconds of the operations that completed ok, reads and writes, "
    "against percentile on a 'nines' axis (90, 99, 99.9, ...): the right end is the tail, so read the "
    "p99 above 99.",
    "latency_cdf": "Cumulative distribution of the latency in milliseconds of the operations that completed "
    "ok: the height of a curve at a latency is the fraction of operations at least that fast.",
    "t_visibility": "Probability that a read returns the newest committed version, against t, the time in "
    "milliseconds since that version committed, with 95% intervals: the sooner a curve reaches 1, the "
    "sooner writes become visible.",
    "availability_timeline": "Fraction of operations that completed ok in each time window, reads and writes "
    "apart, with the faults shaded: a dip shows when availability was lost and how much (the axis says "
    "where it starts).",
    "leadership_timeline": "Who led when (leader protocol): availability per window on top and, on the "
    "same time axis below, one lane per node with a bar while it served as leader, labelled with its term. "
    "Hatched bands are the time without a leader, coloured by cause (the run's first election, a crash, a "
    "step-down, a takeover), across both panels; faults are shaded as on the availability timeline: a wide "
    "band is a slow failover.",
    "election_time_cdf": "Cumulative distribution of the time without a leader in milliseconds, from the old "
    "leader's last moment serving to the new leader's first commit, one curve per cause; the legend gives "
    "each curve's count and longest interval, marked by a diamond: the further left, the faster a new "
    "leader serves.",
    "staleness_timeline": "Fraction of the checked reads that were stale in each time window, with the "
    "faults shaded: a rise shows when replicas fell behind.",
    "node_load": NODE_LOAD,
    "node_utilization": NODE_LOAD,  # the same plot under its earlier name
    "sequence": "Sequence diagram of the traced operations: one lifeline per client and node, time running "
    "down, one arrow per message from sender to receiver (an X where a message was dropped), and each "
    "operation as a bar at the left, coloured by its outcome.",
    # a sweep
    "frontier": "The sweep's trade-off: one marker per configuration at its mean over seeds, every one "
    "labelled with its factors; x and y are the first two objectives (the axis titles name them), the colour "
    "the third when there is one. The Pareto-optimal configurations (no other is at least as good on every "
    "objective and better on one) are the large markers outlined in black.",
}
SWEEP_CAPTIONS = {  # names a sweep shares with a run but draws differently
    "t_visibility": "t-visibility of selected configurations: probability that a read is consistent "
    "against the time in milliseconds since the newest commit; a curve further left makes writes "
    "visible sooner.",
    "latency_cdf": "Read latency distribution in milliseconds of selected configurations (pooled over "
    "seeds): the further left a curve, the faster that configuration's reads.",
    "latency_percentiles": "Latency in milliseconds against percentile on a 'nines' axis for selected "
    "configurations: compare their tails at 99 and 99.9.",
}
SWEEP_ORDER = ("frontier", "latency_percentiles", "latency_cdf", "t_visibility")  # then the heat maps
FIRST_HEATMAPS = ("availability",)  # after the sweep's objectives (qsim.sweep.heatmaps draws these)
HEATMAP = re.compile(r"heatmap_(?P<rest>.+)")


def caption(stem: str, *, sweep: bool = False, labels: Mapping[str, str] | None = None) -> str:
    """The caption of the plot named ``stem``: a sentence saying what it shows and how to read it.

    Args:
        sweep: the plot is a sweep's (some names mean other plots there).
        labels: metric name to its label with unit, for heat maps.
    """
    known = CAPTIONS | (SWEEP_CAPTIONS if sweep else {})
    if stem in known:
        return known[stem]
    heatmap = HEATMAP.fullmatch(stem)
    if heatmap:
        return _heatmap_caption(heatmap["rest"], labels or {})
    words = stem.replace("_", " ").replace("-", " ").strip() or "unnamed"
    return f"A plot of {words} (a figure this report does not know; see its file, {stem})."


def _heatmap_caption(rest: str, labels: Mapping[str, str]) -> str:
    metric = max((m for m in labels if rest == m or rest.startswith(f"{m}_")), key=len, default=rest)
    label = labels.get(metric, metric.replace("_", " "))
    return (
        f"Mean {label} of each configuration over seeds, as a grid of two factors (one cell per "
        "configuration, its value printed in it); panels share one colour scale."
    )


def order(stem: str, *, sweep: bool = False, objectives: Sequence[str] = ()) -> tuple[int, int, str]:
    """Sort key of a plot: known plots in reading order, then heat maps (those of the ``objectives`` in
    their order, then availability, then the others by name), then the rest by name."""
    known = list(SWEEP_ORDER if sweep else CAPTIONS)
    if stem in known:
        return known.index(stem), 0, stem
    heatmap = HEATMAP.fullmatch(stem)
    if heatmap is None:
        return len(known) + 1, 0, stem
    first = [*objectives, *FIRST_HEATMAPS]
    ranks = [i for i, m in enumerate(first) if heatmap["rest"] == m or heatmap["rest"].startswith(f"{m}_")]
    return len(known), min(ranks, default=len(first)), stem


def figures(
    folder: Path,
    *,
    sweep: bool = False,
    labels: Mapping | None = None,
    tooltips: Mapping | None = None,
    objectives: Sequence[str] = (),
) -> str:
    """Every SVG (inline) and PNG (base64) in the folder and its plots/, a PNG with an SVG twin left out.

    Args:
        tooltips: hover text by configuration index, for the ``config:<i>`` markers of a frontier SVG.
        objectives: a sweep's objectives, whose heat maps come first, in this order.
    """
    places = [folder, folder / "plots"]
    svgs = [path for place in places for path in sorted(place.glob("*.svg"))]
    pngs = [p for place in places for p in sorted(place.glob("*.png")) if p.with_suffix(".svg") not in svgs]
    parts = []
    for path in sorted(svgs + pngs, key=lambda p: order(p.stem, sweep=sweep, objectives=objectives)):
        svg = path.suffix == ".svg"
        content = with_tooltips(inline_svg(path), tooltips or {}) if svg else png_img(path)
        text = caption(path.stem, sweep=sweep, labels=labels)
        if svg and re.search(r'<g id="config:\d+"[^>]*><title>', content):
            text += " Hover over a marker to see its configuration and values."
        parts.append(_figure(content, text, path.relative_to(folder)))
    return "\n".join(parts) if parts else '<p class="note">No plots in this folder.</p>'


def _figure(content: str, text: str, name: Path) -> str:
    # tabindex: a click focuses the figure, and the CSS then shows the image at its full size.
    return (
        f'<figure class="plot" tabindex="0">\n{content}\n'
        f'<figcaption>{_e(text)} <span class="file">({_e(name)})</span></figcaption>\n</figure>'
    )


def png_img(path: Path) -> str:
    """An ``<img>`` holding the PNG at ``path`` as a data URI."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(path.stem.replace("_", " "))}">'


def inline_svg(path: Path) -> str:
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
    if _ACTIVE.search(text):  # inlined, it would run in the reader's browser
        raise ResultsError(
            f"{path}: holds a script, an event handler or a link out of the file; qsim's SVGs never do, "
            "so it was not written by qsim (draw it again with `qsim plot`)"
        )
    text = text[text.index("<svg") :]
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)


# What matplotlib's SVGs never hold: scripts, event handlers, foreign HTML, links other than to an
# element of the file itself (#id) or an embedded PNG (colour bars and images).
_ACTIVE = re.compile(
    r"<\s*script|<\s*foreignObject|\son[a-z]+\s*=|href\s*=\s*(?![\"']?\s*(?:#|data:image/png;base64,))",
    re.I,
)


def with_tooltips(svg: str, tooltips: Mapping[int, str]) -> str:
    """``svg`` with a ``<title>`` (hover text) first in each ``<g id="config:<i>">`` that has a tooltip."""

    def add(match: re.Match) -> str:
        text = tooltips.get(int(match["index"]))
        return match[0] if text is None else f"{match[0]}<title>{_e(text)}</title>"

    return re.sub(r'<g id="config:(?P<index>\d+)"[^>]*>', add, svg)


def _e(value) -> str:
    return html.escape(str(value))
