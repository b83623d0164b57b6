"""Warnings about valid scenarios that are probably not what was meant; they never stop a run.

The rules, with N replicas per key and R, W the replies each read and write waits for:

- **No failure tolerated**: R = N (or W = N) means one replica that is down or partitioned away
  stops every read (or write) of its keys.
- **Oversized**: R + W > N + 1. Every read quorum already meets every write quorum when
  R + W = N + 1, so a larger sum buys no consistency; it only costs latency and availability.
- **Hedging that does nothing**: ``hedge`` with fan-out ``all`` (every replica is asked at once,
  so there is nobody left to ask).

Only counted consistency (numbers, ``one``, ``quorum``, ``majority``, ``all``) is checked; the
per-region levels (``local_quorum`` ...) are counted at run time.

Settings that do nothing:

- ``quorum.shrink`` other than ``majority`` with a failover other than ``shrink``.
- A fault whose ``at`` is at or after ``duration`` (except in probe runs, which simulate past
  ``duration`` until their trials are done): no operation is issued after it starts.
- An empty partition group: it holds no node, so it cuts nothing off.
- Settings of one protocol given to the other (``quorum.leader`` with ``leaderless``; R, W, fan-out,
  selection, hedging, failover and repair with ``leader``): see :mod:`qsim.scenario.leader`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qsim.scenario.leader import protocol_warnings

if TYPE_CHECKING:
    from qsim.scenario.schema import Scenario


def consistency_warnings(scenario: Scenario) -> list[str]:
    """Return ``path: message`` lines for the warnings that apply to ``scenario`` (see the module)."""
    if scenario.quorum.protocol == "leader":  # R, W and N mean nothing to it
        return protocol_warnings(scenario) + _idle_setting_warnings(scenario)
    return _quorum_warnings(scenario) + protocol_warnings(scenario) + _idle_setting_warnings(scenario)


def _quorum_warnings(scenario: Scenario) -> list[str]:
    quorum = scenario.quorum
    n, r, w = quorum.n, quorum.r, quorum.w
    found = [
        f"quorum.{field}: {field.upper()} = N = {n}: one unavailable replica stops every {op} of its "
        f"keys (no failure tolerated)"
        + (f"; {field.upper()} = {n - 1} or less tolerates one" if n > 1 else "")
        for field, value, op in (("r", r, "read"), ("w", w, "write"))
        if value == n
    ]
    if isinstance(r, int) and isinstance(w, int) and r + w > n + 1:
        found.append(
            f"quorum.r, quorum.w: R + W = {r + w} > N + 1 = {n + 1}: oversized (R + W = N + 1 already "
            "makes read and write quorums meet; a smaller R or W gives that guarantee, faster)"
        )
    hedge = quorum.hedge
    if (
        hedge is not None
        and quorum.read_fanout == "all"
        and not (hedge.writes and quorum.write_fanout == "quorum")
    ):
        found.append(
            "quorum.hedge: with read_fanout: all every replica is asked at once, so no request is "
            "ever hedged; hedging needs read_fanout: quorum (or writes: true with write_fanout: quorum)"
        )
    return found


def _idle_setting_warnings(scenario: Scenario) -> list[str]:
    """Settings that change nothing in this scenario."""
    quorum = scenario.quorum
    found = []
    if quorum.shrink != "majority" and quorum.failover != "shrink":
        found.append(
            f"quorum.shrink: {quorum.shrink} does nothing with failover: {quorum.failover} "
            "(it applies to failover: shrink only)"
        )
    probe = scenario.workload.arrival.type == "probe"
    for i, fault in enumerate(scenario.faults):
        if not probe and fault.at >= scenario.duration:
            found.append(
                f"faults.{i}.at: {fault.at:g} ms is not before duration ({scenario.duration:g} ms): no "
                "operation is issued after the fault starts, so it changes nothing"
            )
        found += [
            f"faults.{i}.partition.{g}: an empty group holds no node, so it cuts nothing off"
            for g, group in enumerate(getattr(fault, "partition", ()))
            if group == ()
        ]
    return found
