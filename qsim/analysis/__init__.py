"""Analysis of saved results: loading runs and sweeps into pandas, and answering common questions.

Nothing here starts a simulation. The closed forms live in :mod:`qsim.analysis.theory`, the PBS
WARS Monte Carlo in :mod:`qsim.analysis.montecarlo`, and the comparison of a run with them in
:mod:`qsim.analysis.oracle`. The consistency checkers (:mod:`qsim.checks`) take any ops table, a
run's or one a user brings: ``check_linearizability(ops)``, ``check_sessions(ops)``.
"""

from qsim.analysis.questions import (
    SavedSweep,
    k_distribution,
    latency_percentiles,
    load_sweep,
    node_load,
    stale_fraction,
    t_visibility,
)
from qsim.checks.timeline import availability_timeline

__all__ = [
    "SavedSweep",
    "availability_timeline",
    "check_linearizability",
    "check_sessions",
    "k_distribution",
    "latency_percentiles",
    "load_sweep",
    "node_load",
    "stale_fraction",
    "t_for_consistency",
    "t_visibility",
]


def __getattr__(name: str):
    # The Monte Carlo engine loads on first use: saved results need none of it.
    if name == "t_for_consistency":
        from qsim.analysis.montecarlo_summary import t_for_consistency

        return t_for_consistency
    if name == "check_linearizability":
        from qsim.checks.linearizability import check_linearizability

        return check_linearizability
    if name == "check_sessions":
        from qsim.checks.sessions import check_sessions

        return check_sessions
    raise AttributeError(f"module 'qsim.analysis' has no attribute {name!r}")
