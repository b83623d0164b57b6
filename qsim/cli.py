"""The ``qsim`` command: parses, calls the library, and reports qsim's own errors cleanly."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from qsim.cli_analyze import analyze
from qsim.cli_trace import TRACE_AROUND_N, TRACE_EVERY_N, trace_count, trace_focus, traced_words, warn_crowded
from qsim.errors import QsimError, ScenarioError
from qsim.scenario import Scenario, consistency_warnings, load_scenario, load_scenario_given, written_yaml
from qsim.scenario.limits import CHUNK_OPS, MAX_SEED


class _Main(click.Group):
    """The command group; any qsim error that reaches it, from any command, is printed as a message."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except QsimError as exc:
            raise click.ClickException(str(exc)) from None


def _out_given(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    # An empty --out (an unset shell variable) would otherwise mean the current folder.
    if value is not None and not value.strip():
        raise click.BadParameter("an empty path; name where to write", ctx, param)
    return None if value is None else Path(value)


def _warn(scenarios: list[Scenario], source: object) -> None:
    """Print each distinct warning about ``scenarios`` once, to stderr; the exit status is unchanged."""
    lines = dict.fromkeys(line for scenario in scenarios for line in consistency_warnings(scenario))
    for line in lines:
        click.echo(f"{source}: warning: {line}", err=True)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qsim")
def main() -> None:
    """qsim: a discrete-event simulator of quorum-replicated storage.

    It runs a YAML scenario (cluster, network, quorum protocol, workload) on SimPy in simulated
    time and reports latency, availability and staleness.
    """


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=None,
    help="Replace the scenario's seed (0 to 2^63-1).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    callback=_out_given,
    help="Folder for the results: new, empty, or an earlier run's [default: results/<name>/<run id>].",
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
@click.option(
    "--engine",
    type=click.Choice(["des", "montecarlo"]),
    default="des",
    show_default=True,
    help="des: the discrete-event simulator; montecarlo: the PBS WARS model (probe scenarios only).",
)
@click.option(
    "--trace-messages",
    type=int,  # 0 and less are refused by trace_count, saying why
    default=None,
    metavar="N",
    help="Record every message of N operations, 1 or more (the first N, or N around --trace-around), "
    "and draw their sequence diagram, sequence.png (also with --no-plots).",
)
@click.option(
    "--trace-around",
    default=None,
    callback=trace_focus,
    metavar="KIND|OP_ID",
    help="Trace the operations around the first stale read (stale), failed operation (failed), "
    "consistency anomaly of a kind (nonlinearizable, read-your-writes, monotonic-reads, monotonic-writes, "
    "writes-follow-reads; the diagram outlines its operations and tells why), the first of each kind "
    f"(anomalies), or operation OP_ID [default N: {TRACE_AROUND_N}; {TRACE_EVERY_N} for anomalies]. "
    "Runs the scenario twice: untraced to find them, then traced.",
)
@click.option(
    "--chunk-ops",
    type=click.IntRange(1000, 1 << 26),
    default=CHUNK_OPS,
    show_default=True,
    metavar="N",
    help="Operations held in memory at a time: a longer run streams its history to disk and analyses "
    "it N operations at a time (same results). Lower it to use less memory. Traced runs keep their "
    "history in memory.",
)
@click.option(
    "--ops-table",
    is_flag=True,
    help="--engine montecarlo: also write ops.parquet, one row per write and read of each trial "
    "(the summary and plots need none; several times slower).",
)
def run(
    scenario: Path,
    seed: int | None,
    out: Path | None,
    overrides: tuple[str, ...],
    no_plots: bool,
    quiet: bool,
    engine: str,
    trace_messages: int | None,
    trace_around: str | int | None,
    chunk_ops: int,
    ops_table: bool,
) -> None:
    """Run SCENARIO once and write its results folder.

    While it runs, a progress bar on stderr if stderr is a terminal (not with --quiet).
    """
    import time

    from qsim.engine import simulate
    from qsim.output.files import scratch_folder
    from qsim.output.report import terminal_table
    from qsim.output.results import check_run_folder, run_dir, write_run
    from qsim.progress import RunProgress

    started = time.perf_counter()

    traced = trace_count(trace_messages, trace_around, engine)
    if ops_table and engine != "montecarlo":
        raise click.UsageError(
            "--ops-table: applies to --engine montecarlo only "
            "(the discrete-event engine always writes ops.parquet)"
        )
    loaded, as_given = load_scenario_given(scenario, overrides)
    _warn([loaded], scenario)
    if out is not None:  # before the run, not after it
        check_run_folder(out, "--out")
    progress = RunProgress(loaded.name, quiet=quiet)
    given = written_yaml(as_given, str(scenario), overrides, seed)
    if engine == "montecarlo":
        from qsim.analysis import montecarlo

        result = montecarlo.run(loaded, seed, progress, table=ops_table)
    elif traced:
        from qsim.tracing import traced_run

        result = traced_run(loaded, seed, traced, trace_around, progress=progress)  # around: 2 runs
    else:  # a long run streams its history to a scratch folder inside its own results folder
        folder = out if out is not None else run_dir(loaded, seed)
        try:
            with scratch_folder(folder) as scratch:
                result = simulate(loaded, seed, progress=progress, scratch=scratch, chunk_ops=chunk_ops)
                progress.close()
                folder = write_run(result, folder, plots_too=not no_plots, given=given)
        except OSError as exc:
            raise click.ClickException(f"cannot write the results: {exc}") from None
    if engine == "montecarlo" or traced:
        progress.close()
        try:
            folder = write_run(result, out, plots_too=not no_plots, given=given)
        except OSError as exc:
            raise click.ClickException(f"cannot write the results: {exc}") from None
    table = terminal_table(result.summary, result.manifest, str(folder), time.perf_counter() - started)
    click.echo(str(folder) if quiet else table)
    if "trace" in result.manifest and not quiet:
        click.echo(f"sequence diagram: {folder / 'sequence.png'} ({traced_words(result.manifest['trace'])})")
    if result.messages is not None:
        warn_crowded(result.messages)
    if result.error:
        raise click.ClickException(f"the run failed: {result.error} (manifest written to {folder})")


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--factor",
    "factors",
    multiple=True,
    metavar="PATH=VALUES",
    help="A factor: a list (quorum.n=3,5,7) or a range (quorum.r=1..n); repeatable.",
)
@click.option(
    "--where", default=None, metavar="EXPR", help='Keep configurations where EXPR holds, e.g. "r + w > n".'
)
@click.option(
    "--zip",
    "zips",
    multiple=True,
    metavar="P1,P2",
    help="Factors that vary together, element by element; repeatable.",
)
@click.option("--seeds", default=None, metavar="K|A,B,..", help="Replicates: seeds 0..K-1, or this list.")
@click.option(
    "--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a base scenario field."
)
@click.option(
    "--executor",
    "executor_name",
    type=click.Choice(["process", "serial", "dask"]),
    default="process",
    show_default=True,
    help="Where points run.",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Parallel workers [default: cores]."
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Dask scheduler address (with --executor dask); default: a local cluster.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    callback=_out_given,
    help="Folder for the results: new, empty, or an earlier sweep's [default: results/<scenario name>].",
)
@click.option("--resume", is_flag=True, help="Skip the points already done in --out.")
@click.option("--keep-runs", is_flag=True, help="Also write every run's full results folder.")
@click.option("--dry-run", is_flag=True, help="List the runs and their count; run nothing.")
@click.option("--no-plots", is_flag=True, help="Do not draw the plots.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line; print only the results folder.")
@click.option(
    "--objective",
    "objectives",
    multiple=True,
    metavar="METRIC",
    help="A metric the Pareto frontier is over (repeatable); replaces the sweep block's objectives "
    "[default: read_latency_p99_ms, write_latency_p99_ms, stale_fraction].",
)
def sweep(
    scenario,
    factors,
    where,
    zips,
    seeds,
    overrides,
    executor_name,
    workers,
    scheduler,
    out,
    resume,
    keep_runs,
    dry_run,
    no_plots,
    quiet,
    objectives,
) -> None:
    """Run SCENARIO over a grid of factors with replicate seeds.

    The grid is the scenario's `sweep:` block, or, when any of --factor, --where, --zip or
    --seeds is given, those options alone. The Pareto frontier is over the --objective metrics,
    else the block's `objectives:`, else p99 read latency, p99 write latency and stale fraction.
    """
    from qsim.output.results import check_sweep_folder, default_sweep_dir
    from qsim.sweep import describe
    from qsim.sweep.aggregate import DEFAULT_OBJECTIVES, check_objectives
    from qsim.sweep.plots import write_plots
    from qsim.sweep.report import Progress, pareto_table
    from qsim.sweep.run import SweepInterrupted, run_sweep

    chosen = check_objectives(objectives, "--objective") if objectives else None
    name, planned, block_objectives, data = _plan_sweep(scenario, overrides, factors, where, zips, seeds)
    objectives = chosen or block_objectives or DEFAULT_OBJECTIVES
    _warn([p.scenario for p in planned], scenario)
    if dry_run:
        click.echo(describe([p.point for p in planned]))
        return
    option = "--out" if out is not None else "the results folder"
    out = out if out is not None else default_sweep_dir(name)
    check_sweep_folder(out, option)  # before any point runs
    grid = _written_grid(data, factors, where, zips, seeds, chosen)
    given = written_yaml({k: v for k, v in data.items() if k != "sweep"}, str(scenario), overrides)
    progress = None if quiet else Progress()
    try:
        result = run_sweep(planned, out, executor_name=executor_name, workers=workers, scheduler=scheduler,
                           resume=resume, keep_runs=keep_runs, plots=not no_plots,
                           progress=progress, say=None if quiet else lambda line: click.echo(line, err=True),
                           description={"scenario": str(scenario), "name": name,
                                        "objectives": list(objectives), "grid": grid}, given=given,
                           warn=lambda line: click.echo(f"warning: {line}", err=True))  # fmt: skip
    except SweepInterrupted as exc:
        if progress is not None:
            progress.close()
        click.echo(str(exc), err=True)
        sys.exit(130)
    except OSError as exc:
        raise click.ClickException(f"cannot write the results: {exc}") from None
    if not no_plots:
        write_plots(result.runs, result.aggregate, result.factors, out, str(name), objectives)
    if quiet:
        click.echo(str(out))
        return
    failed = int(result.runs["error"].notna().sum())
    click.echo(f"{len(result.runs)} runs, {failed} failed; results: {out}")
    click.echo(pareto_table(result.aggregate, result.factors, objectives))


