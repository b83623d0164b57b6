"""The in-flight state of one attempt of an operation, and how versions compare.

Attempts of one write share its version and its commit: a retry carries the version timestamp of
the first attempt that began (as Dynamo and Cassandra coordinators retry with the same timestamp,
so a retried write is the same write, never a newer one), and the time the first attempt reached
W acknowledgements, whatever the client heard of it.
"""

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
        "heard",
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
        # need: replies still needed per region (local_* and each_quorum levels), or the quorum
        # system's side whose quorum the nodes that answered (mask ``heard``) must hold; hedged: (node, time)
        # of the hedged request; coordinator: set at dispatch (a retry first waits out its backoff).
        self.need = self.hedged = self.coordinator = None

    def retry(self, needed: int) -> Op:
        """Return the next attempt: the same operation with fresh quorum state needing ``needed``.

        It keeps the write's version timestamp and commit time, if an earlier attempt set them.
        """
        op = Op(
            self.id, self.client, self.write, self.key, self.start, needed, self.on_done, self.attempt + 1
        )
        op.ts, op.commit = self.ts, self.commit
        return op


def newer(version: tuple | None, than: tuple | None) -> bool:
    """True if ``version`` is newer than ``than`` (any version is newer than none)."""
    return version is not None and (than is None or version > than)
