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


def system_report(scenario, read_fraction: float) -> str:
    """Return the analysis of ``scenario``'s quorum system at ``read_fraction``, as lines of text.

    Raises:
        QsimError: if the scenario has no quorum system to analyse (leader protocol, per-region r/w).
    """
    from qsim.analysis import quorum_load as ql
    from qsim.scenario.systems import node_availability, quorum_system

    system = quorum_system(scenario)
    n, reads, writes = system.n, system.reads, system.writes
    up = node_availability(scenario)[:n]
    strategies = {
        "optimal": ql.optimal_strategy(n, reads, writes, read_fraction),
        "uniform": ql.uniform_strategy(reads, writes),
    }
    loads = {name: ql.node_load(n, s, read_fraction) for name, s in strategies.items()}
    avail = ql.availability(n, reads, writes, up)
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
        f"{'strategy':14}{'load':>10}{'capacity':>10}",
        *(f"{name:14}{load.max():>10.4g}{1 / load.max():>10.4g}" for name, load in loads.items()),
        "",
        f"{'node':14}{'up':>10}{'load opt':>10}{'load unif':>10}",
        *(
            f"{name:14}{up[i]:>10.4g}{loads['optimal'][i]:>10.4g}{loads['uniform'][i]:>10.4g}"
            for i, name in enumerate(system.names)
        ),
    ]
    return "\n".join(lines)


def _prob(p: float, se: float) -> str:
    """A probability with 6 decimals, and its standard error when estimated."""
    return f"{p:.6f}" + (f"±{se:.1g}" if se else "")


def _nodes_up(up: tuple[float, ...]) -> str:
    """``, nodes up 0.99`` when every node has the same availability; per node otherwise (table)."""
    return f", nodes up {up[0]:g}" if len(set(up)) == 1 else ", nodes up as below"
