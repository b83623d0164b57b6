"""The HTML report of real run and sweep folders: self-contained, escaped, complete."""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from matplotlib.figure import Figure

import qsim
from qsim.cli import main
from qsim.model.replica import Replica
from qsim.output.diagram import sequence_diagram, write_diagram
from qsim.output.html_figures import caption, order, with_tooltips
from qsim.output.html_report import render, render_run, render_sweep, write_report
from qsim.output.html_scenario import differences, fault_params_text
from qsim.scenario import load_scenario, load_scenario_given, read_scenario_data, run_id, written_yaml
from qsim.sweep import sweep_from_mapping
from qsim.sweep.aggregate import pareto
from qsim.sweep.plots import write_plots
from qsim.sweep.run import plan, run_sweep

from .conftest import SCENARIOS
from .test_diagram import MESSAGES
from .test_sweep_cli import GRID_BLOCK  # a range, a zip and a where, as a user writes them

DESCRIPTION = "n2 crashes <script>alert('x')</script> & recovers"
RUN_OVERRIDES = (
    "duration=1s",
    "warmup=0",
    "faults=[{at: 300ms, crash: n2, recover_at: 600ms}]",
    f"description={DESCRIPTION}",
)
SWEEP = {"quorum.n": [3], "quorum.r": [1, 2], "quorum.w": [1, 2], "seeds": [1, 2]}
INJECTED = "injected failure in Replica._write"


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    path = SCENARIOS / "crash-recover.yaml"
    scenario, data = load_scenario_given(path, RUN_OVERRIDES)
    given = written_yaml(data, str(path), RUN_OVERRIDES)
    return qsim.write_run(qsim.simulate(scenario), tmp_path_factory.mktemp("run") / "run", given=given)


@pytest.fixture(scope="module")
def page(run_folder) -> str:
    return render_run(run_folder)


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory) -> Path:
    """A 4-configuration, 2-seed sweep of 200 ms runs whose first run fails (the 50th write applied)."""
    data = read_scenario_data(SCENARIOS / "quickstart.yaml", ["duration=200ms", "warmup=0"])
    planned = plan(data, sweep_from_mapping(SWEEP), base_dir=SCENARIOS)
    out = tmp_path_factory.mktemp("sweep") / "sweep"
    original, calls = Replica._write, itertools.count(1)

    def apply_write(self, message):
        if next(calls) == 50:
            raise RuntimeError(INJECTED)
        return original(self, message)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Replica, "_write", apply_write)
        result = run_sweep(planned, out, executor_name="serial", description={"name": "tiny <sweep>"})
    write_plots(result.runs, result.aggregate, result.factors, out, "tiny")
    return out


@pytest.fixture(scope="module")
def sweep_page(sweep_folder) -> str:
    return render_sweep(sweep_folder)


def table_rows(page: str, table_id: str) -> list[str]:
    """The body rows of the table with ``id``."""
    body = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    return re.findall(r"<tr[ >].*?</tr>", body, re.S)


def section(page: str, title: str) -> str:
    match = re.search(rf"<section>\n<h2>{re.escape(title)}</h2>(.*?)</section>", page, re.S)
    return match.group(1) if match else ""


def png_sources(page: str) -> list[str]:
    return re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)


# --- a run ---------------------------------------------------------------------------------------


def test_a_run_report_is_one_document_that_fetches_nothing(page):
    assert page.startswith("<!DOCTYPE html>\n") and page.rstrip().endswith("</html>")
    assert page.count("<html") == page.count("<body") == 1
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)
    assert "<link" not in page and "<script" not in page and "@import" not in page


def test_it_names_the_run_its_seed_and_scenario(page, run_folder):
    summary = json.loads((run_folder / "summary.json").read_text())
    assert f"<code>{summary['run_id']}</code>, seed {summary['seed']}" in page
    assert f"<title>crash-recover ({summary['run_id']})</title>" in page


