"""Expanding a sweep into runs: :func:`expand`, a pure function, and :func:`describe`.

:func:`expand` turns a :class:`~qsim.sweep.spec.Sweep` into numbered :class:`Point` objects;
:func:`describe` lists them as a table for ``--dry-run``.

Choices made where the design is silent:

- Points come in the order of nested loops over the factors in the user's order (the last factor
  varies fastest, as in ``itertools.product``), with the seeds innermost. A zip group stands at the
  place of whichever of its members comes first among the factors. A range may use factors listed
  after it: ranges are evaluated in dependency order, but that never changes the order of points.
- ``where`` must give true or false (a comparison, or ``and``/``or``/``not`` of comparisons); a
  number, even 0 or 1, is refused, so that ``where: r`` is not read as ``r != 0``.
- A range bound must give a whole number: an integer, or a float of integral value (``n / 2``
  with n = 4 gives 2.0, which counts as 2).
- A sweep has at most ``MAX_RUNS`` runs, so that a mistyped bound cannot hang expansion.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import yaml

from qsim.sweep.expr import Expression, ExpressionError
from qsim.sweep.spec import (
    MAX_RUNS,
    Factor,
    Sweep,
    SweepError,
    _aliases,
    _bounds,
    _brief,
    _dependencies,
    _freeze,
    _is_int,
    _plural,
    _problems,
    _range_text,
    _topological,
)


@dataclass(frozen=True)
class Point:
    """One run of a sweep.

    Attributes:
        index: its place in the expansion, from 0.
        factors: the value of each factor by path, in the sweep's factor order.
        seed: the replicate seed, or None for the scenario's own seed.
    """

    index: int
    factors: dict[str, object]
    seed: int | None

    @property
    def config(self) -> tuple:
        """A hashable key of the factor values, shared by the replicates of one configuration."""
        return tuple((path, _freeze(value)) for path, value in self.factors.items())


# --- expanding a sweep -------------------------------------------------------------------------


def expand(sweep: Sweep) -> list[Point]:
    """Return the runs of ``sweep``: one point per configuration that passes ``where``, per seed.

    Raises:
        SweepError: listing what is wrong, including a sweep that has no runs at all.
    """
    problems = _problems(sweep)
    if problems:
        raise SweepError(problems)
    configs = _filtered(sweep, _product(sweep))
    if len(configs) * len(sweep.seeds) > MAX_RUNS:
        raise SweepError([f"the sweep has {len(configs) * len(sweep.seeds)} runs, more than {MAX_RUNS}"])
    pairs = itertools.product(configs, sweep.seeds)
    return [Point(index, copy.deepcopy(config), seed) for index, (config, seed) in enumerate(pairs)]


def _product(sweep: Sweep) -> list[dict[str, object]]:
    """Return every configuration of the factors, before the filter, in the order of points."""
    aliases = _aliases(f.path for f in sweep.factors)
    units = _units(sweep)
    found: dict[str, str] = {}
    rows: list[tuple[dict, dict]] = [({}, {})]  # (value by path, rank by unit) of partial assignments
    for place in _unit_order(sweep, units, aliases):
        rows = _extend(rows, place, units[place], aliases, found)
        if not rows and not found:
            factor = units[place][0]
            empty = f"the range {factor.path} ({_range_text(factor)}) is empty for every configuration"
            raise SweepError([f"no runs: {empty}"])
    if found:
        raise SweepError(list(found.values()))
    rows.sort(key=lambda row: [row[1][place] for place in range(len(units))])
    return [{f.path: values[f.path] for f in sweep.factors} for values, _ in rows]


def _filtered(sweep: Sweep, configs: list[dict[str, object]]) -> list[dict[str, object]]:
    if sweep.where is None:
        return configs
    aliases = _aliases(f.path for f in sweep.factors)
    found: dict[str, str] = {}
    kept = [config for config in configs if _keep(sweep.where, _scope(config, aliases), found)]
    if found:
        raise SweepError(list(found.values()))
    if not kept:
        raise SweepError([f"no runs: the filter {sweep.where.excerpt} removed every configuration"])
    return kept


def _units(sweep: Sweep) -> list[tuple[Factor, ...]]:
    """Group the factors into units of the product: a zip group, or a factor by itself."""
    by_path = {f.path: f for f in sweep.factors}
    group_of = {path: group for group in sweep.zips for path in group}
    units: dict[tuple[str, ...], tuple[Factor, ...]] = {}
    for factor in sweep.factors:
        group = group_of.get(factor.path, (factor.path,))
        units.setdefault(group, tuple(by_path[path] for path in group))
    return list(units.values())


def _unit_order(sweep: Sweep, units: list[tuple[Factor, ...]], aliases: Mapping[str, str]) -> list[int]:
    place = {f.path: i for i, unit in enumerate(units) for f in unit}
    order, _ = _topological(_dependencies(sweep, aliases))
    return list(dict.fromkeys(place[path] for path in order))


def _extend(
    rows: list[tuple[dict, dict]],
    place: int,
    unit: tuple[Factor, ...],
    aliases: Mapping[str, str],
    found: dict,
) -> list[tuple[dict, dict]]:
    """Extend each partial assignment with each option of ``unit``, up to MAX_RUNS of them."""
    extended = (
        ({**values, **assigned}, {**ranks, place: rank})
        for values, ranks in rows
        for assigned, rank in _options(unit, _scope(values, aliases), found)
    )
    rows = list(itertools.islice(extended, MAX_RUNS + 1))
    if len(rows) > MAX_RUNS:
        raise SweepError([f"the sweep has more than {MAX_RUNS} configurations"])
    return rows


def _options(
    unit: tuple[Factor, ...], scope: Mapping[str, object], found: dict
) -> Iterable[tuple[dict, int]]:
    """Yield (values by path, rank) for each option of a unit; a range's rank is its value."""
    factor = unit[0]
    if not factor.is_range:
        rows = zip(*(f.values for f in unit), strict=True)
        return (({f.path: v for f, v in zip(unit, row, strict=True)}, k) for k, row in enumerate(rows))
    low, high = (_bound(factor, side, bound, scope, found) for side, bound in _bounds(factor))
    if low is None or high is None:
        return ()
    return (({factor.path: value}, value) for value in range(low, high + 1))


