"""The operation history as a DataFrame: column names, types and units, declared once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from qsim.model.recorder import ERROR_TEXT, OK

OPS_COLUMNS = {
    "op_id": "operation number, in order of issue",
    "client": "client number",
    "kind": "'read' or 'write'",
    "key": "key id",
    "start_ms": "when the client issued it, ms",
    "end_ms": "when the client had its answer or gave up, ms",
    "latency_ms": "end_ms - start_ms",
    "ok": "completed within its timeout with enough replies",
    "error": "why it failed (null when ok)",
    "replies": "replica replies counted before it completed or timed out",
    "version": "writes: own op_id; reads: op_id of the write whose value it returned (-1: none)",
    "ts_ms": "writes: version timestamp, the coordinator's clock when the first attempt began, ms",
    "commit_ms": "writes: when the first attempt to hold W acks had them (null if none did), ms",
    "coordinator": "node that coordinated it, or 'client' when the client did",
    "stale": "reads: returned a version older than the newest committed before start (null: unchecked)",
    "k": "reads: committed versions missed (null: unchecked)",
    "t_ms": "reads: start_ms minus the commit time of the newest version committed before it, ms",
    "anomaly_linearizability": "in a witness that its key is not linearizable (qsim.checks.linearizability)",
    "anomaly_read_your_writes": "in a read-your-writes violation of its client (qsim.checks.sessions)",
    "anomaly_monotonic_reads": "in a monotonic-reads violation of its client",
    "anomaly_monotonic_writes": "in a monotonic-writes violation of its client",
    "anomaly_writes_follow_reads": "in a writes-follow-reads violation of its client",
    "attempts": "attempts made (1 + retries used)",
    "faults": "ids of the faults active at some time while it ran, comma-separated ('' if none)",
    "warmup": (
        "started before the warm-up ended: left out of the summary, plots and analysis helpers by default"
    ),
    "probe_delay_ms": "probe reads: the configured delay t after the write's outcome, ms",
}

FAULTS_COLUMNS = {
    "fault_id": "the fault's index in the scenario; random crashes are numbered after them",
    "kind": "crash, partition, degrade, slow or clock_skew",
    "target": "what it hit: node, region, groups ('a,b | c,d') or link ends ('a-b')",
    "start_ms": "when it started, ms",
    "end_ms": "when it ended, ms (null: still active when the run ended)",
    "params": "its other settings, as JSON",
}
_FAULTS_TYPES = {"fault_id": np.int64, "kind": str, "target": str, "start_ms": float, "end_ms": float,
                "params": str}  # fmt: skip


def ops_frame(columns: dict[str, np.ndarray], node_names: list[str]) -> pd.DataFrame:
    """Build the ops DataFrame from the recorder's columns (staleness columns are added later).

    The frame holds the given arrays as they are (``copy=False``) when contiguous, as the recorder's
    are: copying them into pandas' consolidated blocks would only double the memory touched. Strided
    ones (the fields of spooled records) are copied, as the checkers read contiguous columns faster.
    """
    columns = {name: np.ascontiguousarray(values) for name, values in columns.items()}
    codes = columns["error_code"]
    texts = [None] * (max(ERROR_TEXT) + 1)  # by error code; OK's is None
    for code, text in ERROR_TEXT.items():
        texts[code] = text
    coordinator_names = np.array(["client", *node_names], dtype=object)
    return pd.DataFrame(
        {
            "op_id": columns["op_id"],
            "client": columns["client"],
            "kind": pd.Categorical.from_codes(columns["is_write"].astype(np.int8), ["read", "write"]),
            "key": columns["key"],
            "start_ms": columns["start_ms"],
            "end_ms": columns["end_ms"],
            "latency_ms": columns["end_ms"] - columns["start_ms"],
            "ok": codes == OK,
            "error": string_column(texts, codes),
            "replies": columns["replies"],
            "attempts": columns["attempts"],
            "version": columns["version"],
            "ts_ms": columns["ts_ms"],
            "commit_ms": columns["commit_ms"],
            # int32: the recorder's int16 node index + 1 cannot overflow.
            "coordinator": pd.Categorical.from_codes(
                np.add(columns["coordinator"], 1, dtype=np.int32), coordinator_names
            ),
        },
        copy=False,
    )


def string_column(texts: list[str | None], codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Return ``pd.array(texts, dtype="string").take(codes)``: the text of each code (None: null).

    Arrow takes the texts by the codes as they are (no copy of them as intp), and a column of one
    text is made without a take: all null, or all '' (zero offsets, in lazily zeroed memory).
    Codes outside ``texts`` (a negative one counts from the end, as numpy's) go the general way.
    """
    dtype = pd.StringDtype()
    low, high = (int(codes.min()), int(codes.max())) if len(codes) else (0, 0)
    if dtype.storage != "pyarrow" or low < 0 or high >= len(texts):
        return pd.array(texts, dtype=dtype).take(codes.astype(np.intp))
    if low == high and texts[low] is None:
        strings = pa.nulls(len(codes), pa.large_string())
    elif low == high and texts[low] == "":
        offsets = pa.py_buffer(np.zeros(len(codes) + 1, np.int64))
        strings = pa.LargeStringArray.from_buffers(len(codes), offsets, pa.py_buffer(b""))
    else:
        strings = pa.array(texts, pa.large_string()).take(pa.array(codes))
    return pd.arrays.ArrowStringArray(strings, dtype=dtype)


