"""Loading scenarios from YAML, applying ``--set`` overrides, and reporting every problem at once."""

from __future__ import annotations

import hashlib
import json
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from qsim.errors import ScenarioError
from qsim.inputs import SCENARIO_BYTES, InputError, YamlSyntaxError, brief, decode_text, load_yaml, read_bytes
from qsim.scenario.base import NAME_MAX_LENGTH
from qsim.scenario.faults import Fault
from qsim.scenario.leader import group_size
from qsim.scenario.messages import format_errors
from qsim.scenario.schema import (
    Cluster,
    Network,
    Override,
    Quorum,
    Scenario,
    Workload,
    _sweep_problems,
    cross_problems,
    resolve_consistency,
)
from qsim.units import parse_duration


def load_scenario(path: str | Path, overrides: Iterable[str] = ()) -> Scenario:
    """Load, override and validate the scenario at ``path``.

    Args:
        path: a YAML file. Its ``name`` defaults to the file's stem; relative files it names
            (empirical samples) are found next to it.
        overrides: ``dotted.path=value`` strings; values are parsed as YAML (``quorum.r=2``).

    Raises:
        ScenarioError: listing every problem found.
    """
    return load_scenario_given(path, overrides)[0]


def load_scenario_given(path: str | Path, overrides: Iterable[str] = ()) -> tuple[Scenario, dict]:
    """Like :func:`load_scenario`, and also return the mapping as the user gave it (overrides
    applied, no defaults filled in), for :func:`written_yaml`.

    Raises:
        ScenarioError: listing every problem found.
    """
    path = Path(path)
    data, stem_problem = _read_data(path, overrides)
    if stem_problem is None:
        given = _deep_copy(data)  # before validation, which may resolve aliases in place
        return scenario_from_dict(data, base_dir=path.parent, source=str(path)), given
    try:  # report the name with every other problem; a valid placeholder stands in for it
        scenario_from_dict({**data, "name": "scenario"}, base_dir=path.parent, source=str(path))
    except ScenarioError as exc:
        raise ScenarioError([stem_problem, *exc.problems], str(path)) from None
    raise ScenarioError([stem_problem], str(path))


def read_scenario_data(path: str | Path, overrides: Iterable[str] = ()) -> dict:
    """Return the scenario at ``path`` as plain data, overrides applied, not yet validated.

    Consistency aliases such as ``r: quorum`` are still unresolved here, so a sweep can change
    ``n`` and have ``quorum`` follow it.

    Raises:
        ScenarioError: if the file cannot be read, is not YAML mapping, or an override is malformed.
    """
    data, stem_problem = _read_data(path, overrides)
    if stem_problem is not None:
        raise ScenarioError([stem_problem], str(path))
    return data


