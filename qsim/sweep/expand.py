"""Sweeps: a product of factors over a base scenario, filtered, with replicate seeds.

A sweep comes from the ``sweep:`` block of a scenario (:func:`sweep_from_mapping`) or from the
command line (:func:`sweep_from_cli`); both give the same :class:`Sweep`, and :func:`expand`, a pure
function, turns it into numbered :class:`Point` objects.

Choices made where the design is silent:

- Points come in the order of nested loops over the factors in the user's order (the last factor
  varies fastest, as in ``itertools.product``), with the seeds innermost. A zip group stands at the
  place of whichever of its members comes first among the factors. A range may use factors listed
  after it: ranges are evaluated in dependency order, but that never changes the order of points.
- Without ``seeds`` there is one seed, None: the scenario's own.
- A value listed twice in a factor, a row listed twice in a zip group, or a seed listed twice is an
  error, as it would repeat identical runs. ``seed`` cannot be a factor; ``seeds`` does that.
- ``where`` must give true or false (0 or 1 are accepted as well).
- Any string containing ``..`` given as a factor's whole value is a range; to sweep a string
  containing ``..``, put it in a YAML list.
- On the command line, the values of a factor are read as the items of a YAML flow list, so
  ``3,5,7``, ``1ms,5ms`` and ``{dist: constant, value: 1ms},{dist: exponential, mean: 1ms}`` work.
  A zip group names factors by their full paths.
- A sweep has at most ``MAX_RUNS`` runs, so that a mistyped bound cannot hang expansion.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import yaml

from qsim.errors import QsimError
from qsim.sweep.expr import Expression, ExpressionError, parse

MAX_RUNS = 100_000
RESERVED = ("where", "zip", "seeds")
_T = TypeVar("_T")


class SweepError(QsimError):
    """A sweep is not valid; ``problems`` lists every problem found, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{count} {noun} in the sweep:\n{lines}")


@dataclass(frozen=True)
class Factor:
    """One scenario field to vary: explicit values, or an inclusive range of integers.

    Attributes:
        path: the dotted scenario path, such as ``quorum.r``.
        values: the values in order, or None for a range.
        low: the range's first value, an expression of other factors (None for values).
        high: the range's last value, an expression of other factors (None for values).
    """

    path: str
    values: tuple | None = None
    low: Expression | None = None
    high: Expression | None = None

    def __post_init__(self) -> None:
        if (self.values is None) != (self.low is not None and self.high is not None):
            raise ValueError(f"factor {self.path}: give either values, or both low and high")
        if self.values is not None:
            object.__setattr__(self, "values", tuple(self.values))

    @property
    def is_range(self) -> bool:
        """Whether the factor is a range rather than a list of values."""
        return self.values is None


@dataclass(frozen=True)
class Sweep:
    """Factors in the user's order, groups of factors that vary together, a filter and seeds."""

    factors: tuple[Factor, ...] = ()
    zips: tuple[tuple[str, ...], ...] = ()
    where: Expression | None = None
    seeds: tuple[int | None, ...] = (None,)


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


# --- building a sweep --------------------------------------------------------------------------


def sweep_from_mapping(block: Mapping) -> Sweep:
    """Build a sweep from the ``sweep:`` block of a scenario.

    Keys other than ``where``, ``zip`` and ``seeds`` are factor paths (those three set to null
    count as absent). A string ``a..b`` is an inclusive integer range, a list gives the values,
    and any other value is a single value.

    Raises:
        SweepError: listing every problem found.
    """
    if not isinstance(block, Mapping):
        raise SweepError(
            [f"sweep: expected a mapping of factors and where, zip, seeds; found {_brief(block)}"]
        )
    found: list[str] = []
    factors, broken = [], set()
    for key, raw in block.items():
        if key not in RESERVED:
            factors.append(_gather(found, _factor, key, raw))
            if factors[-1] is None and isinstance(key, str):
                broken.add(key)
    where = _gather(found, _where, block["where"]) if block.get("where") is not None else None
    zips = _gather(found, _yaml_zips, block.get("zip") or [])
    seeds = _gather(found, _seeds, block.get("seeds"))
    return _build(factors, broken, zips, where, seeds, found)


