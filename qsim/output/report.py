"""Human-readable summaries of a run: the terminal table and summary.md."""

from __future__ import annotations

from qsim.units import counted

_LATENCY_FIELDS = ("mean", "p50", "p90", "p99", "p999", "max")


def quorum_text(quorum: dict) -> str:
    """The protocol's quorums in a few words: ``N=3 R=2 W=2``, a quorum system's, or the leader protocol's."""
    if quorum.get("system"):
        return f"{quorum['system']} quorum system over {quorum['n']} nodes, strategy {quorum['strategy']}"
    if quorum.get("protocol") == "leader":
        return (
            f"leader protocol, N={quorum['n']} Q1={quorum['election_quorum']} "
            f"Q2={quorum['replication_quorum']}, {quorum['read_mode']} reads"
        )
    return f"N={quorum['n']} R={quorum['r']} W={quorum['w']}"


def leader_line(summary: dict) -> str | None:
    """Elections and time without a leader in one line (None: not a leader-protocol run)."""
    leader = summary.get("leader")
    if not leader:
        return None
    without = leader["time_without_leader_ms"]
    still = without["open_since"] is not None  # an interval still open at the end counts too
    longest, count = without["longest"], without["count"] + still
    text = (
        f"leader: {counted(leader['elections'], 'election')} ({leader['split_votes']} without a "
        f"winner), {counted(leader['terms'], 'term')}, {counted(leader['leader_changes'], 'leader')} "
        f"served; without a leader {without['total']:.1f} ms in {counted(count, 'interval')} "
        f"(longest {longest:.1f} ms{', the last still open at the end' if still else ''})"
    )
    if leader["max_leaders_per_term"] > 1:
        text += f"; UNSAFE: {leader['max_leaders_per_term']} leaders in one term"
    return text


def leader_lines(summary: dict) -> list[str]:
    """:func:`leader_line`, then failovers, what clients waited, commit latency and the leader's load."""
    first = leader_line(summary)
    if first is None:
        return []
    leader, lines = summary["leader"], [first]
    failover, crash, gap = leader["failover_ms"], leader["crash_to_leader_ms"], leader["client_write_gap_ms"]
    if failover["count"]:
        text = (
            f"failovers: {failover['count']}, a new leader served p50 {failover['p50']:.1f} ms "
            f"(max {failover['max']:.1f} ms) after the old one stopped"
        )
        if crash["count"]:
            text += f"; after a crash p50 {crash['p50']:.1f} ms (max {crash['max']:.1f} ms, {crash['count']})"
        if gap["count"]:
            text += (
                f"; clients had no write acknowledged for p50 {gap['p50']:.1f} ms (max {gap['max']:.1f} ms)"
            )
        lines.append(text)
    commit = summary.get("writes", {}).get("commit_latency_ms", {})
    load = leader["load"]
    parts = []
    if commit.get("count"):
        parts.append(f"commit latency p50 {commit['p50']:.2f} ms, p99 {commit['p99']:.2f} ms")
    if load["ratio"] is not None:
        parts.append(
            f"a leader handled {load['ratio']:.2f}x a follower's messages "
            f"({load['leader_msgs_per_s']:.0f}/s vs {load['follower_msgs_per_s']:.0f}/s)"
        )
    if leader.get("lease_reads"):
        parts.append(f"{leader['lease_reads']:,} reads answered from the leader's lease")
    if parts:
        lines.append("; ".join(parts))
    return lines


