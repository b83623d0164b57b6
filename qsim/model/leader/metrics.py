"""What the leader protocol counts: elections, terms, leaders, time without a leader, failovers, load.

Time without a leader runs from the moment the serving leader stops serving to the first commit
by a new leader in its term (its no-op entry), as DESIGN.md defines it; the run starts without
one. A leader stops serving when it crashes, or, when it steps down or a newer leader commits
first, at the last moment it had heard from a replication quorum (so a leader cut off in a
minority stops serving when the cut began, give or take a heartbeat). Each interval has a cause:
``start`` (the run's first election), ``crash`` (the serving leader crashed), ``step_down`` (it
stepped down: a newer term, or check quorum) or ``takeover`` (a newer leader served first).

What clients saw of an interval: from the last write acknowledged to a client before the new
leader served (``clients_from_ms``) to the first one after (``clients_to_ms``): the gap in
acknowledged writes that spans the failover. ``leader_changes`` counts the leaders that began
serving, the first one included. A tenure is a leader's time serving, [from_ms, to_ms).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

MAX_INTERVALS = 1000  # intervals and tenures listed in the summary; totals and statistics count every one
START, CRASH, STEP_DOWN, TAKEOVER = "start", "crash", "step_down", "takeover"


class LeaderMetrics:
    """Counts of elections and leaders, the intervals without a leader, and each role's load.

    Args:
        last_quorum_ms: when the leader ``node`` last heard from a replication quorum, ms.
        handled: messages ``node`` has sent and received so far (for the load while leading).
    """

    def __init__(
        self,
        last_quorum_ms: Callable[[int], float] | None = None,
        handled: Callable[[int], int] | None = None,
        nodes: int = 1,
    ):
        self._last_quorum_ms = last_quorum_ms if last_quorum_ms is not None else lambda node: 0.0
        self._handled = handled if handled is not None else lambda node: 0
        self._nodes = nodes
        self.election_terms: set[int] = set()  # terms in which some candidate stood
        self.leaders_by_term: dict[int, set[int]] = {}  # every node that won each term
        self.top_term = 0
        self.leader_changes = 0
        self._serving: tuple[int, int] | None = None  # (term, node) of the serving leader
        self._since = 0.0  # when it began serving, ms
        self._without_since: float | None = 0.0
        self._cause = START
        self.intervals: list[dict] = []
        self.interval_count = 0
        self.without_ms = 0.0
        self.durations: dict[str, list[float]] = {cause: [] for cause in (START, CRASH, STEP_DOWN, TAKEOVER)}
        self.client_gaps_ms: list[float] = []
        self.awaiting: list[dict] = []  # closed intervals waiting for the next acknowledged write
        self.last_write_ms: float | None = None
        self.tenures: list[list] = []  # [term, node, from_ms, to_ms (None: serving)]
        self._tenure: list | None = None
        self._handled_at: list[int] = []  # each node's messages when the tenure began
        self.load = [0, 0.0, 0, 0.0]  # messages and ms leading; messages and node-ms following

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
            self._cause = TAKEOVER
            self._end_tenure(self._without_since)
        if self._serving != (term, node):
            self.leader_changes += 1
            self._begin_tenure(term, node, now)
        self._serving = (term, node)
        if self._without_since is not None:
            self._close(now)
        self._since = now

    def stopped(self, node: int, at: float, crashed: bool = False) -> None:
        """``node`` stopped serving at ``at`` (ms): it ``crashed``, or stepped down."""
        if self._serving is not None and self._serving[1] == node:
            self._serving = None
            self._without_since = max(at, self._since)  # never before it began
            self._cause = CRASH if crashed else STEP_DOWN
            self._end_tenure(self._without_since)

    def write_acknowledged(self, now: float) -> None:
        """A client had a write acknowledged at ``now`` (called only while :attr:`awaiting` holds some)."""
        for interval in self.awaiting:
            interval["clients_to_ms"] = now
            if interval["clients_from_ms"] is not None:
                self.client_gaps_ms.append(now - interval["clients_from_ms"])
        self.awaiting = []

    def _close(self, now: float) -> None:
        start, self._without_since = self._without_since, None
        self.without_ms += now - start
        self.interval_count += 1
        self.durations[self._cause].append(now - start)
        interval = {"from_ms": start, "to_ms": now, "cause": self._cause,
                    "clients_from_ms": self.last_write_ms, "clients_to_ms": None}  # fmt: skip
        self.awaiting.append(interval)
        if len(self.intervals) < MAX_INTERVALS:
            self.intervals.append(interval)

    def _begin_tenure(self, term: int, node: int, now: float) -> None:
        self._tenure = [term, node, now, None]
        if len(self.tenures) < MAX_INTERVALS:
            self.tenures.append(self._tenure)
        self._handled_at = [self._handled(n) for n in range(self._nodes)]

    def _end_tenure(self, at: float) -> None:
        tenure, self._tenure = self._tenure, None
        if tenure is None:
            return
        tenure[3] = at
        self.load = self._with_tenure(tenure, at)

    def _with_tenure(self, tenure: list, at: float) -> list:
        """:attr:`load` with the messages each role handled during ``tenure`` (to ``at``) added."""
        node, span = tenure[1], max(at - tenure[2], 0.0)
        handled = [self._handled(n) - before for n, before in enumerate(self._handled_at)]
        added = (handled[node], span, sum(handled) - handled[node], span * (self._nodes - 1))
        return [total + more for total, more in zip(self.load, added, strict=True)]

    def summary(self, now: float, names: list[str] | None = None) -> dict:
        """The ``leader`` section of summary.json (an interval still open ends at ``now``)."""
        # The load of a tenure still going on counts up to now.
        loaded = self._with_tenure(self._tenure, now) if self._tenure is not None else self.load
        won = {term for term, nodes in self.leaders_by_term.items() if nodes}
        open_ms = now - self._without_since if self._without_since is not None else 0.0
        name = (lambda n: names[n]) if names is not None else (lambda n: n)
        after_leader = [d for cause in (CRASH, STEP_DOWN, TAKEOVER) for d in self.durations[cause]]
        closed = [d for durations in self.durations.values() for d in durations]
        return {
            "elections": len(self.election_terms),
            "split_votes": len(self.election_terms - won),
            "terms": self.top_term,
            "leader_changes": self.leader_changes,
            "max_leaders_per_term": max((len(n) for n in self.leaders_by_term.values()), default=0),
            "time_without_leader_ms": {
                "total": self.without_ms + open_ms,
                "count": self.interval_count,
                "intervals": [dict(interval) for interval in self.intervals],
                "open_since": self._without_since,  # null when a leader serves at the end
                "longest": max([*closed, open_ms], default=0.0),  # the open one (to now) included
                "listed": len(self.intervals),  # at most MAX_INTERVALS
            },
            "failover_ms": duration_stats(after_leader),
            "crash_to_leader_ms": duration_stats(self.durations[CRASH]),
            "client_write_gap_ms": duration_stats(self.client_gaps_ms),
            "tenures": [
                {"term": t, "node": name(n), "from_ms": start, "to_ms": end}
                for t, n, start, end in self.tenures
            ],
            "load": _load(loaded),
        }


def duration_stats(values: list[float]) -> dict:
    """Count, mean, p50, p90, max (ms) of closed intervals (None when there are none)."""
    if not values:
        return {"count": 0, "mean": None, "p50": None, "p90": None, "max": None}
    array = np.asarray(values, dtype=float)
    p50, p90 = np.percentile(array, [50, 90])
    return {"count": len(values), "mean": float(array.mean()), "p50": float(p50), "p90": float(p90),
            "max": float(array.max())}  # fmt: skip


def _load(load: list) -> dict:
    """Messages per second a leader and a follower handled (sent and received), while a leader served."""
    leading = load[0] / load[1] * 1000.0 if load[1] > 0 else None
    following = load[2] / load[3] * 1000.0 if load[3] > 0 else None
    return {
        "leader_msgs_per_s": leading,
        "follower_msgs_per_s": following,
        "ratio": leading / following if leading is not None and following else None,
    }