def sweep_from_cli(
    factors: Sequence[str], *, where: str | None, zips: Sequence[str], seeds: str | None
) -> Sweep:
    """Build a sweep from ``--factor path=VALUES``, ``--where``, ``--zip a,b`` and ``--seeds``.

    Args:
        factors: ``path=a..b`` for a range, or ``path=v1,v2,...`` with values read as YAML.
        where: the filter, or None.
        zips: groups of factor paths that vary together, comma-separated.
        seeds: a count ``K`` (seeds 0 to K-1), a list ``a,b,c``, or None for the scenario's seed.

    Raises:
        SweepError: listing every problem found.
    """
    found: list[str] = []
    built, broken = [], set()
    for item in factors:
        built.append(_gather(found, _cli_factor, item))
        if built[-1] is None and item.partition("=")[0].strip():
            broken.add(item.partition("=")[0].strip())
    where_ = _gather(found, _where, where) if where is not None else None
    groups = [_gather(found, _cli_zip, text) for text in zips]
    seeds_ = _gather(found, _seeds, None if seeds is None else _cli_seeds(seeds))
    return _build(built, broken, groups, where_, seeds_, found)


def _gather(found: list[str], parse_: Callable[..., _T], *args: object) -> _T | None:
    """Return ``parse_(*args)``, or None after adding its problems to ``found``."""
    try:
        return parse_(*args)
    except SweepError as exc:
        found.extend(exc.problems)
        return None


def _build(factors, broken, zips, where, seeds, found: list[str]) -> Sweep:
    sweep = Sweep(
        tuple(f for f in factors if f is not None),
        tuple(g for g in zips or () if g is not None),
        where,
        (None,) if seeds is None else seeds,
    )
    found += _problems(sweep, frozenset(broken))
    if found:
        raise SweepError(found)
    return sweep


def _factor(path: object, raw: object) -> Factor:
    if not isinstance(path, str):
        raise SweepError([f"{path!r}: expected a dotted scenario path as the name of a factor"])
    if isinstance(raw, str) and ".." in raw:
        return _range(path, raw)
    return Factor(path, tuple(raw) if isinstance(raw, list) else (raw,))


def _range(path: str, text: str) -> Factor:
    low, _, high = text.partition("..")
    if not low.strip() or not high.strip():
        raise SweepError([f"{path}: a range needs two bounds, such as 1..n; found {text!r}"])
    bounds, found = [], []
    for side, bound in (("low", low), ("high", high)):
        try:
            bounds.append(parse(bound))
        except ExpressionError as exc:
            found.append(f"{path}: range {side} bound: {exc}")
    if found:
        raise SweepError(found)
    return Factor(path, low=bounds[0], high=bounds[1])


def _cli_factor(item: str) -> Factor:
    path, sep, text = item.partition("=")
    if not sep or not path.strip() or not text.strip():
        missing = "no '='" if not sep else "no path before '='" if not path.strip() else "no values after '='"
        raise SweepError([f"--factor {item!r}: {missing}; expected path=values, such as quorum.n=3,5,7"])
    if ".." in text:
        return _factor(path.strip(), text.strip())
    values = _flow_list(text)
    if values is None:
        raise SweepError([f"--factor {item!r}: the values are not a comma-separated list of YAML values"])
    return _factor(path.strip(), values)


def _flow_list(text: str) -> list | None:
    """Read ``text`` as the items of a YAML flow list, or return None if it is not valid YAML."""
    try:
        return yaml.safe_load(f"[{text}]")
    except yaml.YAMLError:
        return None


def _cli_zip(text: str) -> tuple[str, ...]:
    group = tuple(path.strip() for path in text.split(","))
    if not all(group):
        raise SweepError(
            [f"--zip {text!r}: expected factor paths separated by commas, such as quorum.r,quorum.w"]
        )
    return group


def _cli_seeds(text: str) -> object:
    items = _flow_list(text)
    if not items:
        return text
    return items if "," in text else items[0]


def _yaml_zips(raw: object) -> tuple[tuple[str, ...], ...]:
    if isinstance(raw, list) and all(
        isinstance(group, list) and all(isinstance(path, str) for path in group) for group in raw
    ):
        return tuple(tuple(group) for group in raw)
    raise SweepError(
        [
            f"zip: expected a list of groups of factor paths, such as [[quorum.r, quorum.w]]; "
            f"found {_brief(raw)}"
        ]
    )


