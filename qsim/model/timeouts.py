"""Deadlines of operations, and the failure detector that learns from them."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import simpy

from qsim.model.clock import call_later


class Deadlines:
    """Calls ``expire(op)`` at ``op.deadline`` unless the op is done, with one pending timer.

    Deadlines must be added in increasing order (each queue serves one constant delay), so the
    earliest is always at the head of a FIFO. When the timer fires, every operation whose deadline
    has come is handed to ``passed(op)`` if given (the failure detector's hook) and expired unless
    done; then finished operations at the head that ``passed`` has nothing to learn from
    (``settled(op)``, or no ``passed`` at all) are dropped without waiting for their deadlines,
    and the timer is set for the first operation left. So the timer fires about once per timeout
    while operations finish in time, not once per operation.

    Finished operations are dropped from the whole queue whenever it has doubled since it was
    last pruned, on the same rule: so the queue holds the operations in flight, not every
    operation of the last timeout (a timeout longer than the run would otherwise keep every
    operation to the end).
    """

    _EPSILON_MS = 1e-9  # the timer's time may differ from the deadline in the last bit
    _MIN_PRUNE = 1024  # never prune a queue shorter than this

    def __init__(
        self,
        env: simpy.Environment,
        expire: Callable,
        passed: Callable | None = None,
        settled: Callable | None = None,
    ):
        self._env = env
        self._expire = expire
        self._passed = passed
        self._settled = settled
        self._pending: deque = deque()
        self._prune_at = self._MIN_PRUNE
        self._armed = False

    def add(self, op, deadline: float) -> None:
        """Watch ``op`` until ``deadline`` (ms)."""
        op.deadline = deadline
        pending = self._pending
        pending.append(op)
        if len(pending) > self._prune_at:
            self._prune()
        if not self._armed:
            self._arm(deadline)

    def _prune(self) -> None:
        """Forget the finished operations that nothing needs at their deadline (amortized O(1))."""
        pending, settled = self._pending, self._settled
        if self._passed is None:
            kept = [op for op in pending if not op.done]
        else:
            kept = [op for op in pending if not op.done or not settled(op)]
        # In place: an operation ending inside _fire's loop may start another one, and prune here.
        pending.clear()
        pending.extend(kept)
        self._prune_at = max(self._MIN_PRUNE, 2 * len(kept))

    def pending(self) -> list:
        """The operations still watched (done ones included)."""
        return list(self._pending)

    def _arm(self, at: float) -> None:
        self._armed = True
        call_later(self._env, max(at - self._env.now, 0.0), self._fire)

    def _fire(self, _event) -> None:
        self._armed = False
        pending, passed, settled = self._pending, self._passed, self._settled
        limit = self._env.now + self._EPSILON_MS
        while pending:
            op = pending[0]
            if op.deadline <= limit:
                pending.popleft()
                if passed is not None:
                    passed(op)
                if not op.done:
                    self._expire(op)
            elif op.done and (passed is None or settled(op)):
                pending.popleft()  # nothing left to do at its deadline: no timer for it
            else:
                break
        if pending:
            self._arm(pending[0].deadline)


class FailureDetector:
    """Suspects replicas that stay silent, per coordinating endpoint.

    When an operation's deadline passes, every replica it sent to that its coordinator has not
    heard from (any message) since the operation began is suspected for ``suspicion_ms``; it is
    trusted again when that time has passed. Knowledge is local: each coordinator endpoint (a
    node, or the clients of a region) suspects on its own.
    """

    def __init__(self, env: simpy.Environment, heard: list[list[float]], nodes: int, suspicion_ms: float):
        self._env = env
        self._heard = heard
        self._suspicion = suspicion_ms
        self._until = [[-math.inf] * nodes for _ in heard]  # [endpoint][node]
        self._last = [-math.inf] * len(heard)  # [endpoint]: when its last suspicion ends

    def check(self, op) -> None:
        """Suspect the targets of ``op`` that were silent since it began."""
        if not op.arrived:  # the request never reached its coordinator: it sent to no one
            return
        heard = self._heard[op.coordinator_endpoint]
        until = self._until[op.coordinator_endpoint]
        for node in op.targets:
            if heard[node] < op.begun:
                until[node] = max(until[node], self._env.now + self._suspicion)
                self._last[op.coordinator_endpoint] = max(self._last[op.coordinator_endpoint], until[node])

    def settled(self, op) -> bool:
        """True if checking ``op`` can no longer suspect anyone: every target was heard since it began."""
        if not op.arrived:
            return True
        heard = self._heard[op.coordinator_endpoint]
        return all(heard[node] >= op.begun for node in op.targets)

    def suspects(self, endpoint: int, node: int) -> bool:
        """Return True if ``endpoint`` currently suspects ``node``."""
        return self._until[endpoint][node] > self._env._now

    def suspects_any(self, endpoint: int) -> bool:
        """Return True if ``endpoint`` currently suspects some node (False: every check can be skipped)."""
        return self._last[endpoint] > self._env._now