def _written_grid(data: dict, factors, where, zips, seeds, objectives) -> dict:
    """The grid as the user wrote it, for sweep.json: the scenario's ``sweep:`` block, or the options
    (each --factor's values as text) when any is given; ``objectives`` from --objective if chosen."""
    if factors or where or zips or seeds:  # the options alone define the grid
        grid = {item.partition("=")[0].strip(): item.partition("=")[2].strip() for item in factors}
        groups = [[path.strip() for path in group.split(",")] for group in zips]
        grid |= {"where": where, "zip": groups or None, "seeds": seeds}
    else:
        grid = dict(data.get("sweep") or {})
    grid = {key: value for key, value in grid.items() if value is not None}
    return grid | ({"objectives": list(objectives)} if objectives else {})


def _plan_sweep(
    scenario: Path, overrides, factors=(), where=None, zips=(), seeds=None
) -> tuple[str, list, tuple | None, dict]:
    """Return the base scenario's name (checked before any path is built from it), the planned runs,
    the sweep's objectives (None for the default ones) and the scenario data as written (overrides
    applied).

    The grid is the scenario's ``sweep:`` block unless any of the command-line options is given.

    Raises:
        QsimError: for an invalid scenario, name or sweep, with every problem found.
    """
    from qsim.scenario import check_name, read_scenario_data
    from qsim.sweep import sweep_from_cli, sweep_from_mapping
    from qsim.sweep.plan import plan

    data = read_scenario_data(scenario, overrides)
    name = check_name(data, str(scenario))
    if factors or where or zips or seeds:
        spec = sweep_from_cli(factors, where=where, zips=zips, seeds=seeds)
    else:
        spec = sweep_from_mapping(data.get("sweep") or {})
    return name, plan(data, spec, base_dir=scenario.parent), spec.objectives, data


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def plot(folder: Path) -> None:
    """Draw every plot of a run or sweep FOLDER again from its saved results."""
    from qsim.analysis import load_sweep
    from qsim.output.results import redraw_run
    from qsim.sweep.aggregate import DEFAULT_OBJECTIVES, check_objectives
    from qsim.sweep.plots import write_plots

    if (folder / "manifest.json").exists():
        written = redraw_run(folder)
    elif (folder / "runs.parquet").exists():
        sweep = load_sweep(folder)
        name = sweep.sweep.get("name", folder.name)
        recorded = sweep.sweep.get("objectives", DEFAULT_OBJECTIVES)  # sweeps before objectives: the default
        objectives = check_objectives(recorded, f"{folder / 'sweep.json'}: objectives")
        written = [
            folder / "plots" / f
            for f in write_plots(sweep.runs, sweep.aggregate, sweep.factors, folder, name, objectives)
        ]
    else:
        raise click.ClickException(
            f"{folder}: expected a run folder (manifest.json) or a sweep folder (runs.parquet)"
        )
    for path in written:
        click.echo(str(path))


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False), default=None, callback=_out_given,
              help="Where to write the HTML file [default: FOLDER/report.html].")  # fmt: skip
