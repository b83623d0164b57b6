"""Sweep specifications: factors, zip groups, a filter and seeds, built and checked.

A sweep comes from the ``sweep:`` block of a scenario (:func:`sweep_from_mapping`) or from the
command line (:func:`sweep_from_cli`); both give the same :class:`Sweep`, checked for every
problem at once. :mod:`qsim.sweep.expand` turns it into runs.

Choices made where the design is silent:

- Without ``seeds`` there is one seed, None: the scenario's own.
- A value listed twice in a factor, a row listed twice in a zip group, or a seed listed twice is an
  error, as it would repeat identical runs. ``seed`` cannot be a factor; ``seeds`` does that.
- Any string containing ``..`` given as a factor's whole value is a range; to sweep a string
  containing ``..``, put it in a YAML list.
- ``objectives`` names the metrics the Pareto frontier is over (see
  :func:`qsim.sweep.aggregate.pareto`); without it, the frontier is over p99 read latency, p99
  write latency and stale-read fraction. ``qsim sweep --objective`` replaces it.
- On the command line, the values of a factor are read as the items of a YAML flow list, so
  ``3,5,7``, ``1ms,5ms`` and ``{dist: constant, value: 1ms},{dist: exponential, mean: 1ms}`` work.
  A zip group names factors by their full paths.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from qsim.distributions import whole_number
from qsim.errors import QsimError
from qsim.inputs import InputError, YamlSyntaxError, brief, load_yaml
from qsim.scenario.limits import MAX_SEED
from qsim.sweep.aggregate import objective_problems
from qsim.sweep.expr import Expression, ExpressionError, parse

MAX_RUNS = 100_000  # runs (and seeds) in one sweep, so that a mistyped bound cannot hang expansion
RESERVED = ("where", "zip", "seeds", "objectives")
_T = TypeVar("_T")


class SweepError(QsimError):
    """A sweep is not valid; ``problems`` lists every problem found, one line each."""

    def __init__(self, problems: list[str], note: str | None = None, shown: int | None = None):
        self.problems = list(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        listed = self.problems[:shown] if shown is not None else self.problems
        lines = "\n".join(f"  - {p}" for p in listed)
        if len(listed) < count:
            lines += f"\n  ... and {count - len(listed)} more"
        super().__init__(f"{count} {noun} in the sweep:\n{lines}" + (f"\n{note}" if note else ""))


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
    """Factors in the user's order, groups of factors that vary together, a filter and seeds.

    ``objectives`` are the metrics of the Pareto frontier, or None for the default ones.
    """

    factors: tuple[Factor, ...] = ()
    zips: tuple[tuple[str, ...], ...] = ()
    where: Expression | None = None
    seeds: tuple[int | None, ...] = (None,)
    objectives: tuple[str, ...] | None = None


# --- building a sweep --------------------------------------------------------------------------


def sweep_from_mapping(block: Mapping) -> Sweep:
    """Build a sweep from the ``sweep:`` block of a scenario.

    Keys other than ``where``, ``zip``, ``seeds`` and ``objectives`` are factor paths (those four
    set to null count as absent). A string ``a..b`` is an inclusive integer range, a list gives the values,
    and any other value is a single value.

    Raises:
        SweepError: listing every problem found.
    """
    if not isinstance(block, Mapping):
        raise SweepError(
            [f"sweep: expected a mapping of factors and where, zip, seeds, objectives; found {_brief(block)}"]
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
    objectives = _gather(found, _objectives, block.get("objectives"))
    return _build(factors, broken, zips, where, seeds, found, objectives)


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
    seeds_ = _gather(found, lambda text: _seeds(None if text is None else _cli_seeds(text)), seeds)
    return _build(built, broken, groups, where_, seeds_, found)


def _gather(found: list[str], parse_: Callable[..., _T], *args: object) -> _T | None:
    """Return ``parse_(*args)``, or None after adding its problems to ``found``."""
    try:
        return parse_(*args)
    except SweepError as exc:
        found.extend(exc.problems)
        return None


def _build(factors, broken, zips, where, seeds, found: list[str], objectives=None) -> Sweep:
    sweep = Sweep(
        tuple(f for f in factors if f is not None),
        tuple(g for g in zips or () if g is not None),
        where,
        (None,) if seeds is None else seeds,
        objectives,
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
    values = _flow_list(text, path.strip())
    if values is None:
        raise SweepError([f"--factor {item!r}: the values are not a comma-separated list of YAML values"])
    return _factor(path.strip(), values)


def _flow_list(text: str, where: str = "") -> list | None:
    """Read ``text`` as the items of a YAML flow list, or return None if it is not valid YAML.

    Raises:
        SweepError: if it is YAML refused for its size or shape (alias bombs, huge integers).
    """
    try:
        return load_yaml(f"[{text}]", where)
    except YamlSyntaxError:
        return None
    except InputError as exc:
        raise SweepError(str(exc).splitlines()) from None  # each line names its path


def _cli_zip(text: str) -> tuple[str, ...]:
    group = tuple(path.strip() for path in text.split(","))
    if not all(group):
        raise SweepError(
            [f"--zip {text!r}: expected factor paths separated by commas, such as quorum.r,quorum.w"]
        )
    return group


def _cli_seeds(text: str) -> object:
    items = _flow_list(text, "seeds")
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


def _objectives(raw: object) -> tuple[str, ...] | None:
    """The metric names of the frontier, or None for the default ones."""
    if raw is None:
        return None
    problems = objective_problems(raw, "objectives")
    if problems:
        raise SweepError(problems)
    return tuple(raw)


def _seeds(raw: object) -> tuple[int | None, ...]:
    if raw is None:
        return (None,)
    raw = _whole(raw)
    if _is_int(raw) and 0 < raw <= MAX_RUNS:
        return tuple(range(raw))
    if isinstance(raw, list):
        return tuple(_whole(seed) for seed in raw)
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
    return [f"{what}: {expression.excerpt} uses unknown {names}; known names: {known}"]


def _cycle_problems(sweep: Sweep, aliases: Mapping[str, str]) -> list[str]:
    _, cycles = _topological(_dependencies(sweep, aliases))
    return [f"ranges depend on each other in a cycle: {' -> '.join(cycle)}" for cycle in cycles]


def _seed_problems(seeds: tuple) -> list[str]:
    if not seeds:
        return ["seeds: an empty list"]
    found = [
        f"seeds: {_brief(s)} is not a seed (a whole number from 0 to 2**63 - 1)"
        for s in seeds
        if s is not None and not (_is_int(s) and 0 <= s <= MAX_SEED)
    ]
    return found + [f"seeds: {_brief(s)} is listed twice" for s in _repeated(seeds)[:1]]


# --- names and dependencies --------------------------------------------------------------------


def _aliases(paths: Iterable[str]) -> dict[str, str]:
    """Map each name usable in expressions to its factor path: full paths, and unique last parts."""
    paths = list(paths)
    lasts = Counter(path.rsplit(".", 1)[-1] for path in paths)
    names = {path.rsplit(".", 1)[-1]: path for path in paths if lasts[path.rsplit(".", 1)[-1]] == 1}
    return names | {path: path for path in paths}


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


# --- small helpers -----------------------------------------------------------------------------


def _whole(value: object) -> object:
    """``value`` as an int if it is a whole number (5, 5.0, "5"), else unchanged (and refused later)."""
    try:
        return whole_number(value)
    except ValueError:
        return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"


def _range_text(factor: Factor) -> str:
    text = f"{factor.low.text}..{factor.high.text}"
    return text if len(text) <= 60 else text[:57] + "..."


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
    return brief(value, 60)
