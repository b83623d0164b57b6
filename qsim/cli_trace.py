"""The tracing options of ``qsim run``: --trace-messages and --trace-around, checked and told."""

from __future__ import annotations

import click

TRACE_AROUND_N = 10  # operations traced with --trace-around when --trace-messages is not given
TRACE_EVERY_N = 24  # the same for --trace-around anomalies: up to five witnesses and some context


def trace_focus(ctx: click.Context, param: click.Parameter, value: str | None) -> str | int | None:
    """--trace-around: an anomaly name or an op id."""
    if value is None:
        return None
    from qsim.tracing import NAMES

    if value in NAMES:
        return value
    if value.isdigit():
        return int(value)
    raise click.BadParameter(f"{value!r}: expected an op id or one of {', '.join(NAMES)}", ctx, param)


def trace_count(trace_messages: int | None, trace_around: str | int | None, engine: str) -> int:
    """How many operations to trace (0: none), from --trace-messages and --trace-around."""
    if trace_messages is not None and trace_messages < 1:  # refused, not a silent run without a diagram
        raise click.UsageError(
            f"--trace-messages {trace_messages} traces nothing and draws no diagram: "
            "give N of 1 or more, or leave it out"
        )
    if trace_messages is not None:
        count = trace_messages
    else:
        count = {None: 0, "anomalies": TRACE_EVERY_N}.get(trace_around, TRACE_AROUND_N)
    if count and engine != "des":
        raise click.UsageError("--trace-messages and --trace-around need --engine des (they trace messages)")
    return count


def warn_crowded(messages) -> None:
    """Warn on stderr when the sequence diagram has more operations than read well (it is drawn)."""
    from qsim.output.diagram import READABLE_OPS

    count = messages.loc[messages["op_id"] >= 0, "op_id"].nunique()  # -1: background traffic
    if count > READABLE_OPS:
        click.echo(
            f"warning: the sequence diagram draws {count} operations, too many to read (at most "
            f"{READABLE_OPS} read well); messages.parquet has every message. Trace fewer, or the ones "
            "that matter with --trace-around.",
            err=True,
        )


def traced_words(trace: dict) -> str:
    """What a traced run traced, in words: one line, then one per consistency anomaly of several."""
    if "first" in trace:
        return f"the first {trace['first']} operations"
    if trace["around"] != "anomalies":
        return f"{len(trace['op_ids'])} operations around {trace['what']}, {trace['focus']}"
    lines = [f"{len(trace['op_ids'])} operations around {trace['what']}:"]
    lines += [f"  {_anomaly_words(anomaly)}" for anomaly in trace["anomalies"]]
    lines += [
        f"  left out (too many operations for one diagram; raise --trace-messages): {_anomaly_words(anomaly)}"
        for anomaly in trace["left_out"]
    ]
    if trace["kinds_without"]:
        kinds = ", ".join(kind.replace("_", "-") for kind in trace["kinds_without"])
        lines.append(f"  none in this run: {kinds}")
    return "\n".join(lines)


def _anomaly_words(anomaly: dict) -> str:
    """``monotonic-reads (ops 3, 9): client 2 read key 1 twice: ...``"""
    ops = ", ".join(str(op_id) for op_id in anomaly["ops"])
    return f"{anomaly['kind'].replace('_', '-')} (ops {ops}): {anomaly['note']}"