def report(folder: Path, out: Path | None) -> None:
    """Write one self-contained HTML report of a run or sweep FOLDER (plots, tables, scenario).

    An existing --out file is replaced only if it is a report written by qsim.
    """
    from qsim.output.html_report import write_report

    try:
        click.echo(str(write_report(folder, out)))
    except OSError as exc:
        raise click.ClickException(f"cannot write the report: {exc}") from None


@main.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a field before validating."
)
def validate(scenarios: tuple[Path, ...], overrides: tuple[str, ...]) -> None:
    """Check each SCENARIO as `qsim run` and `qsim sweep` would; print OK or every problem.

    A scenario with a `sweep:` block is also expanded, and every point of its grid checked.
    Exit status 1 if any scenario is invalid; warnings go to stderr and never change it.
    """
    failed = 0
    for path in scenarios:
        try:
            loaded = load_scenario(path, overrides)
            planned = _plan_sweep(path, overrides)[1] if loaded.sweep else []
        except QsimError as exc:
            failed += 1
            message = str(exc)  # a scenario's problems name the file; a sweep's do not
            click.echo(message if isinstance(exc, ScenarioError) else f"{path}: {message}", err=True)
        else:
            _warn([loaded, *(p.scenario for p in planned)], path)
            click.echo(f"{path}: OK")
    if failed:
        sys.exit(1)


main.add_command(analyze)

if __name__ == "__main__":
    main()