def _where(text: object) -> Expression:
    try:
        return parse(text)
    except ExpressionError as exc:
        raise SweepError([f"where: {exc}"]) from None


def _seeds(raw: object) -> tuple[int | None, ...]:
    if raw is None:
        return (None,)
    if _is_int(raw) and 0 < raw <= MAX_RUNS:
        return tuple(range(raw))
    if isinstance(raw, list):
        return tuple(raw)
    raise SweepError(
        [f"seeds: expected a count from 1 to {MAX_RUNS} or a list of seeds; found {_brief(raw)}"]
    )


# --- checking a sweep --------------------------------------------------------------------------


def _problems(sweep: Sweep, broken: frozenset[str] = frozenset()) -> list[str]:
    """List what is wrong with ``sweep``; ``broken`` factors failed to parse and still count as names."""
    aliases = _aliases([*(f.path for f in sweep.factors), *sorted(broken)])
    return [
        *_factor_problems(sweep),
        *_zip_problems(sweep, broken),
        *_name_problems(sweep, aliases),
        *_cycle_problems(sweep, aliases),
        *_seed_problems(sweep.seeds),
    ]


def _factor_problems(sweep: Sweep) -> list[str]:
    counts = Counter(f.path for f in sweep.factors)
    found = [f"{path}: listed {count} times as a factor" for path, count in counts.items() if count > 1]
    zipped = {path for group in sweep.zips for path in group}
    for factor in sweep.factors:
        if not all(part and part == part.strip() for part in factor.path.split(".")):
            found.append(f"{factor.path!r}: expected a dotted scenario path, such as quorum.n")
        if factor.path == "seed":
            found.append("seed: replicate seeds are swept with seeds (a count or a list), not as a factor")
        if factor.values == ():
            found.append(f"{factor.path}: an empty list of values")
        elif factor.values and factor.path not in zipped:
            found += [f"{factor.path}: {_brief(v)} is listed twice" for v in _repeated(factor.values)[:1]]
    return found


def _zip_problems(sweep: Sweep, broken: frozenset[str]) -> list[str]:
    counts = Counter(path for group in sweep.zips for path in group)
    found = [
        f"zip: {path} is listed {count} times in zip groups" for path, count in counts.items() if count > 1
    ]
    by_path = {f.path: f for f in sweep.factors}
    for group in sweep.zips:
        found += _group_problems(group, by_path, broken)
    return found


def _group_problems(
    group: tuple[str, ...], by_path: Mapping[str, Factor], broken: frozenset[str]
) -> list[str]:
    if not group:
        return ["zip: an empty group"]
    factors = ", ".join(by_path) or "none"
    found = [
        f"zip: {p} is not a factor (the factors are {factors})" for p in group if p not in {*by_path, *broken}
    ]
    found += [
        f"zip: {p} is a range ({_range_text(by_path[p])}); zipped factors must be lists of values"
        for p in group
        if p in by_path and by_path[p].is_range
    ]
    if found or broken.intersection(group):
        return found
    lengths = ", ".join(f"{p} has {len(by_path[p].values)}" for p in group)
    if len({len(by_path[p].values) for p in group}) > 1:
        return [f"zip: {lengths} values; zipped lists must have the same length"]
    rows = _repeated(list(zip(*(by_path[p].values for p in group), strict=True)))
    return [f"zip {', '.join(group)}: {_brief(row)} is listed twice" for row in rows[:1]]


def _name_problems(sweep: Sweep, aliases: Mapping[str, str]) -> list[str]:
    found = [
        problem
        for factor in sweep.factors
        for side, bound in _bounds(factor)
        for problem in _unknown_names(f"{factor.path}: range {side} bound", bound, aliases)
    ]
    if sweep.where is not None:
        found += _unknown_names("where", sweep.where, aliases)
    return found


def _unknown_names(what: str, expression: Expression, aliases: Mapping[str, str]) -> list[str]:
    unknown = sorted(name for name in expression.names if name not in aliases)
    if not unknown:
        return []
    known = ", ".join(sorted(aliases)) or "none"
    names = f"{_plural(len(unknown), 'name')} {', '.join(unknown)}"
    return [f"{what}: {expression.text!r} uses unknown {names}; known names: {known}"]


