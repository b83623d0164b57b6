"""Analysis of saved results: loading runs and sweeps into pandas, and answering common questions.

Nothing here starts a simulation. The closed forms live in :mod:`qsim.analysis.theory`, the PBS
WARS Monte Carlo in :mod:`qsim.analysis.montecarlo`, and the comparison of a run with them in
:mod:`qsim.analysis.oracle`.
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
from qsim.timeline import availability_timeline

__all__ = [
    "SavedSweep",
    "availability_timeline",
    "k_distribution",
    "latency_percentiles",
    "load_sweep",
    "node_load",
    "stale_fraction",
    "t_visibility",
]
