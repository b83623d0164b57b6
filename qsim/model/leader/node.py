"""A node of the leader protocol: its Raft state, what it does for clients, crash and recovery.

Persistent state (term, vote, log) survives a crash, and so does the replica's store (applied
entries); with amnesia all of it is lost, store included, which is unsafe for a voter (it may vote
twice in a term and forget committed entries). With a service time every message a node receives
(client requests, AppendEntries, acks, votes) waits in the replica's queue for a server and holds
it for a service time before it is handled, so a leader, which handles the most, queues first;
with none, messages are handled on arrival.
"""

from __future__ import annotations

from collections import deque
from functools import partial

from qsim.model.leader.election import FOLLOWER, LEADER, Election
from qsim.model.leader.replication import Replication
from qsim.model.leader.snapshot import Compaction
from qsim.model.network import APPEND_ACK


class Node(Election, Replication, Compaction):
    """One member of the group: follower, candidate or leader."""

    # Slots: a node has more attributes than Python 3.11 keeps in a shared-key instance dict
    # (30), and a slot is read faster than a key of an unshared dict (each message reads dozens).
    # __dict__ holds the handlers that queue_messages puts in place of methods.
    __slots__ = (
        "__dict__", "_acks", "_reply", "_send", "_send_ordered", "acked_at", "acked_clock", "acked_seq",
        "applied", "base", "beat", "blocked", "commit", "early", "env", "heard", "index", "leader",
        "lease_reads", "lease_until", "link_at", "log", "match", "max_batch", "next", "probe",
        "quiet_until", "reads", "replica", "role", "round_seq", "rounds", "sent", "seq", "shared",
        "snapshots_sent", "stalled", "term", "term_start", "timeout", "token", "voted", "votes",
        "waiters", "waiting", "where",
    )  # fmt: skip

    def __init__(self, index: int, shared, replica):
        self.index = index
        self.shared = shared
        self.env = shared.env
        self._send = shared.network.send
        self._reply = shared.network.reply
        self._acks = shared.network.row(APPEND_ACK, index)  # what network.reply takes
        self._send_ordered = shared.network.send_ordered
        self.max_batch = shared.max_batch
        self.link_at = [0.0] * len(shared.others)  # when the last message sent to each node arrives, ms
        self.replica = replica
        self.role = FOLLOWER
        self.term = 0
        self.voted: int | None = None
        self.log: list[tuple] = [(0, None)]  # (term, op or None for a no-op); log[0]: index base
        self.base = 0  # the log's first index (its entry: the term there, no op); what is before is compacted
        # Leader: op id -> its index in this log; made at the first retry it sees (see _index_of).
        self.where: dict[int, int] | None = None
        self.commit = self.applied = 0
        self.leader: int | None = None  # the leader this node knows of
        self.votes: set[int] = set()
        self.heard = 0.0  # when a leader (or a granted vote) was last heard, ms
        self.timeout = shared.election_timeout[index]()
        self.token = 0  # the election timer's: a timer with an older token is void
        self.beat = 0  # the leader's timers': moves on when it stops leading or crashes
        self.waiters: dict[int, object] = {}  # leader: op id -> the attempt waiting for its entry
        self.reads: list = []  # leader, read_index: the reads the round in flight confirms
        self.round_seq = 0  # leader, read_index: that round's number (0: none in flight)
        self.waiting: list = []  # leader, read_index: reads for the next round
        self.blocked: list = []  # leader, read_index: reads waiting for this term's first commit
        self.term_start = 0
        self.early: dict[int, tuple] = {}  # AppendEntries overtaken in flight, by previous index
        # A leader's view of each node (set when it wins; made here so every node's attributes
        # are the same, in the same order, which keeps Python's attribute lookups fast).
        self.next: list[int] = []  # the next index to send each node
        self.match: list[int] = []  # the highest index known to be held by each node
        self.acked_at: list[float] = []  # when each follower last answered, ms
        self.acked_clock: list[float] = []  # the same by this leader's clock
        self.acked_seq: list[int] = []  # the latest heartbeat round each follower answered
        self.stalled: list[int] = []  # each follower's match at the last heartbeat
        self.probe: list = []  # the prev index probed after a refusal, None when pipelining
        self.seq = 0  # the heartbeat round
        self.sent = 0  # messages this node has sent (its load, with those it received)
        self.lease_until = -float("inf")  # leader, lease: its lease ends then, by its own clock
        self.rounds: deque = deque()  # leader, lease: (seq, sent by its clock) of heartbeat rounds
        self.lease_reads = 0  # reads answered from the lease
        self.snapshots_sent = 0  # to followers that lacked what this leader had compacted
        self.quiet_until = 0.0  # lease: votes are refused until then (a node back from a crash)

    def queue_messages(self) -> None:
        """Route every message handler through the replica's service queue (a non-zero service time)."""
        for name in ("on_client", "on_append", "on_ack", "on_request_vote", "on_vote"):
            setattr(self, name, partial(self.replica.serve, getattr(self, name)))

    def start(self) -> None:
        """Start the election timer."""
        self._arm()

    def send(self, dst: int, kind: int, handler, arg) -> None:
        """Send a node-to-node message (no client operation: tracing sees it as background)."""
        self.sent += 1
        self._send(self.index, dst, kind, handler, None, arg)

    # --- clients -------------------------------------------------------------------------------

    def on_client(self, message) -> None:
        """A client's request: answer (follower reads), redirect, or lead it to its answer."""
        attempt = message.op
        attempt.arrived = True
        attempt.message = message
        op, shared = attempt.op, self.shared
        if not op.write and shared.read_mode != "leader":
            self._read(attempt, op, shared)
        elif self.role != LEADER:
            shared.redirect(self.index, attempt, self.leader)
        else:
            index = self._index_of(op.id) if op.attempt else None  # a first attempt is in no log
            if index is None and op.done:
                return  # its client has its outcome (so it ignores any answer), and it may be compacted
            if index is not None and index <= self.applied:  # a retry of what is already applied
                shared.answer(self.index, attempt, self._version_for(op))
                return
            self.waiters[op.id] = attempt
            if index is None:
                self.append(op)

    def _read(self, attempt, op, shared) -> None:
        """A read that does not go through the log: follower, read_index or lease."""
        mode = shared.read_mode
        if mode == "follower":
            shared.answer(self.index, attempt, self.replica.store.get(op.key))
        elif self.role != LEADER:
            shared.redirect(self.index, attempt, self.leader)
        elif mode == "lease" and self.commit >= self.term_start and self.clock() < self.lease_until:
            self.lease_reads += 1
            shared.answer(self.index, attempt, self.replica.store.get(op.key))
        else:
            self.read_index(attempt)

    def _index_of(self, op_id: int) -> int | None:
        """The index of an operation in this leader's log, or None.

        The map is made from the log the first time a leader is asked (only a retry can already
        be in the log: a first attempt reaches one leader at most, and waits there), and kept from
        then on.
        """
        if self.where is None:
            base = self.base
            self.where = {op.id: index for index, (_, op) in enumerate(self.log, base) if op is not None}
        return self.where.get(op_id)

    def _version_for(self, op) -> tuple | None:
        """The version a client's operation is answered with: its own (write), or the store's."""
        if op.write:
            return (self.where[op.id], op.client, op.id)
        return self.replica.store.get(op.key)

    def read_index(self, attempt) -> None:
        """ReadIndex: answer once a heartbeat round sent after now confirms the leadership.

        One round is in flight at a time, as in etcd: reads that come meanwhile wait for the next
        round, which goes out when this one is confirmed (with them all).
        """
        if self.commit < self.term_start:  # this term's no-op first: the commit index is current then
            self.blocked.append(attempt)
        elif self.round_seq:
            self.waiting.append(attempt)
        else:
            self._read_round([attempt])

    def _read_round(self, reads: list) -> None:
        """Send a heartbeat round that confirms ``reads`` once a replication quorum acknowledges it."""
        self.new_round()
        self.round_seq, self.reads = self.seq, reads
        for other in self.shared.others[self.index]:
            self._send_append(other)
        self._confirm_reads()

    def clock(self) -> float:
        """This node's clock (the clock-skew fault sets it ahead or behind), ms."""
        return self.env.now + self.shared.clock_offset[self.index]

    def new_round(self) -> None:
        """Begin a heartbeat round: messages sent from now on carry its number (leases: its time too)."""
        self.seq += 1
        if self.shared.read_mode == "lease":
            self.rounds.append((self.seq, self.clock()))

    def extend_lease(self) -> None:
        """Lease from the latest round that N - Q1 followers acknowledged: no other leader wins in it.

        Followers that heard this leader after the round began refuse votes for the lease; with
        N - Q1 of them (and this leader) every election quorum meets one.
        """
        need, others = self.shared.lease_followers, self.shared.others[self.index]
        seq = self.seq if need == 0 else sorted((self.acked_seq[o] for o in others), reverse=True)[need - 1]
        rounds, sent = self.rounds, None
        while rounds and rounds[0][0] <= seq:
            sent = rounds.popleft()[1]
        if sent is not None:
            self.lease_until = max(self.lease_until, sent + self.shared.read_lease_ms)

    def _confirm_reads(self) -> None:
        """Answer the reads of the round in flight once a quorum confirmed it (Q2 meets every Q1)."""
        seq = self.round_seq
        if not seq:
            return
        acked, confirmed = self.acked_seq, 1
        for other in self.shared.others[self.index]:
            confirmed += acked[other] >= seq
        if confirmed < self.shared.q2:
            return
        reads, self.reads, self.round_seq = self.reads, [], 0
        answer, store, index = self.shared.answer, self.replica.store, self.index
        for attempt in reads:
            answer(index, attempt, store.get(attempt.op.key))
        if self.waiting:
            waiting, self.waiting = self.waiting, []
            self._read_round(waiting)

    def apply(self) -> None:
        """Apply committed entries to the store in log order; the leader answers their clients.

        A leader applies at once. A follower whose store nobody reads applies in batches: when
        its commit index reaches where it compacts (``shared.apply_span`` past its base), when it
        wins an election, and when the run ends (``settle``); its store is the same at each of
        those moments as if it had applied every entry at once. (A snapshot it installs, or
        amnesia, replaces the store whole.)
        """
        log, store, base = self.log, self.replica.store, self.base
        waiters = self.waiters if self.role == LEADER else None
        if not waiters:  # a follower (or a leader nobody waits on): only writes change the store
            for index in range(self.applied + 1, self.commit + 1):
                op = log[index - base][1]
                if op is not None and op.write:
                    store[op.key] = (index, op.client, op.id)
        else:
            answer, me = self.shared.answer, self.index
            for index in range(self.applied + 1, self.commit + 1):
                op = log[index - base][1]
                if op is None:
                    continue
                if op.write:
                    store[op.key] = version = (index, op.client, op.id)
                else:
                    version = store.get(op.key)
                attempt = waiters.pop(op.id, None)
                if attempt is not None:
                    answer(me, attempt, version)
        self.applied = self.commit
        if self.applied - self.base >= 2 * self.shared.snapshot_every:
            self.compact()

    # --- faults --------------------------------------------------------------------------------

    def crash(self) -> None:
        """Stop: volatile state is lost, timers are void (the network delivers nothing meanwhile)."""
        if self.role == LEADER:
            self._step_down(crashed=True)
        self.role = FOLLOWER
        self.leader = None
        self.votes = set()
        self.early.clear()
        self.token += 1
        self.beat += 1

    def recover(self, amnesia: bool) -> None:
        """Come back as a follower; with ``amnesia`` term, vote and log are gone (store emptied too)."""
        if amnesia:
            self.term, self.voted = 0, None
            self.log = [(0, None)]
            self.base = 0
            self.where = None
            self.commit = self.applied = 0
        self.heard = self.env.now
        if self.shared.read_mode == "lease":  # it may have heard a leader just before the crash
            self.quiet_until = self.env.now + self.shared.lease_ms
        self._arm()
