"""The in-flight state of one attempt of an operation, and how versions compare."""

from __future__ import annotations

CLIENT = -1  # the coordinator column's value when the client coordinates its own operation
_NAN = float("nan")


class Op:
    """The in-flight state of one attempt of an operation."""

    __slots__ = (
        "arrived",
        "attempt",
        "begun",
        "best",
        "client",
        "commit",
        "coordinator",
        "coordinator_endpoint",
        "deadline",
        "done",
        "hedged",
        "id",
        "key",
        "need",
        "needed",
        "newest",
        "on_done",
        "orphaned",
        "pending",
        "pool",
        "reached",
        "repairs",
        "replies",
        "responses",
        "start",
        "targets",
        "ts",
        "write",
    )

    def __init__(
        self, op_id: int, client: int, write: bool, key: int, start: float, needed: int, on_done, attempt=0
    ):
        self.id = op_id
        self.client = client
        self.write = write
        self.key = key
        self.start = start
        self.needed = needed
        self.on_done = on_done
        self.attempt = attempt
        self.replies = 0
        self.best = None
        self.commit = self.ts = _NAN
        self.arrived = self.reached = self.done = self.orphaned = False
        self.need = None  # replies still needed per region, for local_* and each_quorum levels
        self.hedged = None  # (node, time) of the hedged request, if one was sent

    def retry(self, needed: int) -> Op:
        """Return the next attempt: the same operation with fresh quorum state needing ``needed``."""
        return Op(
            self.id, self.client, self.write, self.key, self.start, needed, self.on_done, self.attempt + 1
        )


def newer(version: tuple | None, than: tuple | None) -> bool:
    """True if ``version`` is newer than ``than`` (any version is newer than none)."""
    return version is not None and (than is None or version > than)
