"""``qsim analyze``: a scenario's quorum system on paper (resilience, load, capacity, availability).

The numbers come from :mod:`qsim.analysis.quorum_load`; a notebook gets them with
``quorum_system(scenario)`` (:mod:`qsim.scenario.systems`) and the functions used below.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--read-fraction",
    type=click.FloatRange(0, 1),
    default=None,
    metavar="F",
    help="The share of operations that read (default: the workload's read_fraction).",
)
@click.option(
    "--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a field of the scenario."
)
def analyze(scenario: Path, read_fraction: float | None, overrides: tuple[str, ...]) -> None:
    """Analyse SCENARIO's quorum system on paper, without simulating it.

    Prints the system, its read and write resilience (failures it survives), the load and capacity
    of the optimal strategy (by linear programming) and of the uniform one at the read fraction,
    each node's load, and the read and write availability for independent node failures: each node
    up a fraction mttf / (mttf + mttr) of an exponential random_crashes fault, else 0.99.
    A threshold scenario (quorum.n/r/w) is analysed as any r (w) of the first n nodes.
    """
    from qsim.scenario import load_scenario

    loaded = load_scenario(scenario, overrides)
    fraction = loaded.workload.read_fraction if read_fraction is None else read_fraction
    click.echo(system_report(loaded, fraction))


SHORT = {"optimal": "opt", "uniform": "unif"}  # column headings of the node table


def system_report(scenario, read_fraction: float) -> str:
    """Return the analysis of ``scenario``'s quorum system at ``read_fraction``, as lines of text.

    When every node has a service time and bounded concurrency, each node's capacity (requests per
    second) weighs its load, and capacities are in operations per second; else load is the fraction
    of operations a node serves and capacity its inverse.

    Raises:
        QsimError: if the scenario has no quorum system to analyse (leader protocol, per-region r/w).
    """
    from qsim.analysis import quorum_load as ql
    from qsim.scenario.systems import node_availability, node_capacities, quorum_system

    system = quorum_system(scenario)
    n, reads, writes = system.n, system.reads, system.writes
    up = node_availability(scenario)[:n]
    capacities = node_capacities(scenario)
    capacities = capacities[:n] if capacities is not None else None
    f = scenario.quorum.system.f if scenario.quorum.system is not None else 0
    strategies = {"optimal": ql.optimal_strategy(n, reads, writes, read_fraction, capacities)}
    if f:
        strategies[f"opt f={f}"] = ql.optimal_strategy(n, reads, writes, read_fraction, capacities, f)
    strategies["uniform"] = ql.uniform_strategy(reads, writes)
    loads = {name: ql.node_load(n, s, read_fraction) for name, s in strategies.items()}
    limits = {name: ql.system_load(n, s, read_fraction, capacities) for name, s in strategies.items()}
    avail = ql.availability(n, reads, writes, up)
    unit = "ops/s" if capacities is not None else "1/load"
    lines = [
        f"system: {system.describe()}",
        f"write quorums meet each other: {'yes' if system.writes_intersect() else 'no'}",
        f"read fraction: {read_fraction:g}",
        "",
        f"{'':14}{'read':>10}{'write':>10}",
        f"{'resilience':14}{ql.resilience(n, reads):>10}{ql.resilience(n, writes):>10}",
        f"{'availability':14}{_prob(avail.read, avail.read_se):>10}{_prob(avail.write, avail.write_se):>10}"
        + f"  ({avail.method}{_nodes_up(up)})",
        "",
        f"{'strategy':14}{'load':>10}{'capacity':>12}  ({unit})",
        *(f"{name:14}{loads[name].max():>10.4g}{1 / limits[name]:>12.6g}" for name in strategies),
        "",
        f"{'node':14}{'up':>10}"
        + "".join(f"{'load ' + SHORT.get(name, name):>14}" for name in strategies)
        + (f"{'capacity':>11}" if capacities is not None else ""),
        *(
            f"{name:14}{up[i]:>10.4g}"
            + "".join(f"{loads[s][i]:>14.4g}" for s in strategies)
            + (f"{capacities[i]:>11.6g}" if capacities is not None else "")
            for i, name in enumerate(system.names)
        ),
    ]
    if capacities is not None:
        lines.append("(capacity of a node: concurrency x 1000 / mean service time, requests/s)")
    return "\n".join(lines)


def _prob(p: float, se: float) -> str:
    """A probability with 6 decimals, and its standard error when estimated."""
    return f"{p:.6f}" + (f"±{se:.1g}" if se else "")


def _nodes_up(up: tuple[float, ...]) -> str:
    """``, nodes up 0.99`` when every node has the same availability; per node otherwise (table)."""
    return f", nodes up {up[0]:g}" if len(set(up)) == 1 else ", nodes up as below"
