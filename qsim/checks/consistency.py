"""A run's consistency section: linearizability and the session guarantees, over parts of a history.

Every checker works one key at a time (sessions per client and key), so a history can be checked
in parts that each hold every operation of their keys (the key buckets of a streamed run, or the
whole history at once) and the parts' findings added up: the counts are sums, and the anomalies
shown are the first few of each kind over all parts, by op id, so that they do not depend on how
the history was cut. The checks cover the whole history, warm-up included: a history is
linearizable, or a session keeps its guarantees, as a whole.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qsim.checks.anomaly import KINDS, Anomaly
from qsim.checks.linearizability import check_linearizability
from qsim.checks.sessions import GUARANTEES, check_sessions

COLUMNS = tuple(f"anomaly_{kind}" for kind in KINDS)  # the ops columns: takes part in one of that kind
SHOWN = 5  # anomalies of each kind kept for the summary and the reports


def anomaly_columns(ops: pd.DataFrame, *, keep: int = SHOWN) -> tuple[pd.DataFrame, dict, list[Anomaly]]:
    """Check ``ops`` (whole keys); return the anomaly columns aligned with it, the counts and anomalies.

    The counts are those of :meth:`Consistency.add`; the anomalies are the first ``keep`` of each kind.
    """
    linear = check_linearizability(ops, keep=keep)
    sessions = check_sessions(ops, keep=keep)
    flags = {"anomaly_linearizability": linear.flags}
    flags.update({f"anomaly_{kind}": sessions.flags[kind] for kind in GUARANTEES})
    counts = {
        "keys_checked": linear.keys_checked,
        "keys_invalid": linear.keys_invalid,
        "keys_unknown": linear.keys_unknown,
        "violations": linear.violations,
        "clients": set(np.unique(ops.loc[ops["ok"].to_numpy(bool), "client"].to_numpy()).tolist()),
        **{kind: sessions.counts[kind] for kind in GUARANTEES},
    }
    frame = pd.DataFrame({name: flags[name] for name in COLUMNS}, index=ops.index)
    return frame, counts, [*linear.anomalies, *sessions.anomalies]


class Consistency:
    """Adds up the consistency checks of the parts of one history (each part holds whole keys)."""

    def __init__(self, keep: int = SHOWN) -> None:
        self._keep = keep
        self._linear = {"keys_checked": 0, "keys_invalid": 0, "keys_unknown": 0, "violations": 0}
        self._sessions = dict.fromkeys(GUARANTEES, 0)
        self._clients: set[int] = set()
        self._shown: dict[str, list[Anomaly]] = {kind: [] for kind in KINDS}

    def add(self, ops: pd.DataFrame) -> pd.DataFrame:
        """Check a part of the history; return its anomaly columns (aligned with ``ops``)."""
        frame, counts, anomalies = anomaly_columns(ops, keep=self._keep)
        for name in self._linear:
            self._linear[name] += counts[name]
        for kind in self._sessions:
            self._sessions[kind] += counts[kind]
        self._clients |= counts["clients"]
        for anomaly in anomalies:
            self._shown[anomaly.kind].append(anomaly)
        for kind, shown in self._shown.items():
            self._shown[kind] = sorted(shown, key=_order)[: self._keep]
        return frame

    def result(self) -> dict:
        """The summary's ``consistency`` section."""
        return {
            "linearizability": dict(self._linear),
            "sessions": {"clients_checked": len(self._clients), **self._sessions},
            "anomalies": [a.as_dict() for kind in KINDS for a in self._shown[kind]],
        }


def _order(anomaly: Anomaly) -> int:
    """Where an anomaly comes in its kind's list: by the op that shows it last (sessions: the later
    op), or by the earliest op of a linearizability witness; op ids follow the order of issue."""
    return anomaly.ops[-1] if anomaly.client is not None else min(anomaly.ops)


def flags_to_bits(frame: pd.DataFrame) -> np.ndarray:
    """Pack the anomaly columns into one byte per row (bit i: ``COLUMNS[i]``), as spooled records do."""
    bits = np.zeros(len(frame), dtype=np.uint8)
    for i, name in enumerate(COLUMNS):
        bits |= frame[name].to_numpy(bool).astype(np.uint8) << i
    return bits


def bits_to_flags(bits: np.ndarray) -> dict[str, np.ndarray]:
    """The anomaly columns of packed bytes (:func:`flags_to_bits`)."""
    return {name: (bits >> i) & 1 == 1 for i, name in enumerate(COLUMNS)}
