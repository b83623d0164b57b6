"""The HTML report of real run and sweep folders: self-contained, escaped, complete."""

from __future__ import annotations

import base64
import html
import itertools
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

import qsim
from qsim.diagram import sequence_diagram, write_diagram
from qsim.html_report import render, render_run, render_sweep, write_report
from qsim.model.replica import Replica
from qsim.scenario import read_scenario_data
from qsim.sweep import sweep_from_mapping
from qsim.sweep.aggregate import pareto
from qsim.sweep.plots import write_plots
from qsim.sweep.run import plan, run_sweep

from .conftest import SCENARIOS
from .test_diagram import MESSAGES

DESCRIPTION = "n2 crashes <script>alert('x')</script> & recovers"
RUN_OVERRIDES = (
    "duration=1s",
    "warmup=0",
    "faults=[{at: 300ms, crash: n2, recover_at: 600ms}]",
    f"description={DESCRIPTION}",
)
SWEEP = {"quorum.n": [3], "quorum.r": [1, 2], "quorum.w": [1, 2], "seeds": [1, 2]}
INJECTED = "injected failure in _apply_write"


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    scenario = qsim.load_scenario(SCENARIOS / "crash-recover.yaml", RUN_OVERRIDES)
    return qsim.write_run(qsim.simulate(scenario), tmp_path_factory.mktemp("run") / "run")


@pytest.fixture(scope="module")
def page(run_folder) -> str:
    return render_run(run_folder)


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory) -> Path:
    """A 4-configuration, 2-seed sweep of 200 ms runs whose first run fails (the 50th write applied)."""
    data = read_scenario_data(SCENARIOS / "quickstart.yaml", ["duration=200ms", "warmup=0"])
    planned = plan(data, sweep_from_mapping(SWEEP), base_dir=SCENARIOS)
    out = tmp_path_factory.mktemp("sweep") / "sweep"
    original, calls = Replica._apply_write, itertools.count(1)

    def apply_write(self, op, version):
        if next(calls) == 50:
            raise RuntimeError(INJECTED)
        return original(self, op, version)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Replica, "_apply_write", apply_write)
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
    assert len(plots) == 5
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
    assert len(table_rows(page, "messages")) == len(summary["messages"])


def test_faults_and_durability_appear_for_a_run_with_faults(page):
    faults = section(page, "Faults and durability")
    assert '<td>crash</td><td>n2</td><td class="num">300</td><td class="num">600</td>' in faults
    assert "acknowledged writes lost" in faults


def test_the_scenario_and_the_manifest_are_included(page, run_folder):
    assert f"<pre>{html.escape((run_folder / 'scenario.resolved.yaml').read_text())}</pre>" in page
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
    assert len(png_sources(page)) == 5  # sequence.png is not repeated
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
    assert len(plots) == 6  # frontier, t-visibility, latency CDFs, three heat maps
    assert sorted(base64.b64decode(s) for s in png_sources(sweep_page)) == sorted(
        p.read_bytes() for p in plots
    )
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
