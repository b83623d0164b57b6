"""Hostile input: every bad input ends in a clear message naming its field, quickly, in bounded memory.

Each case runs the real CLI. The bulk run as files given to one ``qsim validate`` subprocess (with
a timeout and an address-space limit, so a hang or a memory blow-up fails the test instead of the
machine); the others run ``qsim run`` and ``qsim sweep`` in their own subprocesses, or ``--set``
and ``--factor`` in-process. For each: a non-zero exit, the field path (or the file's problem) in
the message, no traceback, and nothing written outside the results folder.
"""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from qsim.cli import main
from qsim.scenario import load_scenario
from qsim.scenario.limits import MAX_OPERATIONS, estimate

ROOT = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 1 << 30  # address space of each subprocess: imports take ~0.5 GiB of it
BASE = {
    "name": "hostile",
    "duration": "200ms",
    "cluster": {"nodes": 3},
    "quorum": {"n": 3, "r": 2, "w": 2, "timeout": "50ms"},
    "workload": {"arrival": {"type": "poisson", "rate": "1000/s"}, "keys": {"count": 100}},
}


def merged(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` merged in, mappings recursively."""
    out = dict(base)
    for key, value in changes.items():
        deeper = isinstance(value, dict) and isinstance(out.get(key), dict) and "type" not in value
        out[key] = merged(out[key], value) if deeper else value  # a new arrival type replaces the old
    return out


def doc(**changes) -> str:
    return yaml.safe_dump(merged(BASE, changes), sort_keys=False)


def closed(clients: int, **changes) -> str:
    return doc(workload={"arrival": {"type": "closed", "think_time": 0}, "clients": clients}, **changes)


def bomb(levels: int = 8) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "name: bomb\n" + "\n".join(lines) + "\n"


def nested(depth: int) -> str:
    return (
        "name: deep\ndescription:\n"
        + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(depth))
        + "  " * (depth + 1)
        + "x\n"
    )


# (id, file content: text or bytes, what the message must contain)
FILE_CASES = [
    # bytes that are not UTF-8 text
    ("latin-1", "name: caf\xe9\n".encode("latin-1"), "not UTF-8 text: byte 0xe9 at line 1"),
    ("utf-16", doc().encode("utf-16"), "UTF-16 text"),
    ("utf-32", doc().encode("utf-32"), "UTF-32 text"),
    ("binary-garbage", bytes(range(256)) * 4, "not UTF-8 text"),
    ("nul-bytes", b"name: x\x00\x00\n", "NUL byte at line 1"),
    ("control-chars", "name: x\x07\n", "not valid YAML at character 8: unacceptable character #x0007"),
    # YAML structure
    ("alias-bomb", bomb(), "YAML aliases expand to more than"),
    (
        "alias-self-mapping",
        "name: x\ncluster: &c {nodes: 3, replica: *c}\n",
        "cluster (line 2): a YAML alias",
    ),
    ("alias-self-list", "name: x\ndescription: &d [1, *d]\n", "description (line 2): a YAML alias"),
    ("deep-block", nested(200), "nesting deeper than 64 levels"),
    ("deep-flow", "name: x\ndescription: " + "[" * 500 + "]" * 500 + "\n", "nesting deeper than 64"),
    (
        "alias-deep",
        "name: x\na: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[*a, " * 30 + "1" + "]" * 30 + "\n",
        "YAML aliases nest deeper than 64",
    ),
    (
        "huge-int",
        doc().replace("count: 100", "count: " + "9" * 5000),
        "workload.keys.count: an integer of 5000",
    ),
    ("huge-int-seed", doc(seed=10**40), "seed: an integer of 41"),
    ("huge-float", doc(duration=float("1" * 400)), "duration: expected a finite duration"),
    ("top-level-list", "- a\n- b\n", "expected a mapping of scenario fields, found list"),
    ("two-documents", "name: a\n---\nname: b\n", "not valid YAML at line 2"),
    # NaN and infinities wherever a number goes
    ("duration-inf", doc(duration=float("inf")), "duration: expected a finite duration"),
    ("duration-nan", doc(duration=float("nan")), "duration: expected a finite duration"),
    ("warmup-nan", doc(warmup=float("nan")), "warmup: expected a finite duration"),
    ("timeout-inf", doc(quorum={"timeout": float("inf")}), "quorum.timeout: expected a finite duration"),
    (
        "rate-inf",
        doc(workload={"arrival": {"rate": float("inf")}}),
        "workload.arrival.rate: expected a finite",
    ),
    ("rate-text-nan", doc(workload={"arrival": {"rate": "nan"}}), "workload.arrival.rate: expected a rate"),
    (
        "exponential-nan",
        doc(network={"latency": {"dist": "exponential", "mean": float("nan")}}),
        "network.latency.mean: expected a finite duration",
    ),
    (
        "normal-nan-mean",
        doc(network={"latency": {"dist": "normal", "mean": float("nan"), "sd": 1}}),
        "network.latency.mean: expected a finite duration",
    ),
    (
        "lognormal-inf-sigma",
        doc(network={"latency": {"dist": "lognormal", "median": 1, "sigma": float("inf")}}),
        "network.latency.sigma: expected a finite number",
    ),
    (
        "pareto-inf-alpha",
        doc(network={"latency": {"dist": "pareto", "scale": 1, "alpha": float("inf")}}),
        "network.latency.alpha",
    ),
    (
        "mixture-nan-weight",
        doc(network={"latency": {"dist": "mixture", "components": [1, 2], "weights": [float("nan"), 1]}}),
        "network.latency.weights.0",
    ),
    (
        "empirical-inf-sample",
        doc(network={"latency": {"dist": "empirical", "values": [1, float("inf")]}}),
        "network.latency.values.1",
    ),
    (
        "probe-nan-delay",
        doc(workload={"arrival": {"type": "probe", "delays": [0, float("nan")]}}),
        "workload.arrival.delays.1: expected a finite duration",
    ),
    ("loss-nan", doc(network={"loss": float("nan")}), "network.loss"),
    ("read-fraction-nan", doc(workload={"read_fraction": float("nan")}), "workload.read_fraction"),
    ("zipf-s-inf", doc(workload={"keys": {"popularity": "zipf", "s": float("inf")}}), "workload.keys.s"),
    (
        "clock-offset-inf",
        doc(faults=[{"at": 10, "clock_skew": "n1", "offset": float("-inf")}]),
        "faults.0.offset: expected a finite duration",
    ),
    ("slow-factor-inf", doc(faults=[{"at": 10, "slow": "n1", "factor": float("inf")}]), "faults.0.factor"),
    ("crash-at-inf", doc(faults=[{"at": float("inf"), "crash": "n1"}]), "faults.0.at: expected a finite"),
    # booleans where counts and fractions go
    ("n-true", doc(quorum={"n": True}), "quorum.n: expected a whole number, found True"),
    ("r-true", doc(quorum={"r": True}), "quorum.r: expected a whole number of replicas"),
    ("clients-true", doc(workload={"clients": True}), "workload.clients: expected a whole number"),
    ("vnodes-false", doc(cluster={"vnodes": False}), "cluster.vnodes: expected a whole number"),
    (
        "read-fraction-true",
        doc(workload={"read_fraction": True}),
        "workload.read_fraction: expected a number",
    ),
    (
        "weights-true",
        doc(network={"latency": {"dist": "mixture", "components": [1, 2], "weights": [True, 1]}}),
        "network.latency.weights.0: expected a number",
    ),
    (
        "trials-true",
        doc(workload={"arrival": {"type": "probe", "delays": [0], "trials": True}}),
        "workload.arrival.trials: expected a whole number",
    ),
    # negative delays
    (
        "hedge-after-negative",
        doc(quorum={"hedge": {"after": "-5ms"}, "read_fanout": "quorum"}),
        "quorum.hedge.after: expected a delay >= 0",
    ),
    ("backoff-negative", doc(quorum={"retry_backoff": "-1ms"}), "quorum.retry_backoff"),
    # sizes that would never finish or never fit
    ("nodes-1e9", doc(cluster={"nodes": 10**9}), "cluster.nodes: expected at most 1000 nodes"),
    ("vnodes-1e9", doc(cluster={"vnodes": 10**9}), "cluster.vnodes"),
    ("ring-too-large", doc(cluster={"nodes": 800, "vnodes": 64}), "cluster.vnodes: 800 nodes x 800 x 64"),
    ("clients-1e9", doc(workload={"clients": 10**9}), "workload.clients"),
    ("keys-1e12", doc(workload={"keys": {"count": 10**12}}), "workload.keys.count"),
    ("zipf-keys-1e9", doc(workload={"keys": {"count": 10**9, "popularity": "zipf"}}), "workload.keys.count"),
    ("n-200", doc(cluster={"nodes": 300}, quorum={"n": 200}), "quorum.n"),
    (
        "probe-trials-1e12",
        doc(workload={"arrival": {"type": "probe", "delays": [0], "trials": 10**12}}),
        "workload.arrival.trials: 1000000000000 trials",
    ),
    (
        "probe-lanes-1e9",
        doc(workload={"arrival": {"type": "probe", "delays": [0], "concurrency": 10**9}}),
        "workload.arrival.concurrency",
    ),
    ("rate-1e12", doc(workload={"arrival": {"rate": "1e12/s"}}), "workload.arrival.rate: 1e+12/s for 200 ms"),
    ("duration-centuries", doc(duration="1e11s"), "workload.arrival.rate: 1e+03/s for 1e+14 ms"),
    ("duration-too-long", doc(duration="1e13s"), "duration: expected a duration of at most 1e+15 ms"),
    (
        "window-1e-9",
        doc(metrics={"window": 1e-9}),
        "metrics.window: about 250 ms of simulated time: 2.5e+11 windows of 1e-09 ms",
    ),
    ("anti-entropy-1e-9", doc(repair={"anti_entropy": {"interval": 1e-9}}), "repair.anti_entropy.interval"),
    (
        "handoff-1e-9",
        doc(quorum={"failover": "sloppy"}, repair={"handoff_interval": 1e-9}),
        "repair.handoff_interval",
    ),
    (
        "ewma-reset-1e-9",
        doc(quorum={"replica_selection": "latency_ewma", "ewma_reset": 1e-9}),
        "quorum.ewma_reset",
    ),
    ("mttf-mttr-zero", doc(faults=[{"random_crashes": "all", "mttf": 0, "mttr": 0}]), "faults.0.mttf"),
    ("closed-many-clients", closed(clients=10**6, duration="1h"), "workload.clients: 1000000 clients"),
    (
        "closed-endless",
        doc(network={"latency": 0}, workload={"arrival": {"type": "closed", "think_time": 0}}),
        "workload.arrival.think_time: a closed loop with zero think time",
    ),
    # the README rejects these combinations
    ("slow-zero-service", doc(faults=[{"at": 10, "slow": "n2", "factor": 5}]), "faults.0.slow: node 'n2'"),
    ("sweep-empty-factor", doc(sweep={"quorum.r": []}), "sweep: quorum.r: an empty list of values"),
    ("sweep-bad-where", doc(sweep={"quorum.r": [1, 2], "where": "r +"}), "sweep: where: not a valid"),
    ("sweep-bad-point", doc(sweep={"quorum.r": [1, 4]}), "run 1 (r=4): quorum.r: 4 is larger than quorum.n"),
    # names that would leave the results folder
    ("name-parent", doc(name="../escape"), "name: expected letters, digits"),
    ("name-absolute", doc(name="/tmp/escape"), "name: expected letters, digits"),
    ("name-too-long", doc(name="n" * 300), "name: String should have at most 100 characters"),
    # keys given twice (YAML keeps the last silently)
    ("duplicate-seed", "name: d\nseed: 5\nseed: 6\n", "seed: duplicate key (line 3)"),
    ("duplicate-quorum-r", "name: d\nquorum: {n: 3, r: 2, w: 2, r: 1}\n", "quorum.r: duplicate key (line 2)"),
    (
        "duplicate-fault-kind",
        "name: d\nfaults:\n  - {at: 100ms, crash: n1, crash: n2}\n",
        "faults.0.crash: duplicate key (line 3)",
    ),
    # names that fault targets would read two ways
    (
        "node-named-all",
        doc(cluster={"nodes": [{"name": "all"}, {"name": "n2"}]}),
        "cluster.nodes.0.name: 'all' is a fault keyword",
    ),
    (
        "region-named-majority",
        doc(cluster={"nodes": [{"name": "n1", "region": "majority"}]}),
        "cluster.nodes.0.region: 'majority' is a fault keyword",
    ),
    (
        "region-named-like-a-node",
        doc(cluster={"nodes": [{"name": "n1"}, {"name": "n2", "region": "n1"}]}),
        "cluster.nodes.1.region: 'n1' is also a node name",
    ),
    # pydantic's words, and values no field takes
    ("binary-seed", "name: b\nseed: !!binary aGVsbG8=\n", "seed: expected a whole number, found binary data"),
    ("key-true", "name: k\ntrue: 3\n", "(top level): keys must be names, found the key True"),
    ("key-null", "name: k\nnull: 3\n", "(top level): keys must be names, found the key None"),
    ("r-fraction", doc(quorum={"r": 2.5}), "quorum.r: expected a whole number of replicas or one of one"),
    ("nodes-fraction", doc(cluster={"nodes": 5.5}), "cluster.nodes: expected a number of nodes or a list"),
    ("seed-1e40-text", "name: s\nseed: 1e40\n", "seed: expected a whole number of at most 30 digits"),
    # a local level where coordinators hold no replicas: every such operation would time out
    (
        "local-level-without-replicas",
        doc(
            cluster={"nodes": [{"name": "a1", "region": "a"}, {"name": "b1", "region": "b"}]},
            quorum={"n": 1, "replicas": {"b": 1}, "r": "local_quorum", "w": 1},
            workload={"client_regions": ["a", "b"], "clients": 2},
        ),
        "quorum.r: local_quorum counts only replicas in the coordinator's region",
    ),
    # a size blamed on the field that causes it
    (
        "retries-span",
        doc(duration="3s", cluster={"nodes": 100}, quorum={"retries": 20, "retry_backoff": "100ms"}),
        "quorum.retry_backoff: 20 retries with a doubling backoff from 100 ms",
    ),
    (
        "retry-backoff-1e15",
        doc(quorum={"retries": 20, "retry_backoff": 1e15}),
        "quorum.retry_backoff: 20 retries with a doubling backoff from 1e+15 ms",
    ),
]
SPECIAL = {"dev-zero": "/dev/zero", "dev-urandom": "/dev/urandom"}
SPECIAL_CASES = [
    ("dev-zero", "/dev/zero is a character device"),
    ("dev-urandom", "/dev/urandom is a character device"),
    ("fifo", "is a FIFO (named pipe)"),
    ("samples-dev-zero", "network.latency.file: the empirical samples file /dev/zero is a character device"),
    ("samples-fifo", "is a FIFO (named pipe), not a regular file"),
    ("samples-too-large", "is larger than the limit of 67,108,864 bytes"),
]


def limited() -> None:
    """Run in the child before exec: cap its address space, so a memory blow-up fails fast."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def qsim(cwd: Path, *args: str, timeout: float = 30) -> tuple[int, str, float]:
    """Run ``python -m qsim ARGS`` in ``cwd``; return its exit status, its output and its wall time."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "qsim", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        preexec_fn=limited, env=env, errors="replace",
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - started


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (FIFOs and devices aside) with a hash of its content."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        for path in sorted(folder.rglob("*"))
        if path.is_file() or path.is_dir()
    }


def assert_clean_failure(status: int, output: str, expected: str) -> None:
    assert status != 0, output
    assert "Traceback" not in output, output
    assert expected in output, output


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> dict:
    """Validate every file case in one subprocess; return each case's block of output."""
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for name, content, _ in FILE_CASES:
        path = folder / f"{name}.yaml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        paths[name] = str(path)
    paths |= {name: target for name, target in SPECIAL.items()}
    paths["fifo"] = str(folder / "fifo.yaml")
    os.mkfifo(paths["fifo"])
    for name, target in (("samples-dev-zero", "/dev/zero"), ("samples-fifo", str(folder / "samples.fifo"))):
        paths[name] = str(folder / f"{name}.yaml")
        Path(paths[name]).write_text(doc(network={"latency": {"dist": "empirical", "file": target}}))
    os.mkfifo(folder / "samples.fifo")
    with open(folder / "big.csv", "wb") as handle:
        handle.truncate(65 << 20)  # sparse: costs no disk
    paths["samples-too-large"] = str(folder / "samples-too-large.yaml")
    Path(paths["samples-too-large"]).write_text(
        doc(network={"latency": {"dist": "empirical", "file": "big.csv"}})
    )
    before = tree(folder)
    status, output, wall = qsim(folder, "validate", *paths.values())
    blocks = _blocks(output, paths)
    return {
        "status": status,
        "output": output,
        "wall": wall,
        "blocks": blocks,
        "unchanged": tree(folder) == before,
    }


def _blocks(output: str, paths: dict[str, str]) -> dict[str, str]:
    """Split validate's output into each file's lines (a file's block starts with its path)."""
    owner = {path: name for name, path in paths.items()}
    blocks: dict[str, list[str]] = {name: [] for name in paths}
    current = None
    for line in output.splitlines():
        start = next((p for p in owner if line.startswith(f"{p}:")), None)
        if start is not None:
            current = owner[start]
        if current is not None:
            blocks[current].append(line)
    return {name: "\n".join(lines) for name, lines in blocks.items()}


def test_the_batch_fails_fast_without_a_traceback_and_writes_nothing(batch):
    assert batch["status"] == 1, batch["output"]
    assert "Traceback" not in batch["output"], batch["output"]
    assert batch["wall"] < 20, batch["wall"]  # ~80 hostile files, each refused in milliseconds
    assert batch["unchanged"]


@pytest.mark.parametrize(("name", "expected"), [(n, e) for n, _, e in FILE_CASES] + SPECIAL_CASES)
def test_validate_refuses_with_the_field_path(batch, name, expected):
    block = batch["blocks"][name]
    assert "problem" in block, batch["output"]
    assert expected in block, block
    assert not block.rstrip().endswith(": OK"), block


# --- qsim run and qsim sweep, each in its own subprocess ---------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("alias-bomb", bomb(9), "YAML aliases expand to more than"),
        (
            "normal-nan-mean",
            doc(network={"latency": {"dist": "normal", "mean": float("nan"), "sd": 1}}),
            "network.latency.mean: expected a finite duration",
        ),
        ("rate-1e12", doc(workload={"arrival": {"rate": "1e12/s"}}), "workload.arrival.rate"),
        ("window-1e-9", doc(metrics={"window": 1e-9}), "metrics.window"),
        ("mttf-mttr-zero", doc(faults=[{"random_crashes": "all", "mttf": 0, "mttr": 0}]), "faults.0.mttf"),
        (
            "closed-endless",
            doc(network={"latency": 0}, workload={"arrival": {"type": "closed", "think_time": 0}}),
            "workload.arrival.think_time",
        ),
    ],
)
def test_run_refuses_before_anything_runs(tmp_path, name, content, expected):
    (tmp_path / "s.yaml").write_text(content)
    before = tree(tmp_path)
    status, output, wall = qsim(tmp_path, "run", "s.yaml")
    assert_clean_failure(status, output, expected)
    assert wall < 15
    assert tree(tmp_path) == before  # no results folder


@pytest.mark.parametrize(
    ("target", "expected"),
    [("/dev/zero", "not a regular file"), ("fifo", "not a regular file"), (".", "is a directory")],
)
def test_run_refuses_a_file_that_is_not_a_regular_file(tmp_path, target, expected):
    if target == "fifo":
        os.mkfifo(tmp_path / "fifo")  # opening it for reading would block until a writer came
    status, output, wall = qsim(tmp_path, "run", target)
    assert_clean_failure(status, output, expected)
    assert wall < 15


@pytest.mark.parametrize(
    ("args", "escape"),
    [
        (["--set", "name=../escape", "--factor", "quorum.r=1,2"], "escape"),
        (["--set", "name=../escape", "--factor", "name=a,b"], "escape"),
        (["--set", "name={abs}", "--factor", "name=a,b"], "abs"),
    ],
    ids=["parent", "parent-with-name-factor", "absolute-with-name-factor"],
)
def test_sweep_never_writes_outside_results(tmp_path, args, escape):
    work = tmp_path / "work"
    work.mkdir()
    (work / "s.yaml").write_text(doc())
    (work / "results" / "kept").mkdir(parents=True)
    (work / "results" / "kept" / "runs.csv").write_text("written before\n")
    args = [a.replace("{abs}", str(tmp_path / "abs")) for a in args]
    before = tree(tmp_path)
    status, output, _ = qsim(work, "sweep", "s.yaml", *args, "--executor", "serial", "--no-plots")
    assert_clean_failure(status, output, "name: expected letters, digits")
    assert tree(tmp_path) == before  # nothing written anywhere, nothing already written lost
    assert not (tmp_path / escape).exists()


def test_sweep_refuses_a_factor_value_alias_bomb(tmp_path):
    (tmp_path / "s.yaml").write_text(doc())
    levels = [f"&a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    value = ",".join(["&a0 [x,x,x,x,x,x,x,x,x,x]", *levels])
    status, output, wall = qsim(tmp_path, "sweep", "s.yaml", "--factor", f"description={value}", "--dry-run")
    assert_clean_failure(status, output, "description")
    assert "YAML aliases expand to more than" in output
    assert wall < 15


# --- --set and --factor, in-process ------------------------------------------------------------


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture()
def scenario(tmp_path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(doc())
    return path


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("duration=.inf", "duration: expected a finite duration"),
        ("quorum.n=true", "quorum.n: expected a whole number, found True"),
        ("quorum.hedge={after: -5ms}", "quorum.hedge.after: expected a delay >= 0"),
        ("cluster.nodes=1000000000", "cluster.nodes: expected at most 1000 nodes"),
        ("workload.keys.count=" + "9" * 5000, "workload.keys.count: an integer of 5000 characters"),
        ("description=" + "[" * 100 + "]" * 100, "nesting deeper than 64"),
        ("metrics.window=1e-9", "metrics.window"),
        ("seed=-1", "seed"),
        ("network.latency={dist: normal, mean: .nan, sd: 1}", "network.latency.mean"),
        ("name=../../etc", "name: expected letters, digits"),
    ],
)
def test_set_refuses_with_the_field_path(scenario, override, expected):
    started = time.perf_counter()
    result = invoke("validate", str(scenario), "--set", override)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert expected in result.output, result.output
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    ("factor", "expected"),
    [
        ("quorum.n=true,3", "quorum.n: expected a whole number, found True"),
        ("duration=.inf,1s", "duration: expected a finite duration"),
        ("workload.keys.count=" + "9" * 5000, "workload.keys.count.0: an integer of 5000 characters"),
        ("metrics.window=1e-9", "metrics.window"),
    ],
)
def test_factor_refuses_with_the_field_path(scenario, factor, expected):
    result = invoke("sweep", str(scenario), "--factor", factor, "--dry-run")
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert expected in result.output, result.output


# --- the limits never refuse real use ----------------------------------------------------------


def test_shipped_scenarios_stay_valid():
    paths = sorted(str(p) for p in (ROOT / "scenarios").glob("*.yaml"))
    result = invoke("validate", *paths)
    assert result.exit_code == 0, result.output


def test_a_fifty_million_operation_run_is_not_refused(scenario):
    loaded = load_scenario(scenario, ["duration=100s", "workload.arrival.rate=500000/s",
                                      "workload.keys.count=10000000"])  # fmt: skip
    work = estimate(loaded)
    assert work.operations == pytest.approx(5e7)
    assert work.operations < MAX_OPERATIONS
    assert invoke("validate", str(scenario), "--set", "duration=100s", "--set",
                  "workload.arrival.rate=500000/s").exit_code == 0  # fmt: skip


def test_large_but_plausible_clusters_and_sweeps_are_not_refused(scenario):
    for override in (
        ["cluster.nodes=300", "cluster.vnodes=16", "quorum.n=5"],  # 1.4M ring entries
        ["cluster.nodes=1000", "cluster.vnodes=8"],
        ["workload.clients=100000", "workload.arrival={type: closed, think_time: 10ms}"],
        ["workload.keys={count: 2000000000, popularity: uniform}"],
        ["workload.keys={count: 20000000, popularity: zipf}"],
        ["workload.arrival={type: probe, delays: [0, 1ms, 10ms], trials: 1000000}"],
        ["duration=1h", "metrics.window=1s"],
        ["quorum.timeout=1h", "quorum.retries=20"],
    ):
        result = invoke("validate", str(scenario), *(a for o in override for a in ("--set", o)))
        assert result.exit_code == 0, (override, result.output)


# --- one problem per field, in qsim's words ----------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("quorum.r=2.5", "quorum.r: expected a whole number of replicas"),
        ("quorum.r=null", "quorum.r: expected a whole number of replicas"),
        ("quorum.r=", "quorum.r: expected a whole number of replicas"),
        ("cluster.nodes=5.5", "cluster.nodes: expected a number of nodes or a list of nodes, found 5.5"),
        ("faults=", "faults: expected a list of faults, found None"),
        ("faults.0.at=1s", "faults: no item 0: the scenario has no faults; set the whole list"),
        ("quorum=3", "quorum: expected a mapping of quorum fields, found 3"),
        ("faults=[{at: 1, degrade: [n1]}]", "faults.0.degrade: expected 'all', a name or a list of 2 items"),
        ("faults=[{at: 1, partition: [[n1, 5]]}]", "faults.0.partition.0: expected a list or one of"),
        ("quorum.replicas={1: 3}", "quorum.replicas: keys must be names, found the key 1"),
        (
            "network.latency={dist: empirical, file: x.csv, column: 1.5}",
            "network.latency.column: expected a name or a whole number, found 1.5",
        ),
    ],
)
def test_one_problem_per_field_in_qsim_words(scenario, override, expected):
    result = invoke("validate", str(scenario), "--set", override)
    assert result.exit_code == 1
    assert expected in result.output, result.output
    assert "1 problem in the scenario" in result.output, result.output
    for leak in (
        "constrained-int",
        "valid tuple",
        "valid dictionary",
        "instance of",
        "literal[",
        "Keys should",
    ):
        assert leak not in result.output, result.output


@pytest.mark.parametrize(
    ("overrides", "field", "value"),
    [
        (["cluster.nodes=5.0"], "nodes", 5),
        (["cluster.nodes='4'"], "nodes", 4),
        (["quorum.n=3.0", "quorum.r=2.0"], "r", 2),
        (['quorum.r="2"'], "r", 2),
        (["seed=1_000"], "seed", 1000),
        (["seed=1e18"], "seed", 10**18),  # YAML 1.1 reads 1e18 as text: a number-looking string
        (["workload.clients=2.0"], "clients", 2),
    ],
)
def test_a_whole_number_is_accepted_however_it_is_written(scenario, overrides, field, value):
    loaded = load_scenario(scenario, overrides)
    found = {
        "nodes": len(loaded.cluster.nodes),
        "r": loaded.quorum.r,
        "seed": loaded.seed,
        "clients": loaded.workload.clients,
    }[field]
    assert found == value and isinstance(found, int)


def test_duplicate_keys_are_refused_in_set_and_factor_values(scenario):
    result = invoke("validate", str(scenario), "--set", "quorum={r: 1, r: 2}")
    assert result.exit_code == 1
    assert "quorum.r: duplicate key (line 1)" in result.output, result.output
    result = invoke("sweep", str(scenario), "--factor", "quorum={r: 1, r: 2},{r: 2}", "--dry-run")
    assert result.exit_code == 1
    assert "quorum.0.r: duplicate key (line 1)" in result.output, result.output


def test_a_file_name_that_cannot_be_the_name_is_reported_as_such(tmp_path):
    folder = tmp_path / "dir with space"
    folder.mkdir()
    path = folder / "my scen.yaml"
    path.write_text(
        yaml.safe_dump({k: v for k, v in merged(BASE, {"quorum": {"r": 9}}).items() if k != "name"})
    )
    result = invoke("validate", str(path))
    assert result.exit_code == 1
    assert "name: not given, and the file name 'my scen' cannot stand in for it" in result.output
    assert "give the scenario a name" in result.output
    assert "quorum.r: 9 is larger than quorum.n" in result.output  # every problem at once
    assert "found 'my scen'" not in result.output
    assert invoke("validate", str(path), "--set", "name=ok", "--set", "quorum.r=2").exit_code == 0


# --- sweep errors: once, up front, in qsim's words ---------------------------------------------


def test_an_invalid_seed_is_reported_once_before_expansion(scenario):
    result = invoke("sweep", str(scenario), "--seeds", "99999999999999999999,1", "--dry-run")
    assert result.exit_code == 1
    assert result.output.count("99999999999999999999") == 1, result.output
    assert "seeds: 99999999999999999999 is not a seed" in result.output
    assert "where" not in result.output


def test_an_unknown_factor_path_is_reported_once_without_the_where_hint(scenario):
    # Needs plan() in qsim/sweep/run.py to report through qsim.sweep.expand.invalid_points.
    result = invoke("sweep", str(scenario), "--factor", "quorum.nosuch=1,2", "--seeds", "100", "--dry-run")
    assert result.exit_code == 1
    assert "every run: quorum.nosuch: unknown key" in result.output, result.output
    assert result.output.count("quorum.nosuch") == 1, result.output
    assert "where" not in result.output


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("0.1**-1000 > 1", "a number too large to compute"),
        ("(-8)**0.5 > 0", "is not a real number"),
        ("max(r)", "max() takes two or more numbers"),
        ("1", "'1' gives 1, not true or false"),
        ("r", "'r' gives 1, not true or false"),
    ],
)
def test_where_errors_are_in_qsim_words(scenario, where, expected):
    result = invoke("sweep", str(scenario), "--factor", "quorum.r=1,2", "--where", where, "--dry-run")
    assert result.exit_code == 1
    assert expected in result.output, result.output
    for leak in ("Numerical result", "complex", "not iterable", "not supported between"):
        assert leak not in result.output, result.output


def test_a_huge_where_is_refused_with_a_short_message(scenario):
    where = "r > 1 and " * 50_000 + "r > 0"  # 500 KB
    result = invoke("sweep", str(scenario), "--factor", "quorum.r=1,2", "--where", where, "--dry-run")
    assert result.exit_code == 1
    assert "longer than the limit of 1,000" in result.output, result.output[:500]
    assert len(result.output) < 1000
