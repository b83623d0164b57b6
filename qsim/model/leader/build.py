"""Wiring the leader protocol on the shared parts of a model."""

from __future__ import annotations

import simpy

from qsim.model.leader.protocol import LeaderProtocol
from qsim.model.network import Network
from qsim.model.protocol import Built
from qsim.model.recorder import Recorder
from qsim.rng import RandomStreams
from qsim.scenario.schema import Scenario


def build(
    env: simpy.Environment,
    scenario: Scenario,
    network: Network,
    replicas: list,
    recorder: Recorder,
    streams: RandomStreams,
    detecting: bool,
) -> Built:
    """Return the leader protocol of ``scenario``; its nodes' timers start with the model.

    Args:
        detecting: unused (the protocol detects failures by its own timeouts).
    """
    protocol = LeaderProtocol(env, scenario, network, replicas, recorder, streams)
    return Built(protocol, [protocol])
