"""Wiring the leaderless protocol on the shared parts of a model."""

from __future__ import annotations

import simpy

from qsim.model.leaderless.coordinator import Coordinator
from qsim.model.leaderless.repair import AntiEntropy, HintedHandoff
from qsim.model.leaderless.ring import Ring
from qsim.model.network import Network
from qsim.model.protocol import Built
from qsim.model.recorder import Recorder
from qsim.model.timeouts import FailureDetector
from qsim.rng import RandomStreams
from qsim.scenario.schema import Scenario
from qsim.scenario.systems import uses_system


def build(
    env: simpy.Environment,
    scenario: Scenario,
    network: Network,
    replicas: list,
    recorder: Recorder,
    streams: RandomStreams,
    detecting: bool,
) -> Built:
    """Return the coordinator of ``scenario``'s leaderless protocol, and its periodic processes.

    Args:
        detecting: coordinators run a failure detector (faults, or a failover that needs one).
    """
    quorum, repair = scenario.quorum, scenario.repair
    nodes = scenario.cluster.nodes
    per_key = len(nodes) if uses_system(quorum) else quorum.n  # a quorum system's nodes hold every key
    ring = Ring(
        [n.name for n in nodes], scenario.cluster.vnodes, per_key, [n.region for n in nodes], quorum.replicas
    )
    detector = FailureDetector(env, network.heard, len(nodes), quorum.suspicion) if detecting else None
    coordinator = Coordinator(env, scenario, network, ring, replicas, recorder, streams, detector)
    for replica in replicas:
        replica.connect(coordinator)
    background = [coordinator.selector]
    if quorum.failover == "sloppy" and repair.hinted_handoff:
        background.append(HintedHandoff(env, network, replicas, repair.handoff_interval))
    if repair.anti_entropy is not None:
        background.append(AntiEntropy(env, network, replicas, ring, repair.anti_entropy.interval))
    return Built(coordinator, background)
