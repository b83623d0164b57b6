"""The fault injector: applies the scenario's fault timeline to the model and records what happened.

Each fault kind acts through one mechanism (see :mod:`qsim.scenario.faults` for the meanings): a
crash takes the node's endpoint down in the network, empties its queue and orphans the operations
it coordinates; a partition cuts directed links; a degradation swaps route entries; a slowdown
scales the replica's service times; clock skew offsets the coordinator's clock of an endpoint.
"""

from __future__ import annotations

import json

import simpy

from qsim.distributions import spec_sampler
from qsim.model.clock import call_later
from qsim.model.network import Network
from qsim.model.protocol import Protocol
from qsim.rng import RandomStreams
from qsim.scenario.faults import LEADER, Partition, RandomCrashes, fault_kind, targets_leader
from qsim.scenario.schema import Scenario

_NAN = float("nan")


class FaultInjector:
    """Schedules every fault; ``records`` holds [fault_id, kind, target, start_ms, end_ms, params]."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        network: Network,
        replicas: list,
        coordinator: Protocol,
        streams: RandomStreams,
    ):
        self._env = env
        self._scenario = scenario
        self._network = network
        self._replicas = replicas
        self._coordinator = coordinator
        self._streams = streams
        nodes = scenario.cluster.nodes
        self._names = [node.name for node in nodes]
        self._node = {node.name: i for i, node in enumerate(nodes)}
        self._region_nodes = {
            r: [i for i, n in enumerate(nodes) if n.region == r] for r in scenario.cluster.regions
        }
        self._down = [0] * len(nodes)  # overlapping crashes of one node count up
        self._amnesia = [False] * len(nodes)
        self._next_id = len(scenario.faults)
        self.records: list[list] = []

    def start(self) -> None:
        """Schedule the timeline."""
        for fault_id, fault in enumerate(self._scenario.faults):
            if isinstance(fault, RandomCrashes):
                self._start_random(fault_id, fault)
            elif fault.at == 0:  # now, so that the operations issued at time 0 see it
                self._begin(fault_id, fault)
            else:
                call_later(self._env, fault.at, self._begin_event, (fault_id, fault))

    # --- scheduled faults ----------------------------------------------------------------------

    def _begin_event(self, event) -> None:
        self._begin(*event.value)

    def _begin(self, fault_id: int, fault) -> None:
        kind = fault_kind(fault)
        extra = {}
        if targets_leader(fault):
            leader = self._coordinator.leading()
            if leader is None:  # nobody leads now: the fault does nothing
                record = self._record(fault_id, kind, self._target_text(fault, kind), fault, {LEADER: None})
                record[4] = self._env.now
                return
            extra = {LEADER: self._names[leader]}  # the target names the node; params say it led
            fault = _on_leader(fault, kind, self._names[leader])
        record = self._record(fault_id, kind, self._target_text(fault, kind), fault, extra)
        undo = getattr(self, f"_apply_{kind}")(fault_id, fault)
        if fault.end is not None:
            call_later(self._env, fault.end - self._env.now, self._end, (record, undo))

    def _end(self, event) -> None:
        record, undo = event.value
        undo()
        record[4] = self._env.now

    def _record(self, fault_id: int, kind: str, target: str, fault, extra: dict | None = None) -> list:
        params = fault.model_dump(mode="json", exclude={"at", kind}) if fault is not None else {}
        params.update(extra or {})
        record = [fault_id, kind, target, self._env.now, _NAN, json.dumps(params, sort_keys=True)]
        self.records.append(record)
        return record

    def _apply_crash(self, _fault_id, fault):
        node = self._node[fault.crash]
        self._crash(node, fault.amnesia)
        return lambda: self._recover(node)

    def _apply_partition(self, _fault_id, fault):
        pairs = self._partition_pairs(fault)
        self._network.cut(pairs, +1)
        return lambda: self._network.cut(pairs, -1)

    def _apply_degrade(self, fault_id, fault):
        pairs = self._degraded_pairs(fault.degrade)
        extra = None
        if fault.latency is not None:
            extra = spec_sampler(fault.latency, self._streams.generator(f"faults.{fault_id}.latency")).draw
        self._network.degrade(fault_id, pairs, extra, fault.loss)
        return lambda: self._network.undegrade(fault_id)

    def _apply_slow(self, _fault_id, fault):
        replica = self._replicas[self._node[fault.slow]]
        replica.slowdown *= fault.factor

        def undo():
            replica.slowdown /= fault.factor

        return undo

    def _apply_clock_skew(self, _fault_id, fault):
        endpoints = self._endpoints(fault.clock_skew)
        offsets = self._coordinator.clock_offset

        def shift(by: float) -> None:
            for endpoint in endpoints:
                offsets[endpoint] += by

        shift(fault.offset)
        return lambda: shift(-fault.offset)

    # --- crashes -------------------------------------------------------------------------------

    def _crash(self, node: int, amnesia: bool) -> None:
        self._down[node] += 1
        self._amnesia[node] |= amnesia
        if self._down[node] == 1:
            self._network.crash(node)
            self._replicas[node].crash()
            self._coordinator.orphan(node)

    def _recover(self, node: int) -> None:
        self._down[node] -= 1
        if self._down[node] == 0:
            self._network.recover(node)
            self._replicas[node].recover(self._amnesia[node])
            self._coordinator.recovered(node, self._amnesia[node])
            self._amnesia[node] = False

    def _start_random(self, fault_id: int, fault: RandomCrashes) -> None:
        chosen = (
            range(len(self._names)) if fault.random_crashes == "all" else self._nodes_of(fault.random_crashes)
        )
        chosen = sorted(set(chosen))
        if fault.correlated == "region":
            regions = self._scenario.cluster.nodes
            units = [[i for i in chosen if regions[i].region == r] for r in self._region_nodes]
            units = [unit for unit in units if unit]
        else:
            units = [[i] for i in chosen]
        for u, unit in enumerate(units):
            rng = self._streams.generator(f"faults.{fault_id}.unit{u}")
            unit_state = (fault_id, fault, unit, spec_sampler(fault.mttf, rng), spec_sampler(fault.mttr, rng))
            call_later(self._env, fault.at + unit_state[3](), self._random_crash, unit_state)

    def _random_crash(self, event) -> None:
        fault_id, fault, unit, _, mttr = event.value
        if fault.until is not None and self._env.now >= fault.until:
            return
        record = self._record(self._next_id, "crash", ",".join(self._names[i] for i in unit), None)
        record[5] = json.dumps({"random_crashes": fault_id, "amnesia": fault.amnesia})
        self._next_id += 1
        for node in unit:
            self._crash(node, fault.amnesia)
        call_later(self._env, mttr(), self._random_recover, (record, event.value))

    def _random_recover(self, event) -> None:
        record, unit_state = event.value
        for node in unit_state[2]:
            self._recover(node)
        record[4] = self._env.now
        call_later(self._env, unit_state[3](), self._random_crash, unit_state)

    # --- names to endpoints --------------------------------------------------------------------

    def _nodes_of(self, names) -> list[int]:
        found = []
        for name in names:
            found += [self._node[name]] if name in self._node else self._region_nodes[name]
        return found

    def _endpoints(self, name: str) -> list[int]:
        """A node's endpoint, or a region's nodes and its clients' endpoint."""
        if name in self._node:
            return [self._node[name]]
        return [*self._region_nodes[name], self._network.client_endpoint(name)]

    def _partition_pairs(self, fault: Partition) -> list[tuple[int, int]]:
        count = len(self._names)
        majority = count // 2 + 1
        named = {
            e for g in fault.partition if not isinstance(g, str) for name in g for e in self._endpoints(name)
        }
        groups, grouped_nodes = [], set()
        for group in fault.partition:
            if group == "majority":  # a node a group names (the leader, say) is in that group only
                members = set(range(majority)) - named
            elif group == "minority":
                members = set(range(majority, count)) - named
            else:
                members = {e for name in group for e in self._endpoints(name)}
            grouped_nodes |= {m for m in members if m < count}
            groups.append(members)
        rest = set(range(count)) - grouped_nodes
        if rest:
            groups.append(rest)
        return [
            (a, b)
            for i, first in enumerate(groups)
            for j, second in enumerate(groups)
            if i != j and (not fault.one_way or i == 0)
            for a in first
            for b in second
        ]

    def _degraded_pairs(self, target) -> list[tuple[int, int]]:
        size = len(self._network.endpoint_regions)
        if target == "all":
            return [(a, b) for a in range(size) for b in range(size) if a != b]
        if isinstance(target, str):
            touched = set(self._endpoints(target))
            return [
                (a, b) for a in range(size) for b in range(size) if a != b and (a in touched or b in touched)
            ]
        first, second = (set(self._endpoints(name)) for name in target)
        return [(a, b) for a in first for b in second if a != b] + [
            (b, a) for a in first for b in second if a != b
        ]

    def _target_text(self, fault, kind: str) -> str:
        """The fault's target as the faults table shows it."""
        target = getattr(fault, kind)
        if kind == "partition":
            return " | ".join(g if isinstance(g, str) else ",".join(g) for g in target)
        return target if isinstance(target, str) else "-".join(target)


def _on_leader(fault, kind: str, name: str):
    """``fault`` with ``leader`` replaced by the leading node's ``name`` (in a partition, its group only)."""
    target = getattr(fault, kind)
    if kind == "partition":
        groups = tuple(
            g
            if isinstance(g, str)
            else (
                tuple(dict.fromkeys(name if n == LEADER else n for n in g))
                if LEADER in g
                else tuple(n for n in g if n != name)
            )
            for g in target
        )
        return fault.model_copy(update={kind: tuple(g for g in groups if g)})  # a group of the leader alone
    if isinstance(target, str):
        return fault.model_copy(update={kind: name})
    return fault.model_copy(update={kind: tuple(name if n == LEADER else n for n in target)})
