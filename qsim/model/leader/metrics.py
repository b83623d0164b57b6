"""What the leader protocol counts: elections, split votes, terms, leaders, time without a leader.

Time without a leader runs from the moment the serving leader stops serving to the first commit
by a new leader in its term (its no-op entry), as DESIGN.md defines it; the run starts without
one. A leader stops serving when it crashes, or, when it steps down or a newer leader commits
first, at the last moment it had heard from a replication quorum (so a leader cut off in a
minority stops serving when the cut began, give or take a heartbeat). ``leader_changes`` counts
the leaders that began serving, the first one included.
"""

from __future__ import annotations

MAX_INTERVALS = 1000  # intervals listed in the summary; totals count every one


class LeaderMetrics:
    """Counts of elections and leaders, and the intervals without a leader."""

    def __init__(self, last_quorum_ms=None):
        """``last_quorum_ms(node)``: when the leader ``node`` last heard from a replication quorum."""
        self._last_quorum_ms = last_quorum_ms if last_quorum_ms is not None else lambda node: 0.0
        self.election_terms: set[int] = set()  # terms in which some candidate stood
        self.leaders_by_term: dict[int, set[int]] = {}  # every node that won each term
        self.top_term = 0
        self.leader_changes = 0
        self._serving: tuple[int, int] | None = None  # (term, node) of the serving leader
        self._since = 0.0  # when it began serving, ms
        self._without_since: float | None = 0.0
        self.intervals: list[list[float]] = []
        self.interval_count = 0
        self.without_ms = 0.0

    def candidate(self, term: int) -> None:
        """A node stood for election in ``term``."""
        self.election_terms.add(term)
        self.top_term = max(self.top_term, term)

    def elected(self, term: int, node: int) -> None:
        """``node`` won ``term``."""
        self.leaders_by_term.setdefault(term, set()).add(node)

    def serving(self, term: int, node: int, now: float) -> None:
        """``node``, leader of ``term``, committed its first entry: it serves clients."""
        if self._serving is not None and self._serving[0] > term:
            return  # a newer leader already serves
        if self._serving is not None and self._serving != (term, node):
            last = self._last_quorum_ms(self._serving[1])
            self._without_since = max(min(last, now), self._since)  # taken over
        if self._serving != (term, node):
            self.leader_changes += 1
        self._serving = (term, node)
        if self._without_since is not None:
            self._close(now)
        self._since = now

    def stopped(self, node: int, at: float) -> None:
        """``node`` stopped serving at ``at`` (ms): it crashed, or stepped down."""
        if self._serving is not None and self._serving[1] == node:
            self._serving = None
            self._without_since = max(at, self._since)  # never before it began

    def _close(self, now: float) -> None:
        start, self._without_since = self._without_since, None
        self.without_ms += now - start
        self.interval_count += 1
        if len(self.intervals) < MAX_INTERVALS:
            self.intervals.append([start, now])

    def summary(self, now: float) -> dict:
        """The ``leader`` section of summary.json (an interval still open ends at ``now``)."""
        won = {term for term, nodes in self.leaders_by_term.items() if nodes}
        open_ms = now - self._without_since if self._without_since is not None else 0.0
        return {
            "elections": len(self.election_terms),
            "split_votes": len(self.election_terms - won),
            "terms": self.top_term,
            "leader_changes": self.leader_changes,
            "max_leaders_per_term": max((len(n) for n in self.leaders_by_term.values()), default=0),
            "time_without_leader_ms": {
                "total": self.without_ms + open_ms,
                "count": self.interval_count,
                "intervals": [list(pair) for pair in self.intervals],
                "open_since": self._without_since,  # null when a leader serves at the end
                "listed": len(self.intervals),  # at most MAX_INTERVALS
            },
        }
