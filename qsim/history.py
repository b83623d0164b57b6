"""The operation history as a DataFrame: column names, types and units, declared once."""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def ops_frame(columns: dict[str, np.ndarray], node_names: list[str]) -> pd.DataFrame:
    """Build the ops DataFrame from the recorder's columns (staleness columns are added later)."""
    codes = columns["error_code"]
    texts = np.full(max(ERROR_TEXT) + 1, None, dtype=object)  # by error code; OK's is None
    texts[list(ERROR_TEXT)] = list(ERROR_TEXT.values())
    errors = pd.array(texts, dtype="string").take(codes.astype(np.intp))  # a few strings, taken per row
    coordinator_names = np.array(["client", *node_names], dtype=object)
    frame = pd.DataFrame(
        {
            "op_id": columns["op_id"],
            "client": columns["client"],
            "kind": pd.Categorical.from_codes(columns["is_write"].astype(np.int8), ["read", "write"]),
            "key": columns["key"],
            "start_ms": columns["start_ms"],
            "end_ms": columns["end_ms"],
            "latency_ms": columns["end_ms"] - columns["start_ms"],
            "ok": codes == OK,
            "error": errors,
            "replies": columns["replies"],
            "attempts": columns["attempts"],
            "version": columns["version"],
            "ts_ms": columns["ts_ms"],
            "commit_ms": columns["commit_ms"],
            "coordinator": pd.Categorical.from_codes(
                columns["coordinator"].astype(np.int64) + 1, coordinator_names
            ),
        }
    )
    return frame


def add_probe_delays(ops: pd.DataFrame, read_ops: np.ndarray, delays: np.ndarray) -> pd.DataFrame:
    """Return ``ops`` with ``probe_delay_ms`` set on the given probe reads (NaN elsewhere)."""
    column = np.full(len(ops), np.nan)
    position = np.searchsorted(ops["op_id"].to_numpy(), read_ops)
    column[position] = delays
    return ops.assign(probe_delay_ms=column)


def faults_frame(records: list[list]) -> pd.DataFrame:
    """Build the faults DataFrame from the fault injector's records."""
    frame = pd.DataFrame(records, columns=list(FAULTS_COLUMNS))
    return frame.astype(
        {"fault_id": np.int64, "kind": str, "target": str, "start_ms": float, "end_ms": float, "params": str}
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


def nodes_frame(records: list[list], node_names: list[str]) -> pd.DataFrame:
    """Build the per-node load timeline from the sampler's records."""
    frame = pd.DataFrame(records, columns=list(NODES_COLUMNS))
    frame["node"] = [node_names[i] for i in frame["node"]]
    return frame.astype(
        {"window_start_ms": float, "messages": np.int64, "queue_length": np.int64, "utilization": float}
    )
