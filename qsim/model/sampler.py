"""Per-node load over time: every window, what each node received, its queue, its utilization.

It reads counters the model keeps anyway (messages delivered, busy time, the queue), once per
window, so it costs nothing per message.
"""

from __future__ import annotations

import simpy

from qsim.model.clock import call_later
from qsim.model.network import Network


class NodeSampler:
    """``records`` holds [window_start_ms, node, messages, queue_length, utilization] per window."""

    def __init__(self, env: simpy.Environment, network: Network, replicas: list, window_ms: float):
        self._env = env
        self._network = network
        self._replicas = replicas
        self._window = window_ms
        self._messages = [0] * len(replicas)
        self._busy = [0.0] * len(replicas)
        self.records: list[list] = []

    def start(self) -> None:
        call_later(self._env, self._window, self._sample)

    def _sample(self, _event) -> None:
        start = self._env.now - self._window
        for i, replica in enumerate(self._replicas):
            messages = self._network.received(i)
            busy = replica.busy_ms
            utilization = (busy - self._busy[i]) / (self._window * replica.servers)
            self.records.append([start, i, messages - self._messages[i], replica.queue_length, utilization])
            self._messages[i], self._busy[i] = messages, busy
        call_later(self._env, self._window, self._sample)