def _read_data(path: Path, overrides: Iterable[str]) -> tuple[dict, str | None]:
    """Return the scenario data, and a problem if it has no name and its file's stem cannot be one."""
    path = Path(path)
    source = str(path)
    try:
        data = load_yaml(decode_text(read_bytes(path, SCENARIO_BYTES, "scenario file"), "scenario file"))
    except InputError as exc:
        raise ScenarioError(str(exc).splitlines(), source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError([f"expected a mapping of scenario fields, found {type(data).__name__}"], source)
    data = with_overrides(data, overrides, source)
    if "name" in data:
        return data, None
    try:
        data["name"] = check_name({"name": path.stem})
    except ScenarioError:
        return data, (
            f"name: not given, and the file name {path.stem!r} cannot stand in for it (a name is letters, "
            f"digits, '.', '_' or '-', starting with a letter or digit, at most {NAME_MAX_LENGTH} "
            "characters); give the scenario a name"
        )
    return data, None


def scenario_from_dict(
    data: Mapping, *, base_dir: str | Path | None = None, source: str | None = None
) -> Scenario:
    """Validate a plain mapping as a scenario.

    Raises:
        ScenarioError: listing every problem found.
    """
    context = {"base_dir": str(base_dir) if base_dir is not None else None}
    try:
        return Scenario.model_validate(dict(data), context=context)
    except ValidationError as exc:
        lines = format_errors(exc)
        lines += [f"{path}: {message}" for path, message in _lenient_cross_problems(data, context)]
        raise ScenarioError(list(dict.fromkeys(lines)), source) from None


def resolved_yaml(scenario: Scenario) -> str:
    """The resolved ``scenario`` as YAML without its empty fields, headed by a comment saying so
    (for a scenario whose given form is unknown: built in code, or a point of a sweep)."""
    lines = ["# The scenario as given is not known: its resolved form, without empty fields."]
    return "\n".join(lines) + "\n" + plain_yaml(without_nulls(resolved_dict(scenario)))


def written_yaml(
    data: Mapping, source: str | None = None, overrides: Iterable[str] = (), seed: int | None = None
) -> str:
    """Return scenario ``data`` as YAML headed by comments naming its file, its ``--set`` overrides
    and a ``--seed`` that replaced its seed.

    Raises:
        yaml.YAMLError: if ``data`` holds values YAML cannot represent.
    """
    lines = ["# The scenario as given to qsim (defaults not filled in)."]
    lines += [f"# from {json.dumps(source)}"] if source else []
    lines += [f"# with --set {json.dumps(item)}" for item in overrides]
    lines += [f"# with --seed {seed}"] if seed is not None else []
    return "\n".join(lines) + "\n" + plain_yaml(dict(data) | ({"seed": seed} if seed is not None else {}))


def plain_yaml(data: dict) -> str:
    """``data`` as block YAML for people, in its own key order, short lists and mappings on one line."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)


def without_nulls(value):
    """``value`` without the null entries of its mappings, at every depth."""
    if isinstance(value, Mapping):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def _lenient_cross_problems(data: Mapping, context: dict) -> list[tuple[str, str]]:
    """Check the cross-section rules on whichever fields (and list items) are valid by themselves."""
    data = group_size(data)  # as Scenario reads it: with protocol: leader, n is the node count
    sections = {
        name: _lenient_section(model, data.get(name, {}), context)
        for name, model in (
            ("cluster", Cluster),
            ("network", Network),
            ("quorum", Quorum),
            ("workload", Workload),
        )
    }
    faults = data.get("faults", ())
    if isinstance(faults, list):
        sections["faults"] = tuple(_valid_or_none(TypeAdapter(Fault), item, context) for item in faults)
    found = cross_problems(**sections)
    if isinstance(data.get("sweep"), Mapping):
        found += _sweep_problems(data["sweep"])
    if isinstance(data.get("quorum"), Mapping):
        found += _lenient_quorum_problems(resolve_consistency(dict(data["quorum"])))
    try:
        warmup, duration = (
            parse_duration(data.get(k, Scenario.model_fields[k].default)) for k in ("warmup", "duration")
        )
        if warmup >= duration:
            found.append(("warmup", f"{warmup:g} ms is not shorter than duration ({duration:g} ms)"))
    except ValueError:
        pass
    return found


# Fields that cross-section rules read: if one is invalid, a default must not stand in for it.
_CROSS_FIELDS = {Cluster: {"nodes"}, Quorum: {"n", "coordinator"}, Workload: {"clients", "client_regions"}}


def _lenient_section(model: type[BaseModel], raw: object, context: dict) -> BaseModel | None:
    """Build ``model`` from the fields of ``raw`` that are valid alone, or None if it cannot stand.

    An invalid item of a list of overrides becomes None, so the others keep their index.
    """
    if not isinstance(raw, Mapping):
        return None
    valid = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in raw:
            continue
        try:
            valid[name] = TypeAdapter(Annotated[field.annotation, field]).validate_python(
                raw[key], context=context
            )
        except ValidationError:
            item_type = _item_type(field.annotation)
            if item_type is Override and isinstance(raw[key], list):
                valid[name] = tuple(
                    _valid_or_none(TypeAdapter(item_type), item, context) for item in raw[key]
                )
            elif name in _CROSS_FIELDS.get(model, ()):
                return None
    return model().model_copy(update=valid)  # the defaults are valid; the copy is not re-validated


def _item_type(annotation):
    if typing.get_origin(annotation) is tuple and typing.get_args(annotation)[1:] == (Ellipsis,):
        return typing.get_args(annotation)[0]
    return None


def _valid_or_none(adapter: TypeAdapter, value, context: dict):
    try:
        return adapter.validate_python(value, context=context)
    except ValidationError:
        return None


def _lenient_quorum_problems(quorum: dict) -> list[tuple[str, str]]:
    """Check r and w against n even when other quorum fields are invalid."""

    def count(field):
        value = quorum.get(field, Quorum.model_fields[field].default)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    n = count("n")
    if n is None or quorum.get("protocol") == "leader":  # r and w mean nothing to it
        return []
    return [(f"quorum.{f}", f"{count(f)} is larger than quorum.n ({n})") for f in "rw" if (count(f) or 0) > n]


def check_name(data: Mapping, source: str | None = None) -> str:
    """Return the scenario name in ``data`` if it is valid; check it before building any path from it.

    Raises:
        ScenarioError: if the name is missing or not a single safe path component.
    """
    field = Scenario.model_fields["name"]
    try:
        return TypeAdapter(Annotated[field.annotation, field]).validate_python(data.get("name"))
    except ValidationError as exc:
        lines = [line.replace("(top level)", "name", 1) for line in format_errors(exc)]
        raise ScenarioError(lines, source) from None


def with_values(data: Mapping, values: Mapping[str, object], source: str | None = None) -> dict:
    """Return a copy of ``data`` with each ``dotted.path: value`` set (values are already parsed).

    Raises:
        ScenarioError: for a path that cannot be placed.
    """
    result = _deep_copy(data)
    found = [
        f"{path}: {problem}"
        for path, value in values.items()
        if (problem := _set_path(result, path.split("."), value))
    ]
    if found:
        raise ScenarioError(found, source)
    return result


def with_overrides(data: Mapping, overrides: Iterable[str], source: str | None = None) -> dict:
    """Return a copy of ``data`` with each ``dotted.path=value`` override applied.

    Raises:
        ScenarioError: for overrides that are not ``path=value`` or cannot be placed.
    """
    result = _deep_copy(data)
    found = []
    for item in overrides:
        path, sep, text = item.partition("=")
        if not sep or not path.strip():
            found.append(f"--set {brief(item)}: expected path=value, such as quorum.r=2")
            continue
        try:
            value = load_yaml(text, path.strip()) if text.strip() else None
        except YamlSyntaxError:
            value = text  # not YAML: the text itself (the field's validation says if it fits)
        except InputError as exc:
            found += [f"--set {brief(item)}: {line}" for line in str(exc).splitlines()]
            continue
        problem = _set_path(result, path.strip().split("."), value)
        if problem:
            found.append(f"--set {brief(item)}: {problem}")
    if found:
        raise ScenarioError(found, source)
    return result


def resolved_dict(scenario: Scenario) -> dict:
    """Return the scenario as plain data with every default filled in (round-trips through YAML)."""
    return scenario.model_dump(mode="json", by_alias=True)


def with_seed(scenario: Scenario, seed: int) -> Scenario:
    """Return ``scenario`` with another seed, validated like the file.

    Raises:
        ScenarioError: if the seed is not an integer >= 0.
    """
    return scenario_from_dict({**resolved_dict(scenario), "seed": seed})


def run_id(scenario: Scenario) -> str:
    """Return a short stable id of the resolved scenario, seed included."""
    text = json.dumps(resolved_dict(scenario), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _deep_copy(value):
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_copy(v) for v in value]
    return value


def _set_path(data: dict, parts: list[str], value) -> str | None:
    node = data
    for depth, part in enumerate(parts[:-1]):
        here = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return f"{here}: no item {part} in a list of {len(node)}"
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node and parts[depth + 1].isdigit():  # an item of a list not given
                return f"{here}: no item {parts[depth + 1]}: the scenario has no {part}; set the whole list"
            node = node.setdefault(part, {})
        else:
            return f"{'.'.join(parts[:depth])}: cannot set a field inside {node!r}"
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            return f"{'.'.join(parts)}: no item {last} in a list of {len(node)}"
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        return f"{'.'.join(parts[:-1])}: cannot set a field inside {node!r}"
    return None