def test_every_plot_is_embedded_as_a_png_data_uri(page, run_folder):
    plots = sorted((run_folder / "plots").glob("*.png"))
    assert len(plots) >= 5
    assert sorted(base64.b64decode(s) for s in png_sources(page)) == sorted(p.read_bytes() for p in plots)


def test_the_headline_tables_show_the_summarys_numbers(page, run_folder):
    summary = json.loads((run_folder / "summary.json").read_text())
    operations = "".join(table_rows(page, "operations"))
    for kind in ("reads", "writes"):
        latency = summary[kind]["latency_ms"]
        for stat in ("mean", "p50", "p90", "p99", "p999", "max"):
            assert f'<td class="num">{latency[stat]:.3f}</td>' in operations, (kind, stat)
    staleness = summary["staleness"]
    assert f"{staleness['reads_checked']} checked" in section(page, "Staleness")
    assert len(table_rows(page, "k")) == len(staleness["k"])
    assert len(table_rows(page, "t-visibility")) == len(staleness["t_visibility"]) > 0
    assert [re.search(r"<td>(.*?)</td>", row).group(1) for row in table_rows(page, "nodes")] == list(
        summary["nodes"]
    )
    sent = summary["messages"]["read_request"]["sent"]
    assert f'<td>read_request</td><td class="num">{sent}</td>' in section(page, "Messages")
    unused = {"append_entries", "append_ack", "request_vote", "vote"}  # a leaderless run: left out
    assert len(table_rows(page, "messages")) == len(summary["messages"]) - len(unused)
    assert not any(f"<td>{kind}</td>" in page for kind in unused)


def test_faults_and_durability_appear_for_a_run_with_faults(page):
    faults = section(page, "Faults and durability")
    assert '<td>crash</td><td>n2</td><td class="num">300</td><td class="num">600</td>' in faults
    assert "acknowledged writes lost" in faults


def test_the_scenario_and_the_manifest_are_included(page, run_folder):
    given = (run_folder / "scenario.yaml").read_text()
    assert f'<pre class="scenario">{html.escape(given)}</pre>' in section(page, "Scenario")
    manifest = json.loads((run_folder / "manifest.json").read_text())
    run = section(page, "Run")
    assert f"<td>dependencies.matplotlib</td><td>{manifest['dependencies']['matplotlib']}</td>" in run
    assert f'<td>wall_s</td><td class="num">{manifest["wall_s"]:.6g}</td>' in run


def test_text_from_the_folder_is_escaped(page):
    assert html.escape(DESCRIPTION) in page
    assert "<script>" not in page


def test_the_oracle_section_appears_only_when_the_summary_has_one(run_folder, tmp_path):
    copy = shutil.copytree(run_folder, tmp_path / "run")
    summary = json.loads((copy / "summary.json").read_text())
    summary.pop("oracle", None)  # summaries written before the oracle existed have none
    (copy / "summary.json").write_text(json.dumps(summary))
    assert "<h2>Oracle</h2>" not in render_run(copy)
    summary["oracle"] = [
        {"quantity": "P(stale)", "model": "quorum intersection", "theory": 0.0, "simulated": 0.0,
         "ci_low": 0.0, "ci_high": 0.0, "agrees": True},
        {"quantity": "read p99 <ms>", "model": "order statistics", "theory": 4.5, "simulated": 5.25,
         "ci_low": 5.0, "ci_high": 5.5, "agrees": False, "note": "queueing"},
    ]  # fmt: skip
    (copy / "summary.json").write_text(json.dumps(summary))
    oracle = section(render_run(copy), "Oracle")
    assert "2 checks, 1 disagrees." in oracle
    rows = re.findall(r'<tr class="(\w+)">(.*?)</tr>', oracle)
    assert [kind for kind, _ in rows] == ["agree", "disagree"]
    assert "<td>read p99 &lt;ms&gt;</td>" in rows[1][1] and '<td class="num">5.25</td>' in rows[1][1]
    assert "<th>note</th>" in oracle and "<td>queueing</td>" in rows[1][1]