def _bound(
    factor: Factor, side: str, bound: Expression, scope: Mapping[str, object], found: dict
) -> int | None:
    value = _checked(
        bound, scope, f"{factor.path}: range {side} bound", _is_whole, "not a whole number", found
    )
    return None if value is None else int(value)


def _keep(where: Expression, scope: Mapping[str, object], found: dict) -> bool:
    return bool(_checked(where, scope, "where", _is_truth, "not true or false", found))


def _checked(
    expression: Expression,
    scope: Mapping[str, object],
    what: str,
    accept: Callable[[object], bool],
    expected: str,
    found: dict[str, str],
) -> object | None:
    """Return the value of ``expression`` if ``accept`` takes it; else record one problem for ``what``."""
    try:
        value = expression.evaluate(scope)
    except ExpressionError as exc:
        found.setdefault(what, f"{what}: {exc}{_at(expression, scope)}")
        return None
    if accept(value):
        return value
    shown = f"{expression.excerpt} gives {_brief(value)}, {expected}{_at(expression, scope)}"
    found.setdefault(what, f"{what}: {shown}")
    return None


def _scope(values: Mapping[str, object], aliases: Mapping[str, str]) -> dict[str, object]:
    return {name: values[path] for name, path in aliases.items() if path in values}


# --- points whose scenario is invalid ---------------------------------------------------------

WHERE_HINT = "A `where` filter can leave out configurations that cannot be valid (such as r > n)."


