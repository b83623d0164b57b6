"""Quorum systems beyond "any R of N": weighted votes, grids, and expressions over node names.

A :class:`QuorumSystem` names its nodes and lists its minimal read and write quorums::

    from qsim.quorums import QuorumSystem
    grid = QuorumSystem.grid(list("abcdef"), rows=2, cols=3, read="row", write="row_cover")
    grid.describe()  # 'grid 2x3: reads = a row (2 quorums of 3), writes = ... (9 quorums of 2)'
    QuorumSystem.from_expressions(list("abcde"), read="a*b + c*d*e")  # writes: the minimal dual
    grid.intersection_problem()  # None, or a read and a write quorum (names) that do not meet
"""

from qsim.quorums.expressions import parse_expression
from qsim.quorums.masks import MAX_QUORUMS
from qsim.quorums.systems import GRID_SHAPES, QuorumSystem, minimal_sets, minimal_transversals

__all__ = [
    "GRID_SHAPES",
    "MAX_QUORUMS",
    "QuorumSystem",
    "minimal_sets",
    "minimal_transversals",
    "parse_expression",
]