def test_a_sequence_diagram_is_inlined_as_svg_instead_of_its_png(run_folder, tmp_path):
    copy = shutil.copytree(run_folder, tmp_path / "run")
    write_diagram(sequence_diagram(MESSAGES), copy)
    page = render_run(copy)
    assert page.count("<svg") == 1 and "<?xml" not in page and "<!DOCTYPE svg" not in page
    assert 'id="lifeline:n1"' in page
    assert len(png_sources(page)) == len(list((copy / "plots").glob("*.png")))  # sequence.png is not repeated
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)


# --- a sweep -------------------------------------------------------------------------------------


def test_a_sweep_report_has_the_pareto_table(sweep_page, sweep_folder):
    table = pd.read_parquet(sweep_folder / "aggregate.parquet")
    best = table[pareto(table)].sort_values("read_latency_p99_ms_mean")
    rows = table_rows(sweep_page, "pareto")
    assert len(rows) == len(best) >= 1
    assert f'<td class="num">{best["read_latency_p99_ms_mean"].iloc[0]:.4g}' in rows[0]
    assert sweep_page.count('<tr class="best">') == len(best)


def test_the_aggregate_table_shows_mean_and_ci_or_the_mean_alone_with_one_seed(sweep_page, sweep_folder):
    table = pd.read_parquet(sweep_folder / "aggregate.parquet")
    rows = table_rows(sweep_page, "aggregate")
    assert len(rows) == len(table) == 4
    for row, config in zip(rows, table.to_dict("records"), strict=True):
        mean, ci = config["stale_fraction_mean"], config["stale_fraction_ci95"]
        one_seed = config["runs"] - config["failed"] == 1  # the configuration of the failed run
        assert (f'<td class="num">{mean:.4g}</td>' if one_seed else f"{mean:.4g} ± {ci:.2g}") in row
    assert "nan" not in section(sweep_page, "All configurations").lower()


def test_a_sweep_report_embeds_its_plots_and_describes_the_sweep(sweep_page, sweep_folder):
    plots = sorted((sweep_folder / "plots").glob("*.png"))
    assert len(plots) >= 4  # frontier, t-visibility, latencies, heat maps
    # A plot with an SVG twin (the frontier) is inlined as SVG, with hover text on its markers.
    embedded = [p for p in plots if not p.with_suffix(".svg").exists()]
    assert [p.stem for p in plots if p not in embedded] == ["frontier"]
    assert sorted(base64.b64decode(s) for s in png_sources(sweep_page)) == sorted(
        p.read_bytes() for p in embedded
    )
    assert re.search(r'<g id="config:0"[^>]*><title>', sweep_page)
    assert "<h1>Sweep tiny &lt;sweep&gt;</h1>" in sweep_page
    assert "<td>quorum.r</td><td>1, 2</td>" in sweep_page and "<td>seeds</td><td>1, 2</td>" in sweep_page
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", sweep_page)


def test_a_sweep_report_lists_failed_runs_with_their_errors(sweep_page, sweep_folder):
    runs = pd.read_parquet(sweep_folder / "runs.parquet")
    failed = runs[runs["error"].notna()]
    assert len(failed) == 1
    [row] = table_rows(sweep_page, "failed")
    assert failed["run_id"].iloc[0] in row and INJECTED in row


# --- dispatch and writing ------------------------------------------------------------------------


def test_render_dispatches_on_what_the_folder_holds(run_folder, page, sweep_folder, sweep_page, tmp_path):
    assert render(run_folder) == page
    assert render(sweep_folder) == sweep_page
    with pytest.raises(qsim.QsimError, match=r"expected manifest\.json .* runs\.parquet / sweep\.json"):
        render(tmp_path)