def number(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def percent(value) -> str:
    return "-" if value is None else f"{100 * value:.3f}%"


def kind_rows(summary: dict) -> list[list[str]]:
    rows = []
    for kind in ("reads", "writes"):
        part = summary[kind]
        latency = part["latency_ms"]
        rows.append(
            [kind, str(part["count"]), str(part["ok"]), percent(part["availability"])]
            + [number(latency[field]) for field in _LATENCY_FIELDS]
        )
    return rows


HEADER = ["", "count", "ok", "availability", "mean", "p50", "p90", "p99", "p99.9", "max"]


def staleness_line(staleness: dict) -> str:
    checked, stale = staleness["reads_checked"], staleness["stale"]
    line = f"stale reads: {stale} of {checked} checked ({percent(staleness['stale_fraction'])})"
    if stale:
        missed = [(k, n) for k, n in staleness["k"].items() if k != "0"]
        ks = ", ".join(f"k={k}: {n}" for k, n in missed[:5])
        line += f"; {ks}" + (
            f", k>{missed[4][0]}: {sum(n for _, n in missed[5:])}" if len(missed) > 5 else ""
        )
    if staleness["reads_unchecked"]:
        line += f"; {staleness['reads_unchecked']} ok reads had no committed write before them"
    return line


def visibility_line(staleness: dict, limit: int = 6) -> str | None:
    points = staleness["t_visibility"]
    if not points:
        return None
    step = max(1, len(points) // limit)
    shown = points[::step][:limit]
    text = ", ".join(f"{p['t_ms']:g} ms: {100 * p['p_consistent']:.2f}%" for p in shown)
    return f"t-visibility P(consistent): {text}"


def fault_lines(summary: dict) -> list[str]:
    faults, durability = summary["faults"], summary["durability"]
    lines = []
    if faults["count"]:
        inside, outside = faults["inside"], faults["outside"]
        lines.append(
            f"faults: {faults['count']}; availability inside fault windows {percent(inside['availability'])}"
            f" ({inside['ops']} ops), outside {percent(outside['availability'])} ({outside['ops']} ops); "
            f"stale reads inside {percent(inside['stale_fraction'])}, "
            f"outside {percent(outside['stale_fraction'])}"
        )
        recovered = [r for r in faults["recovery"] if r["time_to_recover_ms"] is not None]
        never = [str(r["fault_id"]) for r in faults["recovery"] if r["time_to_recover_ms"] is None]
        if recovered or never:
            worst = max((r["time_to_recover_ms"] for r in recovered), default=None)
            text = (
                f"recovery: back to the pre-fault availability at most {worst:g} ms after a fault ended"
                if worst is not None
                else "recovery:"
            )
            lines.append(text + (f"; never after fault(s) {', '.join(never)}" if never else ""))
    if faults["count"] or durability["lost_writes"] or durability["lww_lost_updates"]:
        lines.append(
            f"durability: {durability['lost_writes']} of {durability['acknowledged_writes']} "
            f"acknowledged writes lost; {durability['lww_lost_updates']} last-writer-wins lost updates"
        )
    return lines


KIND_WORDS = {
    "linearizability": "linearizability",
    "read_your_writes": "read-your-writes",
    "monotonic_reads": "monotonic reads",
    "monotonic_writes": "monotonic writes",
    "writes_follow_reads": "writes-follow-reads",
}


def consistency_line(summary: dict) -> str | None:
    """The linearizability and session-guarantee counts in one line (None: the run has no such section)."""
    consistency = summary.get("consistency")
    if not consistency:
        return None
    linear, sessions = consistency["linearizability"], consistency["sessions"]
    line = (
        f"consistency: {linear['keys_invalid']} of {linear['keys_checked']} keys not linearizable "
        f"({linear['violations']} violations"
        + (f", {linear['keys_unknown']} keys unknown" if linear["keys_unknown"] else "")
        + f"); session guarantees over {counted(sessions['clients_checked'], 'client')}, violations: "
    )
    kinds = [kind for kind in KIND_WORDS if kind in sessions]
    return line + ", ".join(f"{KIND_WORDS[kind]} {sessions[kind]}" for kind in kinds)


def anomaly_lines(summary: dict) -> list[str]:
    """The anomalies a summary shows (the first few of each kind), one line each."""
    consistency = summary.get("consistency") or {}
    return [
        f"{KIND_WORDS.get(a['kind'], a['kind'])}, key {a['key']}, ops {', '.join(map(str, a['ops']))}: "
        + a["note"]
        for a in consistency.get("anomalies", [])
    ]


def load_lines(summary: dict) -> list[str]:
    """The busiest node against the mean, the hottest key, and hedged requests if any."""
    load = summary.get("load")
    if not load or load["imbalance"] is None:
        return []
    line = f"load: busiest node {load['busiest_node']} at {load['imbalance']:.2f}x the mean"
    if load["hot_keys"]:
        hottest = load["hot_keys"][0]
        line += f"; hottest key {hottest['key']} ({hottest['ops']} ops)"
    extra = summary.get("hedging", {}).get("extra_requests", 0)
    if extra:
        line += f"; {extra} hedged requests"
    return [line]


def quorum_system_lines(summary: dict) -> list[str]:
    """The quorum system on paper (resilience, availability, load, capacity) and its measured load."""
    section = summary.get("quorum_system")
    if not section:
        return []
    resilience, available = section["resilience"], section["availability"]
    intersect = "meet" if section["writes_intersect"] else "may miss"
    lines = [
        f"quorum system: {section['system']}; strategy {section['strategy']}; writes {intersect} each other",
        f"  on paper: resilience read {resilience['read']}, write {resilience['write']}; availability read "
        f"{available['read']:.6f}, write {available['write']:.6f} ({_nodes_up(available['nodes_up'])})",
    ]
    nodes = section["nodes"]
    if section["load"] is None:
        busiest = max(nodes, key=lambda name: nodes[name]["load"])
        lines.append(
            f"  load: busiest node {busiest} measured {nodes[busiest]['load']:.4f} (a strategy per endpoint)"
        )
        return lines
    capacity = section["capacity_ops_s"]
    worst = max(nodes, key=lambda name: abs(nodes[name]["load"] - nodes[name]["analytic_load"]))
    node = nodes[worst]
    lines.append(
        f"  load {section['load']:.4f} on paper"
        + (f", capacity {capacity:,.0f} ops/s" if capacity is not None else "")
        + f"; measured per node over {section['attempts']} attempts, farthest from paper: {worst} "
        f"{node['load']:.4f} against {node['analytic_load']:.4f} (SE {node['se']:.4f})"
    )
    return lines


QUORUM_NODE_HEADER = ["node", "load measured", "load on paper", "SE", "requests"]


def quorum_node_rows(summary: dict) -> list[list[str]]:
    """Per node of a quorum system: its measured load, its analytic load and SE, its requests."""
    section = summary.get("quorum_system") or {}

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    return [
        [name, number(node["load"]), number(node["analytic_load"]), number(node["se"]), str(node["requests"])]
        for name, node in section.get("nodes", {}).items()
    ]


def _nodes_up(up: dict[str, float]) -> str:
    values = set(up.values())
    if len(values) == 1:
        return f"nodes up {values.pop():g}"
    return "nodes up " + ", ".join(f"{name} {a:g}" for name, a in up.items())


def oracle_lines(summary: dict) -> list[str]:
    """One line for the oracle's verdict, and one per disagreement."""
    checks = summary.get("oracle") or []
    if not checks:
        return []
    models = sorted({check["model"].split(",")[0].split(":")[0] for check in checks})
    agree = sum(check["agrees"] for check in checks)
    lines = [f"oracle: {agree} of {len(checks)} checks agree with theory ({'; '.join(models)})"]
    lines += [
        f"  DISAGREES: {c['quantity']}: theory {c['theory']:.4g}, simulated {c['simulated']:.4g} "
        f"(interval {c['ci_low']:.4g} to {c['ci_high']:.4g}; {c['model']})"
        for c in checks
        if not c["agrees"]
    ]
    return lines


def ops_text(summary: dict) -> str:
    """How many operations ran, and how many of them the warm-up holds (counted nowhere else)."""
    total = summary["runtime"]["ops"]
    warmup = total - summary["reads"]["count"] - summary["writes"]["count"]
    return f"{total} ops" + (f" ({warmup} in the warm-up, left out)" if warmup else "")


def clock_text(runtime: dict) -> str:
    """How much simulated time a run covered, or, for a Monte Carlo run, that it has no clock."""
    if runtime["sim_ms"] is None:
        return f"Monte Carlo: {runtime['trials']} trials, no simulated clock"
    return f"{runtime['sim_ms'] / 1e3:.3f} s simulated"


def time_line(runtime: dict, command_s: float | None = None) -> str:
    """What the run cost in wall time: the simulation, and the whole command when it is given.

    The simulation is :func:`qsim.simulate` (or the Monte Carlo run): building the model, the event
    loop (``engine_s``; drawing the trials for Monte Carlo), checking and summarizing the history;
    ``command_s`` also holds reading the scenario and writing the results and plots.
    """
    ops_per_s = runtime["ops_per_s"]
    rate = f", {ops_per_s:,.0f} ops/s" if ops_per_s else ""
    engine = "event loop" if runtime["sim_ms"] is not None else "drawing the trials"
    simulation = f"the simulation {runtime['wall_s']:.2f} s ({engine} {runtime['engine_s']:.2f} s{rate})"
    if command_s is None:
        return f"wall time: {simulation}"
    return f"wall time: {command_s:.2f} s from reading the scenario to the results written; {simulation}"


def terminal_table(
    summary: dict, manifest: dict, where: str | None = None, command_s: float | None = None
) -> str:
    """Return the compact table ``qsim run`` prints at the end.

    Args:
        where: the results folder, named on the last line.
        command_s: the command's wall time, from reading the scenario to the results written.
    """
    runtime = summary["runtime"]
    head = (
        f"{summary['scenario']} (run {summary['run_id']}, seed {summary['seed']}): "
        f"{quorum_text(summary['quorum'])}, {ops_text(summary)}, {clock_text(runtime)}"
    )
    rows = [HEADER, *kind_rows(summary)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    table = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines = [head, *table, "  (latency in ms over ok operations)", staleness_line(summary["staleness"])]
    visibility = visibility_line(summary["staleness"])
    if visibility:
        lines.append(visibility)
    lines += fault_lines(summary)
    lines += leader_lines(summary)
    lines += [line for line in (consistency_line(summary),) if line]
    lines += load_lines(summary)
    lines += quorum_system_lines(summary)
    lines += oracle_lines(summary)
    lines.append(time_line(runtime, command_s))
    if manifest.get("error"):
        lines.append(f"ERROR: the run stopped early: {manifest['error']}")
    if where:
        lines.append(f"results: {where}")
    return "\n".join(lines)


def t_range(point: dict) -> str:
    if "t_hi_ms" not in point:
        return f"{point['t_ms']:g}"
    high = point["t_hi_ms"]
    return f"{point['t_ms']:g}-{high:g}" if high is not None else f">= {point['t_ms']:g}"


def summary_markdown(summary: dict, manifest: dict) -> str:
    """Return summary.md: the headline numbers as Markdown tables."""
    out = [
        f"# {summary['scenario']}",
        "",
        f"Run `{summary['run_id']}`, seed {summary['seed']}, {quorum_text(summary['quorum'])}.",
        "",
        "## Operations",
        "",
        "| " + " | ".join(cell or "kind" for cell in HEADER) + " |",
        "|" + "---|" * len(HEADER),
        *("| " + " | ".join(row) + " |" for row in kind_rows(summary)),
        "",
        "Latency in milliseconds, over operations that completed ok.",
        "",
        "## Staleness",
        "",
        staleness_line(summary["staleness"]) + ".",
        "",
    ]
    points = summary["staleness"]["t_visibility"]
    if points:
        out += ["| t (ms) | P(consistent) | reads | 95% interval |", "|---|---|---|---|"]
        out += [
            f"| {t_range(p)} "
            f"| {p['p_consistent']:.4f} | {p['reads']} | {p['ci_low']:.4f}-{p['ci_high']:.4f} |"
            for p in points
        ]
        out.append("")
    faults = fault_lines(summary)
    if faults:
        out += ["## Faults", "", *(f"- {line}" for line in faults), ""]
    leader = leader_lines(summary)
    if leader:
        out += ["## Leader", "", *(f"- {line}." for line in leader), ""]
    system = quorum_system_lines(summary)
    if system:
        out += ["## Quorum system", "", *(f"- {line.strip()}" for line in system), ""]
        out += ["| " + " | ".join(QUORUM_NODE_HEADER) + " |", "|" + "---|" * len(QUORUM_NODE_HEADER)]
        out += ["| " + " | ".join(row) + " |" for row in quorum_node_rows(summary)] + [""]
    consistency = consistency_line(summary)
    if consistency:
        out += ["## Consistency", "", consistency + ".", ""]
        anomalies = anomaly_lines(summary)
        if anomalies:
            out += ["The first anomalies of each kind (ops are op ids in ops.parquet):", ""]
            out += [f"- {line}" for line in anomalies] + [""]
    checks = summary.get("oracle") or []
    if checks:
        out += [
            "## Oracle",
            "",
            "| quantity | model | theory | simulated | interval | agrees |",
            "|---|---|---|---|---|---|",
        ]
        out += [
            f"| {c['quantity']} | {c['model']} | {c['theory']:.4g} | {c['simulated']:.4g} | "
            f"{c['ci_low']:.4g} to {c['ci_high']:.4g} | {'yes' if c['agrees'] else '**no**'} |"
            for c in checks
        ]
        out.append("")
    if summary["nodes"]:  # a Monte Carlo run models no nodes
        out += ["## Nodes", "", "| node | messages received | utilization |", "|---|---|---|"]
        out += [
            f"| {name} | {n['messages']} | {percent(n['utilization'])} |"
            for name, n in summary["nodes"].items()
        ]
        out.append("")
    runtime = summary["runtime"]
    out += [
        "## Run",
        "",
        f"- {_simulated_time(runtime)}; operations: {runtime['ops']}; events: {runtime['events']}",
        f"- wall time of the simulation: {runtime['wall_s']:.3f} s (event loop {runtime['engine_s']:.3f} s);"
        " reading the scenario and writing the results are not included",
        f"- error: {manifest['error'] or 'none'}",
        "",
    ]
    return "\n".join(out)


def _simulated_time(runtime: dict) -> str:
    if runtime["sim_ms"] is None:
        return f"simulated time: none ({clock_text(runtime)})"
    return f"simulated time: {runtime['sim_ms']:.3f} ms"