def invalid_points(
    failures: Sequence[tuple[Point, Sequence[str]]], points: Sequence[Point], shown: int = 20
) -> SweepError:
    """Return one error for the points of a sweep whose scenarios are invalid.

    A problem that every point has (an unknown factor path, a bad base scenario) is reported once,
    up front, as ``every run: ...``; the others once per point. When some configurations are
    valid, a note says how to leave out the others: a factor value that fails in every
    configuration holding it (``warmup=10s`` against a fixed duration) is named, to be taken off
    its factor's values; the hint about ``where`` is added only for a failure that a combination
    of values explains (``r=4`` with ``n=3``, while ``r=4`` with ``n=5`` is valid). Neither can
    help when every configuration fails.

    Args:
        failures: each invalid point with its problems, in point order.
        points: every point of the sweep.
    """
    every = (
        set(failures[0][1]).intersection(*(p for _, p in failures[1:]))
        if len(failures) == len(points)
        else set()
    )
    lines = [f"every run: {problem}" for problem in dict.fromkeys(failures[0][1]) if problem in every]
    lines += [
        f"run {point.index} ({label(point.factors)}): {problem}"
        for point, problems in failures
        for problem in problems
        if problem not in every
    ]
    failed = {point.config for point, _ in failures}
    if all(point.config in failed for point in points):
        return SweepError(lines, shown=shown)
    doomed = _doomed_values(points, failed)
    notes = [_doomed_note(list(doomed.values()))] if doomed else []
    if any(not doomed.keys() & set(config) for config in failed):
        notes.append(WHERE_HINT)
    return SweepError(lines, note="\n".join(notes) or None, shown=shown)


def _doomed_values(points: Sequence[Point], failed: set[tuple]) -> dict[tuple, str]:
    """The factor values that fail in every configuration holding them, by (path, value), labelled."""
    fails_everywhere: dict[tuple, bool] = {}
    labels: dict[tuple, str] = {}
    for point in points:
        for item, (path, value) in zip(point.config, point.factors.items(), strict=True):
            fails_everywhere[item] = fails_everywhere.get(item, True) and point.config in failed
            labels[item] = label({path: value})
    return {item: labels[item] for item, doomed in fails_everywhere.items() if doomed}


def _doomed_note(labels: list[str]) -> str:
    """Name the factor values to take off their lists (the first 10)."""
    shown = ", ".join(labels[:10]) + (f" and {len(labels) - 10} more" if len(labels) > 10 else "")
    fails, them = ("fails", "it") if len(labels) == 1 else ("fail", "them")
    return f"{shown} {fails} in every configuration: take {them} off the factor's values."


def label(factors: Mapping[str, object]) -> str:
    """Name a point by its factor values, such as ``r=2, w=3``."""
    return ", ".join(f"{path.split('.')[-1]}={_cell(value)}" for path, value in factors.items())


# --- describing points -------------------------------------------------------------------------


def describe(points: Sequence[Point]) -> str:
    """Return a table of the configurations of ``points`` with their seeds, then a count line."""
    seeds: dict[tuple, list] = {}
    first: dict[tuple, Point] = {}
    for point in points:
        first.setdefault(point.config, point)
        seeds.setdefault(point.config, []).append(point.seed)
    header = [*(points[0].factors if points else ()), "seeds"]
    rows = [[*map(_cell, first[key].factors.values()), _seeds_cell(s)] for key, s in seeds.items()]
    lines = _table([header, *rows]) if points else []
    return "\n".join([*lines, _count_line(len(points), seeds)])


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def _cell(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return yaml.safe_dump(value, default_flow_style=True, width=math.inf).removesuffix("...\n").strip()
    except yaml.YAMLError:
        return repr(value)


def _seeds_cell(seeds: list) -> str:
    if None in seeds:
        return "scenario's seed" if len(seeds) == 1 else ", ".join(map(str, seeds))
    if len(seeds) >= 3 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}..{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _count_line(runs: int, seeds: Mapping[tuple, list]) -> str:
    configs = f"{len(seeds)} {_plural(len(seeds), 'configuration')}"
    counts = {len(s) for s in seeds.values()}
    if len(counts) == 1:
        count = counts.pop()
        configs += f" x {count} {_plural(count, 'seed')}"
    return f"{runs} {_plural(runs, 'run')} ({configs})"


# --- small helpers -----------------------------------------------------------------------------


def _is_truth(value: object) -> bool:
    return isinstance(value, bool)


def _is_whole(value: object) -> bool:
    return _is_int(value) or (isinstance(value, float) and value.is_integer())


def _at(expression: Expression, scope: Mapping[str, object]) -> str:
    shown = [f"{name}={_brief(scope[name])}" for name in sorted(expression.names) if name in scope]
    return f" (at {', '.join(shown)})" if shown else ""