def test_write_report_writes_report_html_atomically(sweep_folder, sweep_page, tmp_path):
    path = write_report(sweep_folder)
    assert path == sweep_folder / "report.html" and path.read_text() == sweep_page
    elsewhere = write_report(sweep_folder, tmp_path / "out" / "sweep.html")
    assert elsewhere.read_text() == sweep_page
    assert write_report(sweep_folder, tmp_path) == tmp_path / "report.html"
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name != "sweep.html"]


# --- the scenario --------------------------------------------------------------------------------


def cells(page: str, table_id: str) -> dict[str, str]:
    """The rows of a two-column table as {first cell: second cell}, unescaped."""
    found = {}
    for row in table_rows(page, table_id):
        first, second = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[:2]
        found[html.unescape(first)] = html.unescape(second)
    return found


def test_the_scenario_section_shows_units_and_no_nulls(page):
    scenario = section(page, "Scenario")
    differences = cells(page, "scenario-differences")
    assert differences["quorum.timeout"] == "100 ms"  # the file says timeout: 100ms
    assert differences["duration"] == "1 s"  # --set duration=1s
    assert "null" not in scenario and "100.0" not in scenario
    assert "timeout: 100ms" in scenario  # the scenario as given, as its file writes it


def test_the_differences_from_the_defaults_are_exactly_the_fields_given_otherwise(page):
    differences = cells(page, "scenario-differences")
    # crash-recover.yaml with duration=1s, warmup=0 (the default) and one fault at 300 ms.
    assert differences["faults"] == "[{at: 300 ms, crash: n2, recover_at: 600 ms}]"
    assert differences["cluster.replica.service_time"] == "{dist: exponential, mean: 0.1 ms}"
    assert differences["workload.arrival.rate"] == "2000/s"
    assert "warmup" not in differences and "seed" not in differences  # equal to their defaults
    assert "quorum.n" not in differences and "network.latency" not in differences


def test_differences_of_a_constructed_scenario():
    scenario = qsim.scenario_from_dict(
        {
            "name": "custom",
            "duration": "2.5s",
            "quorum": {"timeout": "250us", "retries": 2, "retry_backoff": "40us"},
            "workload": {"arrival": {"type": "poisson", "rate": "5/ms"}, "read_fraction": 0.7},
            "network": {"loss": 0.01},
        }
    )
    assert differences(scenario) == [
        ("duration", "2.5 s"),
        ("network.loss", "0.01"),
        ("quorum.timeout", "0.25 ms"),
        ("quorum.retries", "2"),
        ("quorum.retry_backoff", "40 us"),
        ("workload.arrival.rate", "5000/s"),
        ("workload.read_fraction", "0.7"),
    ]
    assert differences(qsim.scenario_from_dict({"name": "plain"})) == []
    hedged = qsim.scenario_from_dict({"name": "h", "quorum": {"hedge": {"after": "5ms"}}})
    assert differences(hedged) == [("quorum.hedge", "{after: 5 ms}")]


def test_the_run_folder_keeps_the_scenario_as_given(run_folder):
    given = (run_folder / "scenario.yaml").read_text()
    assert '# from "' in given and "crash-recover.yaml" in given
    assert all(f"# with --set {json.dumps(item)}" in given for item in RUN_OVERRIDES)
    data = yaml.safe_load(given)
    assert data["quorum"]["r"] == "quorum" and data["duration"] == "1s"  # not resolved, not defaulted
    summary = json.loads((run_folder / "summary.json").read_text())
    again = qsim.load_scenario(run_folder / "scenario.yaml")  # it runs the same scenario
    assert run_id(again) == summary["run_id"]


