"""Raft log replication: AppendEntries (batched, pipelined), acknowledgements, commit, heartbeats.

The leader sends each follower the entries from its next index, at most ``max_batch`` per
message, over a link that keeps order (TCP's: no message arrives before the one sent before it,
so a slow one holds up those behind it), and moves the next index on at once (pipelining: it
does not wait for the ack), up to :data:`IN_FLIGHT` messages ahead of the follower's acks; each
ack sends on what a backlog holds. A follower whose log does not match the entry before them
refuses with a hint (its commit index, or its last index if its log is shorter), and the leader
resends from there once (a probe), ignoring the refusals of what it sent before, until one
succeeds. A message that arrives after a gap (one lost before it) is held by the follower until
the gap fills; a follower whose acks have not moved for a heartbeat while entries are out is sent
them again (lost). An entry commits when ``replication_quorum`` nodes (Q2, the leader included)
hold it and it is of the leader's term (older entries commit with it). Followers learn the
commit index from the next AppendEntries, and every node applies committed entries to its
replica's store in log order.
Heartbeats are AppendEntries every ``heartbeat`` ms; with ``check_quorum`` a leader that heard
from fewer than Q2 - 1 followers in the last election timeout steps down (it could not commit).
It measures that, and its read lease, by its own clock: a clock-skew fault that sets its clock
back keeps it leading (and answering lease reads) that much longer; timers themselves are not
moved (they tick, as a monotonic clock does).
"""

from __future__ import annotations

from collections import deque

from qsim.model.clock import call_later
from qsim.model.leader.election import FOLLOWER, LEADER
from qsim.model.leader.snapshot import Snapshot
from qsim.model.network import APPEND_ACK, APPEND_ENTRIES

HELD = -1  # the index of an ack that says "held until the gap before it fills"
EARLY_MAX = 1024  # messages a follower holds that arrived before the ones they follow
IN_FLIGHT = 256  # AppendEntries messages a leader sends a follower ahead of its acks (etcd's default)