def add_probe_delays(ops: pd.DataFrame, read_ops: np.ndarray, delays: np.ndarray) -> pd.DataFrame:
    """Return ``ops`` with ``probe_delay_ms`` set on the given probe reads (NaN elsewhere)."""
    column = np.full(len(ops), np.nan)
    position = np.searchsorted(ops["op_id"].to_numpy(), read_ops)
    column[position] = delays
    return ops.assign(probe_delay_ms=column)


def faults_frame(records: list[list]) -> pd.DataFrame:
    """Build the faults DataFrame from the fault injector's records."""
    return _typed_frame(records, _FAULTS_TYPES)


def _typed_frame(records: list[list], types: dict[str, type]) -> pd.DataFrame:
    """A frame of ``records`` (rows of the columns ``types`` names), a column at a time in its type.

    Much cheaper than a frame of the rows converted with ``astype``, and the same frame: str columns
    are converted as ``astype(str)`` converts them.
    """
    columns = zip(*records, strict=True) if records else [()] * len(types)
    return pd.DataFrame(
        {
            name: pd.array(list(values), dtype=str) if kind is str else np.array(values, dtype=kind)
            for (name, kind), values in zip(types.items(), columns, strict=True)
        }
    )


MESSAGES_COLUMNS = {
    "op_id": "the operation it belongs to (-1: background traffic such as hints and anti-entropy)",
    "kind": "message kind (write_request, write_ack, ..., hint, anti_entropy)",
    "src": "sender: a node name, or clients@<region>",
    "dst": "receiver, named the same way",
    "sent_ms": "when it was sent, ms",
    "delivered_ms": "when it was delivered, ms (null if dropped)",
    "dropped": "whether it was lost",
    "reason": "why it was lost: loss, down, crashed or partition ('' if delivered)",
    "attempt": "the attempt of its operation it belongs to, from 0 (-1: background traffic)",
    "lost_ms": "when a dropped message reached a down or crashed node or a cut link, ms "
    "(null if delivered, or lost in flight to `loss`)",
}


def messages_frame(records: list[list], endpoint_names: list[str], kinds: tuple[str, ...]) -> pd.DataFrame:
    """Build the traced-messages DataFrame from the tracer's records."""
    frame = pd.DataFrame(records, columns=list(MESSAGES_COLUMNS))
    frame["kind"] = [kinds[k] for k in frame["kind"]]
    frame["src"] = [endpoint_names[e] for e in frame["src"]]
    frame["dst"] = [endpoint_names[e] for e in frame["dst"]]
    return frame.astype(
        {
            "op_id": np.int64,
            "sent_ms": float,
            "delivered_ms": float,
            "lost_ms": float,
            "dropped": bool,
            "reason": str,
            "attempt": np.int64,
        }
    )


NODES_COLUMNS = {
    "window_start_ms": "start of the window, ms",
    "node": "node name",
    "messages": "messages delivered to the node in the window",
    "queue_length": "requests waiting for a server at the end of the window",
    "utilization": "time-average busy servers in the window / servers",
}
# The sampler's records hold a node's index: nodes_frame names it.
_NODES_TYPES = {"window_start_ms": float, "node": np.intp, "messages": np.int64, "queue_length": np.int64,
                "utilization": float}  # fmt: skip


def nodes_frame(records: list[list], node_names: list[str]) -> pd.DataFrame:
    """Build the per-node load timeline from the sampler's records."""
    frame = _typed_frame(records, _NODES_TYPES)
    frame["node"] = [node_names[i] for i in frame["node"].tolist()]
    return frame