def test_a_run_with_another_seed_keeps_that_seed_as_given(tmp_path):
    folder = tmp_path / "run"
    args = ["run", str(SCENARIOS / "quickstart.yaml"), "--set", "duration=200ms", "--set", "warmup=0"]
    result = CliRunner().invoke(main, [*args, "--seed", "7", "--out", str(folder), "--no-plots", "-q"])
    assert result.exit_code == 0, result.output
    given = (folder / "scenario.yaml").read_text()
    assert yaml.safe_load(given)["seed"] == 7 and "# with --seed 7" in given
    assert (
        run_id(qsim.load_scenario(folder / "scenario.yaml"))
        == json.loads((folder / "summary.json").read_text())["run_id"]
    )


def test_a_scenario_built_in_code_keeps_its_resolved_form_without_nulls(tmp_path):
    scenario = qsim.scenario_from_dict({"name": "coded", "duration": "200ms", "warmup": 0})
    folder = qsim.write_run(qsim.simulate(scenario), tmp_path / "run", plots_too=False)
    text = (folder / "scenario.yaml").read_text()
    assert text.startswith("# The scenario as given is not known") and "null" not in text
    assert run_id(qsim.load_scenario(folder / "scenario.yaml")) == run_id(scenario)


def test_an_older_run_folder_without_scenario_yaml_still_gets_a_scenario_section(run_folder, tmp_path):
    copy = shutil.copytree(run_folder, tmp_path / "run")
    (copy / "scenario.yaml").unlink()
    page = render_run(copy)
    scenario = section(page, "Scenario")
    assert cells(page, "scenario-differences")["quorum.timeout"] == "100 ms"
    assert "before qsim kept the scenario as given" in scenario and "null" not in scenario
    # a resolved scenario that no longer validates is shown without its empty fields
    resolved = yaml.safe_load((copy / "scenario.resolved.yaml").read_text())
    resolved["quorum"]["n"] = 99
    (copy / "scenario.resolved.yaml").write_text(yaml.safe_dump(resolved))
    scenario = section(render_run(copy), "Scenario")
    assert "n: 99" in scenario and "null" not in scenario


# --- tables, captions and tooltips ---------------------------------------------------------------


def test_number_cells_do_not_wrap_and_wide_tables_scroll(sweep_page):
    style = re.search(r"<style>(.*?)</style>", sweep_page, re.S).group(1)
    rule = re.search(r"td\.num \{([^}]*)\}", style).group(1)
    assert "white-space: nowrap" in rule
    assert re.search(r"div\.wide \{[^}]*overflow-x: auto", style)
    aggregate = section(sweep_page, "All configurations")
    assert '<div class="wide"><table id="aggregate">' in aggregate
    with_ci = re.findall(r'<td class="(\w+)">[\d.e+-]+ ± [\d.e+-]+</td>', aggregate)
    assert with_ci and set(with_ci) == {"num"}


def test_every_plot_has_a_caption_that_says_what_it_shows(page, sweep_page):
    for report in (page, sweep_page):
        captions = re.findall(r"<figcaption>(.*?) <span", report, re.S)
        assert captions and len(captions) == report.count("<figure")
        for text in map(html.unescape, captions):
            assert text.endswith(".") and len(text.split()) >= 12, text
            assert ".png" not in text and ".svg" not in text, text
    assert caption("latency_percentiles") != caption("latency_cdf")
    assert "stale-read fraction" in caption(
        "heatmap_stale_fraction", labels={"stale_fraction": "stale-read fraction"}
    )
    unknown = caption("queue_depth")
    assert unknown.endswith(".") and "queue depth" in unknown


def test_known_plots_come_in_reading_order(page):
    names = re.findall(r'<span class="file">\((.*?)\)</span>', page)
    stems = [Path(name).stem for name in names]
    assert stems.index("latency_percentiles") < stems.index("latency_cdf") < stems.index("t_visibility")
    assert stems.index("availability_timeline") < stems.index("staleness_timeline")


