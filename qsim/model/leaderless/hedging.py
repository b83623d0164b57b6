"""When a hedged (speculative) request goes out: a fixed delay, or a percentile of recent latencies."""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from qsim.scenario.schema import Hedge


class Hedger:
    """The delay before an operation still short of its quorum asks one more replica.

    With ``after: pNN`` it is that percentile of the last 1000 quorum latencies of the kind (read
    or write), recomputed every 50 operations; before the first 50 there is no hedging.
    """

    def __init__(self, hedge: Hedge):
        self.writes = hedge.writes  # hedge writes too (reads always)
        self._fixed = None if hedge.percentile is not None else float(hedge.after)
        self._percentile = hedge.percentile
        self._recent = {True: deque(maxlen=1000), False: deque(maxlen=1000)}
        self._observed = {True: 0, False: 0}
        self._delay = {True: math.inf, False: math.inf}

    def delay(self, write: bool) -> float:
        """Milliseconds to wait before hedging (infinite: do not hedge)."""
        return self._fixed if self._fixed is not None else self._delay[write]

    def observe(self, write: bool, latency_ms: float) -> None:
        """Record how long an operation took to reach its quorum."""
        if self._fixed is not None:
            return
        recent = self._recent[write]
        recent.append(latency_ms)
        self._observed[write] += 1
        if self._observed[write] % 50 == 0:  # not len(recent): it stops growing at its maxlen
            self._delay[write] = float(np.percentile(recent, self._percentile))
