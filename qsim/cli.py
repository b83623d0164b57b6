"""The ``qsim`` command: parses, calls the library, and reports qsim's own errors cleanly."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from qsim.errors import QsimError, ScenarioError
from qsim.scenario import load_scenario


def _scenario_error(exc: ScenarioError) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qsim")
def main() -> None:
    """qsim: a discrete-event simulator of quorum-replicated storage.

    It runs a YAML scenario (cluster, network, quorum protocol, workload) on SimPy in simulated
    time and reports latency, availability and staleness.
    """


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Replace the scenario's seed (>= 0).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the results [default: results/<scenario name>/<run id>].",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a scenario field, validated like the file (repeatable), e.g. --set quorum.r=2.",
)
@click.option("--no-plots", is_flag=True, help="Do not draw the plots.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the results folder.")
def run(
    scenario: Path,
    seed: int | None,
    out: Path | None,
    overrides: tuple[str, ...],
    no_plots: bool,
    quiet: bool,
) -> None:
    """Run SCENARIO once and write its results folder."""
    from qsim.engine import simulate
    from qsim.report import terminal_table
    from qsim.results import write_run

    try:
        loaded = load_scenario(scenario, overrides)
    except ScenarioError as exc:
        raise _scenario_error(exc) from None
    result = simulate(loaded, seed)
    try:
        folder = write_run(result, out, plots_too=not no_plots)
    except OSError as exc:
        raise click.ClickException(f"cannot write the results: {exc}") from None
    click.echo(str(folder) if quiet else terminal_table(result.summary, result.manifest, str(folder)))
    if result.error:
        raise click.ClickException(f"the run failed: {result.error} (manifest written to {folder})")


@main.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a field before validating."
)
def validate(scenarios: tuple[Path, ...], overrides: tuple[str, ...]) -> None:
    """Check each SCENARIO and print OK or every problem found; exit 1 if any is invalid."""
    failed = 0
    for path in scenarios:
        try:
            load_scenario(path, overrides)
        except QsimError as exc:
            failed += 1
            click.echo(str(exc), err=True)
        else:
            click.echo(f"{path}: OK")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