def frontier_svg(count: int, *, gids: bool) -> bytes:
    """A scatter of ``count`` markers, each its own artist with gid config:<i> (when ``gids``)."""
    figure = Figure()
    axes = figure.add_subplot()
    for i in range(count):
        (line,) = axes.plot([i], [i], "o")
        if gids:
            line.set_gid(f"config:{i}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg")
    return buffer.getvalue()


def test_the_frontier_svg_gets_a_hover_title_per_configuration(sweep_folder, tmp_path):
    copy = shutil.copytree(sweep_folder, tmp_path / "sweep")
    table = pd.read_parquet(copy / "aggregate.parquet")
    (copy / "plots" / "frontier.svg").write_bytes(frontier_svg(len(table), gids=True))
    page = render_sweep(copy)
    titles = re.findall(r'<g id="config:(\d+)"[^>]*>\s*<title>(.*?)</title>', page, re.S)
    assert [int(i) for i, _ in titles] == list(range(len(table)))
    for (_, text), config in zip(titles, table.to_dict("records"), strict=True):
        text = html.unescape(text)
        assert f"r={config['quorum.r']}, w={config['quorum.w']}" in text
        assert f"{config['read_latency_p99_ms_mean']:.4g}" in text and "stale" in text
    assert page.count("<svg") == 1 and len(png_sources(page)) == len(list((copy / "plots").glob("*.png"))) - 1
    assert "Hover over a marker" in section(page, "Plots")


def test_an_svg_without_configuration_ids_is_left_as_it_is(sweep_folder, tmp_path):
    copy = shutil.copytree(sweep_folder, tmp_path / "sweep")
    (copy / "plots" / "frontier.svg").write_bytes(frontier_svg(3, gids=False))
    page = render_sweep(copy)
    assert page.count("<svg") == 1 and "<title>" not in page.split("<svg", 1)[1].split("</svg>")[0]
    assert "Hover over a marker" not in page  # no promise of tooltips that are not there
    assert with_tooltips('<g id="config:7">x</g>', {0: "a"}) == '<g id="config:7">x</g>'
    assert with_tooltips('<g id="config:0">', {0: "<b>"}) == '<g id="config:0"><title>&lt;b&gt;</title>'


# --- the sweep's scenario and frontier -----------------------------------------------------------


def test_a_sweep_report_has_a_scenario_section_with_its_grid(sweep_page):
    scenario = section(sweep_page, "Scenario")
    grid = cells(sweep_page, "grid")
    assert grid["quorum.r"] == "1, 2" and grid["quorum.w"] == "1, 2" and grid["seeds"] == "1, 2"
    assert grid["objectives"].endswith("(the default)")
    assert "does not keep its base scenario" in scenario


