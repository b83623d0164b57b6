"""Raft elections: randomized timeouts, RequestVote with the log up-to-date rule, pre-vote, leases.

A follower (or candidate) that has heard no leader for its election timeout (a fresh draw each
time it stands) stands for election: it moves to the next term, votes for itself and asks every
node. A node grants one vote per term, to a candidate whose log is at least as up to date as its
own (last term, then last index). ``election_quorum`` votes (Q1, itself included) win. With
``pre_vote`` a node first asks, without changing its term, whether it would win; only then does
it stand. With ``check_quorum`` a node that heard from its leader within the lease (the lower end
of the election timeout) ignores vote requests, as etcd does, so a node returning from a partition
cannot depose a working leader.
"""

from __future__ import annotations

from qsim.model.clock import call_later
from qsim.model.network import REQUEST_VOTE, VOTE

FOLLOWER, PRE_CANDIDATE, CANDIDATE, LEADER = range(4)
_EPSILON_MS = 1e-9


class Election:
    """The election half of a node (mixed into :class:`qsim.model.leader.node.Node`)."""

    __slots__ = ()

    def _arm(self) -> None:
        """(Re)start the election timer from the last time a leader or a vote was heard."""
        self.token += 1
        delay = max(self.heard + self.timeout - self.env.now, 0.0)
        call_later(self.env, delay, self._on_timer, self.token)

    def _on_timer(self, event) -> None:
        if event.value != self.token or self.role == LEADER:
            return
        due = self.heard + self.timeout
        if self.env.now < due - _EPSILON_MS:  # heard a leader since: wait on from then
            self._arm()
        elif self.shared.pre_vote:
            self._stand(pre=True)
        else:
            self._stand(pre=False)

    def _stand(self, pre: bool) -> None:
        """Stand for election (``pre``: ask whether one would win, term unchanged)."""
        if not pre:
            self.term = self.next_term()
            self.voted = self.index
            self.leader = None
            self.shared.metrics.candidate(self.term)
        self.role = PRE_CANDIDATE if pre else CANDIDATE
        self.votes = {self.index}
        self.heard = self.env.now
        self.timeout = self.shared.election_timeout[self.index]()
        self._arm()
        last = self.base + len(self.log) - 1
        request = (self.index, self.next_term() if pre else self.term, last, self.log[-1][0], pre)
        nodes = self.shared.nodes
        for other in self.shared.others[self.index]:
            self.send(other, REQUEST_VOTE, nodes[other].on_request_vote, request)
        self._count_votes(pre)

    def next_term(self) -> int:
        """The term this node stands in next: the next one, or with Q1 <= N/2 the next of its own.

        Two election quorums of a group meet only if 2 Q1 > N; below that, as Paxos ballots, each
        node stands only in the terms that are its index modulo N, so no two share a term.
        """
        count = len(self.shared.nodes)
        if not self.shared.unique_terms:
            return self.term + 1
        return self.term + 1 + (self.index - self.term - 1) % count

    def _count_votes(self, pre: bool) -> None:
        if len(self.votes) >= self.shared.q1:
            if pre:
                self._stand(pre=False)
            else:
                self._lead()

    def _in_lease(self) -> bool:
        """True if this node heard its leader within the lease, and so ignores vote requests."""
        return (
            self.shared.check_quorum
            and self.leader is not None
            and self.env.now - self.heard < self.shared.lease_ms
        )

    def on_request_vote(self, message) -> None:
        """A (pre-)candidate asks for a vote: ``arg`` (candidate, term, last index, last term, pre)."""
        candidate, term, last_index, last_term, pre = message.arg
        if self.role == LEADER and (pre or self.shared.check_quorum or term <= self.term):
            return  # a leader ignores it (the candidate hears the leader's heartbeats instead)
        if self._in_lease() or self.env.now < self.quiet_until:
            return  # a working leader is known (or may be: back from a crash): ignored
        mine = self.base + len(self.log) - 1
        current = (last_term, last_index) >= (self.log[-1][0], mine)
        if pre:
            granted = term > self.term and current
        else:
            if term > self.term:
                self._follow(term)
            granted = term == self.term and self.voted in (None, candidate) and current
            if granted:
                self.voted = candidate
                self.heard = self.env.now
        reply = (self.index, term if pre else self.term, granted, pre)
        self.send(candidate, VOTE, self.shared.nodes[candidate].on_vote, reply)

    def on_vote(self, message) -> None:
        """A vote, or a refusal: ``arg`` (voter, term, granted, pre)."""
        voter, term, granted, pre = message.arg
        if pre:
            if self.role == PRE_CANDIDATE and granted and term == self.next_term():
                self.votes.add(voter)
                self._count_votes(pre=True)
            return
        if term > self.term:
            self._follow(term)
        elif self.role == CANDIDATE and granted and term == self.term:
            self.votes.add(voter)
            self._count_votes(pre=False)

    def _follow(self, term: int) -> None:
        """Become a follower in ``term`` (a newer term forgets the vote of the old one)."""
        was_leader = self.role == LEADER
        if was_leader:
            self._step_down()
        if term > self.term:
            self.term = term
            self.voted = None
            self.leader = None
            self.early.clear()
        self.role = FOLLOWER
        self.votes = set()
        if was_leader:
            self.heard = self.env.now
            self._arm()