def _cycle_problems(sweep: Sweep, aliases: Mapping[str, str]) -> list[str]:
    _, cycles = _topological(_dependencies(sweep, aliases))
    return [f"ranges depend on each other in a cycle: {' -> '.join(cycle)}" for cycle in cycles]


def _seed_problems(seeds: tuple) -> list[str]:
    if not seeds:
        return ["seeds: an empty list"]
    found = [
        f"seeds: {_brief(s)} is not a seed (an integer >= 0)"
        for s in seeds
        if s is not None and not (_is_int(s) and s >= 0)
    ]
    return found + [f"seeds: {_brief(s)} is listed twice" for s in _repeated(seeds)[:1]]


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
        raise SweepError([f"no runs: the filter {sweep.where.text!r} removed every configuration"])
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
    return _checked(bound, scope, f"{factor.path}: range {side} bound", _is_int, "not an integer", found)


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
    shown = f"{expression.text!r} gives {_brief(value)}, {expected}{_at(expression, scope)}"
    found.setdefault(what, f"{what}: {shown}")
    return None


# --- names and dependencies --------------------------------------------------------------------


def _aliases(paths: Iterable[str]) -> dict[str, str]:
    """Map each name usable in expressions to its factor path: full paths, and unique last parts."""
    paths = list(paths)
    lasts = Counter(path.rsplit(".", 1)[-1] for path in paths)
    names = {path.rsplit(".", 1)[-1]: path for path in paths if lasts[path.rsplit(".", 1)[-1]] == 1}
    return names | {path: path for path in paths}


def _scope(values: Mapping[str, object], aliases: Mapping[str, str]) -> dict[str, object]:
    return {name: values[path] for name, path in aliases.items() if path in values}


def _bounds(factor: Factor) -> list[tuple[str, Expression]]:
    return [("low", factor.low), ("high", factor.high)] if factor.is_range else []


def _dependencies(sweep: Sweep, aliases: Mapping[str, str]) -> dict[str, list[str]]:
    """Map each factor path to the factor paths its range bounds use (none for a list of values)."""
    paths = {f.path for f in sweep.factors}
    used = {
        f.path: {aliases.get(name) for _, bound in _bounds(f) for name in bound.names} for f in sweep.factors
    }
    return {path: sorted(used[path] & paths) for path in used}


def _topological(deps: Mapping[str, Sequence[str]]) -> tuple[list[str], list[list[str]]]:
    """Order the paths so that each follows those it uses (else keeping their order), and find cycles."""
    order: list[str] = []
    cycles: list[list[str]] = []

    def visit(path: str, trail: list[str]) -> None:
        if path in trail:
            cycles.append([*trail[trail.index(path) :], path])
        elif path not in order:
            for dep in deps[path]:
                visit(dep, [*trail, path])
            order.append(path)

    for path in deps:
        visit(path, [])
    return order, cycles


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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_truth(value: object) -> bool:
    return isinstance(value, bool) or (_is_int(value) and value in (0, 1))


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"


def _range_text(factor: Factor) -> str:
    return f"{factor.low.text}..{factor.high.text}"


def _at(expression: Expression, scope: Mapping[str, object]) -> str:
    shown = [f"{name}={_brief(scope[name])}" for name in sorted(expression.names) if name in scope]
    return f" (at {', '.join(shown)})" if shown else ""


def _repeated(items: Sequence) -> list:
    """Return the items equal to an earlier one, in order."""
    seen: set = set()
    repeated = []
    for item in items:
        key = _freeze(item)
        if key in seen:
            repeated.append(item)
        seen.add(key)
    return repeated


def _freeze(value: object) -> object:
    """Return a hashable equivalent of a YAML value (mappings, lists and sets become frozen)."""
    if isinstance(value, Mapping):
        return frozenset((key, _freeze(item)) for key, item in value.items())
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    if isinstance(value, set | frozenset):
        return frozenset(_freeze(item) for item in value)
    return value


def _brief(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:  # an integer with too many digits to show
        text = f"a {type(value).__name__} too large to show"
    return text if len(text) <= 60 else text[:57] + "..."
