"""An anomaly: a small set of operations that together break a consistency guarantee."""

from __future__ import annotations

from dataclasses import dataclass

# The kinds of anomaly, in the order reports list them; each is also an ops column "anomaly_<kind>".
KINDS = (
    "linearizability",
    "read_your_writes",
    "monotonic_reads",
    "monotonic_writes",
    "writes_follow_reads",
)


@dataclass(frozen=True)
class Anomaly:
    """Operations ``ops`` (op ids, in the order the explanation names them) of ``key`` that show ``kind``.

    ``client`` is the session for the session guarantees (None for linearizability); ``note`` says
    in one sentence what happened, naming the operations by op id.
    """

    kind: str
    key: int
    ops: tuple[int, ...]
    note: str
    client: int | None = None

    def as_dict(self) -> dict:
        """A JSON-ready form (summary.json, reports)."""
        return {
            "kind": self.kind,
            "key": self.key,
            "client": self.client,
            "ops": list(self.ops),
            "note": self.note,
        }
