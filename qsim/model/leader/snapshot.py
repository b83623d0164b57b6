"""Log compaction and snapshots (Raft 7): a node forgets the applied prefix of its log.

Every node, once it has applied ``snapshot_every`` entries beyond its last compaction and as many
again, compacts its log up to ``snapshot_every`` entries behind what it applied: it keeps the
store (the state those entries built) and forgets the entries, so memory stays bounded however
long the run. An entry whose client has not had its outcome yet is kept (with the ones after it),
so that a retry of it is still recognised. A leader that must send a follower entries it no
longer has sends a snapshot instead, in an AppendEntries: its store as of the last entry it
applied, and that entry's index and term; the follower replaces its store and log with it.
"""

from __future__ import annotations

from qsim.model.network import APPEND_ENTRIES


class Snapshot:
    """A leader's store as of its last applied entry (``index``, of ``term``)."""

    __slots__ = ("index", "store", "term")

    def __init__(self, index: int, term: int, store: dict):
        self.index, self.term, self.store = index, term, store


class Compaction:
    """The snapshot half of a node (mixed into :class:`qsim.model.leader.node.Node`)."""

    __slots__ = ()

    def compact(self) -> None:
        """Forget the log up to ``snapshot_every`` entries behind the last applied one (see the module)."""
        keep, base, log, where = self.shared.snapshot_every, self.base, self.log, self.where
        end = self.applied - keep  # the last index to forget, at most
        cut = base
        while cut < end:
            op = log[cut + 1 - base][1]
            if op is not None:
                if not op.done:
                    break  # its client may still retry it
                if where is not None:
                    where.pop(op.id, None)
            cut += 1
        if cut > base:
            self.log = [(log[cut - base][0], None), *log[cut + 1 - base :]]
            self.base = cut

    def _send_snapshot(self, other: int) -> None:
        """Send ``other`` this leader's store as of its last applied entry; pipeline on from there."""
        index = self.applied
        snapshot = Snapshot(index, self.log[index - self.base][0], dict(self.replica.store))
        request = (self.index, self.term, -1, 0, snapshot, self.commit, self.seq)
        self.sent += 1
        self.snapshots_sent += 1
        handler = self.shared.append_handler[other]
        self.link_at[other] = self._send_ordered(
            self.index, other, APPEND_ENTRIES, handler, None, request, self.link_at[other]
        )
        self.next[other] = index + 1

    def _install(self, leader: int, snapshot: Snapshot, seq: int, prev: int) -> None:
        """Take a leader's snapshot, unless this node has already committed past it; acknowledge."""
        if snapshot.index > self.commit:
            store = self.replica.store
            store.clear()
            store.update(snapshot.store)
            self.log = [(snapshot.term, None)]
            self.base = self.commit = self.applied = snapshot.index
            self.where = None
            self.early.clear()
        self._ack(leader, True, snapshot.index, seq, prev)