class Replication:
    """The log half of a node (mixed into :class:`qsim.model.leader.node.Node`)."""

    __slots__ = ()

    def _lead(self) -> None:
        """Won the election: lead, with a no-op entry of the new term first (Raft 8)."""
        shared, now = self.shared, self.env.now
        self.apply()  # what it committed as a follower and has not applied yet
        self.role = LEADER
        self.leader = self.index
        shared.metrics.elected(self.term, self.index)
        count = len(shared.nodes)
        self.where = None  # made from the log at the first retry (Node._index_of)
        self.next = [self.base + len(self.log)] * count
        self.match = [0] * count
        self.acked_at = [now] * count
        # By this leader's clock, for check quorum: the same list unless a clock-skew fault may move it.
        self.acked_clock = [self.clock()] * count if shared.skewed else self.acked_at
        self.acked_seq = [0] * count
        self.stalled = [-1] * count  # each follower's match at the last heartbeat
        self.probe = [None] * count  # the prev index probed after a refusal, None when pipelining
        self.seq = self.round_seq = 0
        self.rounds = deque()
        self.lease_until = -float("inf")
        self.reads, self.waiting, self.blocked = [], [], []
        self.log.append((self.term, None))
        self.term_start = self.base + len(self.log) - 1
        self.match[self.index] = self.term_start
        self._heartbeat_tick(None)

    def _step_down(self, crashed: bool = False) -> None:
        """Stop leading: the clients waiting here time out and retry elsewhere."""
        now = self.env.now
        self.shared.metrics.stopped(self.index, now if crashed else min(self.last_quorum_ms(), now), crashed)
        self.beat += 1
        self.waiters.clear()
        self.reads, self.waiting, self.blocked, self.round_seq = [], [], [], 0

    def last_quorum_ms(self) -> float:
        """When this leader last heard from enough followers to commit (Q2 - 1 of them), ms."""
        q2 = self.shared.q2
        if q2 <= 1:
            return self.env.now
        return sorted((self.acked_at[o] for o in self.shared.others[self.index]), reverse=True)[q2 - 2]

    def append(self, op) -> int:
        """Append a client's operation to the leader's log; return its index."""
        self.log.append((self.term, op))
        index = self.base + len(self.log) - 1
        if self.where is not None:
            self.where[op.id] = index
        self.match[self.index] = index
        if op.write and op.commit != op.commit:  # NaN: not committed anywhere yet
            op.ts = float(index)
        shared = self.shared
        if shared.q2 == 1:
            self._advance()  # a one-node quorum commits at once
        next_, match, window, link_at = self.next, self.match, shared.window, self.link_at
        request = None
        for other in shared.others[self.index]:
            if next_[other] == index and index - 1 - match[other] < window:
                # The common case: it has all but this one. _send_append, inlined, with one
                # request for every such follower (the same entries after the same index).
                if request is None:
                    log, base = self.log, self.base
                    previous = log[index - 1 - base][0]
                    request = (self.index, self.term, index - 1, previous, (log[index - base],), self.commit,
                               self.seq)  # fmt: skip
                self.sent += 1
                handler = shared.append_handler[other]
                link_at[other] = self._send_ordered(
                    self.index, other, APPEND_ENTRIES, handler, None, request, link_at[other]
                )
                next_[other] = index + 1
            else:
                self._fill(other)
        return index

    def _fill(self, other: int) -> None:
        """Send ``other`` the entries it lacks, up to :data:`IN_FLIGHT` messages' worth unacknowledged."""
        window = self.shared.window
        next_, match, end = self.next, self.match, self.base + len(self.log)
        while next_[other] < end and next_[other] - 1 - match[other] < window:
            self._send_append(other)

    def _send_append(self, other: int) -> None:
        next_, log, link_at, base = self.next, self.log, self.link_at, self.base
        start = next_[other]
        if start <= base:  # what it lacks is compacted away: send the snapshot instead
            self._send_snapshot(other)
            return
        entries = log[start - base : start - base + self.max_batch]
        request = (self.index, self.term, start - 1, log[start - 1 - base][0], entries, self.commit, self.seq)
        self.sent += 1
        handler = self.shared.append_handler[other]
        link_at[other] = self._send_ordered(
            self.index, other, APPEND_ENTRIES, handler, None, request, link_at[other]
        )
        next_[other] = start + len(entries)

    def _heartbeat_tick(self, event) -> None:
        if event is not None and (event.value != self.beat or self.role != LEADER):
            return
        shared = self.shared
        if shared.check_quorum and event is not None:
            clock, acked = self.clock(), self.acked_clock
            heard = sum(clock - acked[o] < self.timeout for o in shared.others[self.index])
            if heard + 1 < shared.q2:
                self._follow(self.term)
                return
        if shared.read_mode == "lease":
            self.new_round()
        for other in shared.others[self.index]:
            if self.match[other] == self.stalled[other] and self.next[other] > self.match[other] + 1:
                self._probe(other, self.match[other])  # nothing acked for a beat: resend, lost
            else:
                self._send_append(other)
            self.stalled[other] = self.match[other]
        call_later(self.env, shared.heartbeat_ms, self._heartbeat_tick, self.beat)

    def on_append(self, message) -> None:
        """AppendEntries: ``arg`` (leader, term, prev index, prev term, entries, commit, seq)."""
        leader, term, prev, prev_term, entries, commit, seq = arg = message.arg
        log = self.log
        if (
            term == self.term
            and prev == self.base + len(log) - 1
            and self.role == FOLLOWER
            and log[-1][0] == prev_term
            and not self.early
        ):  # the common case: the next entries from this term's leader, in order
            self.leader = leader
            self.heard = self.env._now
            held = prev + len(entries)
            if held == prev + 1:  # one entry: most messages under load
                log.append(entries[0])
            elif entries:
                log.extend(entries)
            if commit > self.commit and held > self.commit:
                self.commit = min(commit, held)
                if self.commit - self.base >= self.shared.apply_span:
                    self.apply()  # else later, in a batch: see Node.apply
            self.sent += 1
            reply = (self.index, term, True, held, seq, prev)
            self._reply(message, self._acks, leader, self.shared.ack_callbacks[leader], reply)
            return
        if term < self.term:
            self._ack(leader, False, self.base + len(self.log) - 1, seq, prev)
            return
        if term > self.term or self.role != FOLLOWER:
            self._follow(term)
        self.leader = leader
        self.heard = self.env.now
        if prev < self.base + len(self.log):
            self._accept(arg)
            self._drain_early()
            return
        # After a gap (a message lost before it): held until the gap fills, as TCP would.
        held = self.early.get(prev)
        if len(self.early) < EARLY_MAX and (held is None or len(held[4]) < len(arg[4])):
            self.early[prev] = arg
        self._ack(leader, False, HELD, seq, prev)

    def _accept(self, arg: tuple) -> None:
        """Store an AppendEntries whose previous index this log reaches, or refuse it with a hint."""
        leader, _, prev, prev_term, entries, commit, seq = arg
        if type(entries) is Snapshot:
            self._install(leader, entries, seq, prev)
            return
        held = prev + len(entries)
        if prev < self.base:  # it reaches into what this node compacted (committed, so it agrees)
            entries, prev, prev_term = entries[self.base - prev :], self.base, self.log[0][0]
        if self.log[prev - self.base][0] != prev_term:
            self._ack(leader, False, min(self.commit, prev - 1), seq, prev)
            return
        self._store_entries(prev, entries)
        if commit > self.commit and held > self.commit:
            self.commit = min(commit, held)
            self.apply()
        self._ack(leader, True, held, seq, prev)

    def _drain_early(self) -> None:
        """Accept the held messages that the log now reaches (those of an older term are dropped)."""
        early = self.early
        while early and self.base + len(self.log) - 1 in early:
            arg = early.pop(self.base + len(self.log) - 1)
            if arg[1] == self.term:
                self._accept(arg)
        if early and min(early) < self.base + len(self.log) - 1:
            for prev in [p for p in early if p < self.base + len(self.log)]:
                arg = early.pop(prev)
                if arg[1] == self.term:
                    self._accept(arg)

    def _store_entries(self, prev: int, entries: list) -> None:
        """Add ``entries`` after ``prev``, cutting the log where it conflicts with them.

        A follower keeps no map from op ids to indexes (``where``): a leader makes it from its
        log when it first needs it (:meth:`Node._index_of`).
        """
        log, base = self.log, self.base
        if prev + 1 == base + len(log):  # the common case: they extend the log
            log.extend(entries)
            return
        for offset, entry in enumerate(entries):
            index = prev + 1 + offset
            if index < base + len(log):
                if log[index - base][0] == entry[0]:
                    continue
                del log[index - base :]
            log.append(entry)

    def _ack(self, leader: int, success: bool, index: int, seq: int, prev: int) -> None:
        reply = (self.index, self.term, success, index, seq, prev)
        self.send(leader, APPEND_ACK, self.shared.nodes[leader].on_ack, reply)

    def on_ack(self, message) -> None:
        """A follower's answer: ``arg`` (follower, term, success, index held or hint, seq, prev)."""
        follower, term, success, index, seq, prev = message.arg
        if success and term == self.term and self.role == LEADER:  # the common case
            self.acked_at[follower] = self.env._now
            if self.acked_clock is not self.acked_at:
                self.acked_clock[follower] = self.clock()
            if seq > self.acked_seq[follower]:
                self.acked_seq[follower] = seq
                if self.round_seq:
                    self._confirm_reads()
                if self.rounds:
                    self.extend_lease()
            self.probe[follower] = None
            if index > self.match[follower]:
                self.match[follower] = index
                if index >= self.next[follower]:
                    self.next[follower] = index + 1
                if index > self.commit:
                    self._advance()
            if self.next[follower] < self.base + len(self.log):
                self._fill(follower)  # a backlog (batches were full): the next batches
            return
        if term > self.term:
            self._follow(term)
            return
        if self.role != LEADER or term != self.term:
            return
        self.acked_at[follower] = self.env.now
        if self.acked_clock is not self.acked_at:
            self.acked_clock[follower] = self.clock()
        if seq > self.acked_seq[follower]:
            self.acked_seq[follower] = seq
            self._confirm_reads()
            if self.rounds:
                self.extend_lease()
        if index == HELD:
            return
        if success:
            self.probe[follower] = None
            if index > self.match[follower]:
                self.match[follower] = index
                self.next[follower] = max(self.next[follower], index + 1)
                self._advance()
            self._fill(follower)  # a backlog (batches were full): the next batches
        elif prev >= self.match[follower] and self.probe[follower] in (None, prev):
            self._probe(follower, max(index, self.match[follower]))

    def _probe(self, follower: int, hint: int) -> None:
        """Resend from after ``hint``, and count only the refusal of this resend until one succeeds.

        Refusals of messages sent before it (pipelined, or overtaken in flight) are ignored, so that
        one gap costs one resend, not one per message in flight.
        """
        self.next[follower] = hint + 1
        self.probe[follower] = hint
        self._send_append(follower)

    def _advance(self) -> None:
        """Commit up to the highest index Q2 nodes hold, if it is of this term."""
        held = sorted(self.match, reverse=True)[self.shared.q2 - 1]
        base = self.base
        if held <= self.commit or self.log[held - base][0] != self.term:
            return
        now, log = self.env.now, self.log
        first = self.commit < self.term_start
        self.shared.learned_commit(log, base, self.commit, held, now)
        self.commit = held
        if first:
            self.shared.metrics.serving(self.term, self.index, now)
            blocked, self.blocked = self.blocked, []
            for attempt in blocked:
                self.read_index(attempt)
        self.apply()