def test_a_sweep_folder_with_its_base_scenario_shows_it_and_its_where(sweep_folder, tmp_path):
    copy = shutil.copytree(sweep_folder, tmp_path / "sweep")
    grid = {"quorum.r": [1, 2], "quorum.w": [1, 2], "where": "r + w > 2", "seeds": [1, 2]}
    base = {"name": "tiny", "duration": "200ms", "quorum": {"timeout": "50ms"}, "sweep": grid}
    (copy / "scenario.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    page = render_sweep(copy)
    assert cells(page, "grid")["where"] == "r + w > 2"
    differences = cells(page, "scenario-differences")
    assert differences["quorum.timeout"] == "50 ms" and differences["duration"] == "200 ms"
    assert "timeout: 50ms" in section(page, "Scenario")


def test_the_pareto_table_uses_the_recorded_objectives(sweep_folder, tmp_path):
    copy = shutil.copytree(sweep_folder, tmp_path / "sweep")
    state = json.loads((copy / "sweep.json").read_text())
    objectives = ["write_latency_p99_ms", "messages_per_op"]
    (copy / "sweep.json").write_text(json.dumps(state | {"objectives": objectives}))
    page = render_sweep(copy)
    table = pd.read_parquet(copy / "aggregate.parquet")
    points = table[[f"{m}_mean" for m in objectives]].to_numpy()
    brute = [
        not any(
            (other <= point).all() and (other < point).any() for other in points if not pd.isna(other).any()
        )
        and not pd.isna(point).any()
        for point in points
    ]
    assert len(table_rows(page, "pareto")) == sum(brute)
    header = re.search(r'<table id="pareto">\s*<thead>(.*?)</thead>', page, re.S).group(1)
    assert "write" in header and "messages" in header
    recorded = cells(page, "grid")["objectives"]
    assert "[write_latency_p99_ms]" in recorded and "[messages_per_op]" in recorded
    assert "(the default)" not in recorded
    (copy / "sweep.json").write_text(json.dumps(state | {"objectives": ["read_latency_p99", 3]}))
    with pytest.raises(qsim.QsimError, match=r"sweep\.json: .*'read_latency_p99' is not a metric"):
        render_sweep(copy)


def test_a_damaged_scenario_yaml_is_reported_by_name(run_folder, sweep_folder, tmp_path):
    run = shutil.copytree(run_folder, tmp_path / "run")
    (run / "scenario.yaml").write_bytes(b"name: \xff\xfe")
    with pytest.raises(qsim.QsimError, match=re.escape(str(run / "scenario.yaml"))):
        render_run(run)
    sweep = shutil.copytree(sweep_folder, tmp_path / "sweep")
    (sweep / "scenario.yaml").write_text("a: [b")  # not YAML: shown as it is, without differences
    scenario = section(render_sweep(sweep), "Scenario")
    assert "a: [b" in scenario and 'id="scenario-differences"' not in scenario


def test_a_plot_opens_at_full_size_when_clicked(page):
    assert page.count('<figure class="plot" tabindex="0">') == page.count("<figure")
    assert re.search(r"figure\.plot:focus img[^{]*\{[^}]*max-width: none", page)


# --- what a sweep folder written by `qsim sweep` keeps, as the report shows it ----------------------

CHOSEN = ("write_latency_p99_ms", "stale_fraction")


@pytest.fixture(scope="module")
def cli_sweep_folder(tmp_path_factory) -> Path:
    """`qsim sweep` of quickstart over a range, a zip and a filter: 3 configurations x 2 seeds of 200 ms."""
    folder = tmp_path_factory.mktemp("cli-sweep")
    scenario = folder / "grid.yaml"
    scenario.write_text((SCENARIOS / "quickstart.yaml").read_text() + GRID_BLOCK)
    out = folder / "out"
    options = ["--set", "duration=200ms", "--set", "warmup=0", "--executor", "serial", "--quiet"]
    objectives = [item for metric in CHOSEN for item in ("--objective", metric)]
    result = CliRunner().invoke(main, ["sweep", str(scenario), *options, *objectives, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_sweep_report_shows_the_grid_as_written_and_how_many_runs_it_made(cli_sweep_folder):
    page = render_sweep(cli_sweep_folder)
    grid = cells(page, "grid")
    assert grid["quorum.n"] == "3..4 \u2192 3, 4"  # the range as written, and the values it gave
    assert (grid["quorum.r"], grid["quorum.w"]) == ("1, 2", "2, 1")  # zipped: in the order written
    assert grid["zip"] == "quorum.r, quorum.w vary together, element by element: (1, 2), (2, 1)"
    assert grid["where"] == "n == 3 or r == 2" and grid["seeds"] == "0, 1"
    assert "[write_latency_p99_ms]" in grid["objectives"] and "(the default)" not in grid["objectives"]
    runs = pd.read_parquet(cli_sweep_folder / "runs.parquet")
    configs = pd.read_parquet(cli_sweep_folder / "aggregate.parquet")
    assert (len(configs), len(runs)) == (3, 6)  # n=4 with r=1, w=2 is filtered out
    assert "<p>3 configurations \u00d7 2 seeds = 6 runs." in section(page, "Scenario")


def test_the_sweep_report_shows_the_base_scenario_it_keeps(cli_sweep_folder):
    page = render_sweep(cli_sweep_folder)
    scenario = section(page, "Scenario")
    assert "does not keep its base scenario" not in scenario
    differences = cells(page, "scenario-differences")
    assert differences["duration"] == "200 ms" and differences["workload.arrival.rate"] == "2000/s"
    assert "quorum.n" not in differences  # a factor: its values are in the grid
    given = (cli_sweep_folder / "scenario.yaml").read_text()
    assert f'<pre class="scenario">{html.escape(given)}</pre>' in scenario
    assert "sweep:" not in given and "# with --set" in given
    assert "<td>grid." not in section(page, "Sweep")  # shown once, under Scenario


def test_a_zip_given_on_the_command_line_shows_the_tuples_that_ran(tmp_path):
    zipped = ("--factor", "quorum.r=1,2", "--factor", "quorum.w=2,1", "--zip", "quorum.r, quorum.w")
    options = ("--set", "duration=200ms", "--set", "warmup=0", "--executor", "serial", "--no-plots")
    result = CliRunner().invoke(
        main, ["sweep", str(SCENARIOS / "quickstart.yaml"), *zipped, *options, "-q", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    page = render_sweep(tmp_path)
    grid = cells(page, "grid")
    assert grid["zip"] == "quorum.r, quorum.w vary together, element by element: (1, 2), (2, 1)"
    assert "<p>2 configurations \u00d7 1 seed = 2 runs.</p>" in page
    assert grid["seeds"] == "1 (the scenario's own)"


def test_heat_maps_come_in_the_order_of_the_objectives_then_availability(cli_sweep_folder):
    page = render_sweep(cli_sweep_folder)
    names = [Path(name).stem for name in re.findall(r'<span class="file">\((.*?)\)</span>', page)]
    heatmaps = [name.removeprefix("heatmap_") for name in names if name.startswith("heatmap_")]
    assert heatmaps == [*CHOSEN, "availability"]
    assert names.index("frontier") < names.index("heatmap_" + CHOSEN[0])


def test_heat_maps_the_objectives_do_not_name_follow_by_name():
    stems = ["heatmap_availability", "heatmap_zeta", "heatmap_k_mean", "heatmap_stale_fraction", "frontier"]
    ordered = sorted(stems, key=lambda stem: order(stem, sweep=True, objectives=["stale_fraction"]))
    assert ordered == ["frontier", "heatmap_stale_fraction", "heatmap_availability", "heatmap_k_mean",
                       "heatmap_zeta"]  # fmt: skip


def test_the_frontier_caption_says_every_configuration_is_labelled():
    text = caption("frontier", sweep=True)
    assert "every one labelled" in text and "highlighted and labelled" not in text
    assert "large markers outlined in black" in text  # how plots.frontier draws the optimal ones


def test_the_faults_table_shows_parameters_with_their_units(page):
    [row] = table_rows(page, "faults")
    assert "<td>amnesia: false, recover_at: 600 ms</td>" in row  # crash at 300 ms, recover_at: 600ms
    assert "600.0" not in row and "{" not in row


def test_fault_parameters_are_read_through_the_fault_schema():
    [fault] = load_scenario(SCENARIOS / "flaky-wan.yaml").faults  # as the fault injector records it
    recorded = json.dumps(fault.model_dump(mode="json", exclude={"at", "degrade"}), sort_keys=True)
    assert fault_params_text("degrade", recorded) == (
        "latency: {dist: exponential, mean: 80 ms}, loss: 0.1, until: 30 s"
    )
    assert fault_params_text("crash", '{"amnesia": false, "random_crashes": 2}') == (
        "amnesia: false, random_crashes: 2"  # a key the schema does not declare, shown as it is
    )
    assert fault_params_text("crash", "not JSON") == "not JSON"
