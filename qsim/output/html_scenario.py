"""The scenario in a report: as its user gave it, and what differs from the defaults, with units.

Times read as the scenario language writes them (``100 ms``, ``30 s``, ``250 us``), rates as
``2000/s``; a field's unit comes from its type in the schema, never from its name.
"""

from __future__ import annotations

import html
import json
import re
import typing
from collections.abc import Iterator, Mapping

from pydantic import BaseModel, BeforeValidator, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from qsim.errors import ScenarioError
from qsim.scenario import Scenario, scenario_from_dict
from qsim.scenario.faults import FAULT_KINDS
from qsim.scenario.load import plain_yaml, without_nulls
from qsim.units import parse_duration, parse_rate

SHOWN_ELSEWHERE = ("name", "description")  # in the report's heading


def duration_text(ms: float) -> str:
    """A duration in milliseconds as a scenario would write it: ``100 ms``, ``30 s``, ``2 min``."""
    if ms == 0:
        return "0 ms"
    if abs(ms) >= 120e3 and ms % 60e3 == 0:
        return f"{ms / 60e3:g} min"
    if abs(ms) >= 1e3:
        return f"{ms / 1e3:g} s"
    if abs(ms) >= 0.1:
        return f"{ms:g} ms"
    return f"{ms * 1e3:g} us"


def differences(scenario: Scenario) -> list[tuple[str, str]]:
    """Return (dotted path, value with its unit) for each field whose value is not the default.

    Name and description are left out; a distribution, a list and a section that has no default
    (such as ``hedge``) are one value each.
    """
    defaults = Scenario(name=scenario.name)
    return [(path, text) for path, text in _changed(scenario, defaults, "") if path not in SHOWN_ELSEWHERE]


def _changed(value: BaseModel, default: BaseModel, prefix: str) -> Iterator[tuple[str, str]]:
    for name, field in type(value).model_fields.items():
        mine, theirs = getattr(value, name), getattr(default, name)
        if mine == theirs:
            continue
        path = f"{prefix}{field.alias or name}"
        if isinstance(mine, BaseModel) and type(mine) is type(theirs) and not _is_dist(mine):
            yield from _changed(mine, theirs, f"{path}.")
        else:
            yield path, value_text(mine, _unit(field))


def value_text(value, unit: str | None = None) -> str:
    """A scenario value as short text in YAML's flow style, times and rates with their unit."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and unit == "duration":
        return duration_text(value)
    if isinstance(value, int | float) and unit == "rate":
        return f"{value:g}/s"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, BaseModel):
        return _flow(_own_fields(value))
    if isinstance(value, Mapping):
        return _flow([(str(k), value_text(v, unit)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_item_text(item, unit) for item in value) + "]"
    return str(value)


def fault_params_text(kind: str, params: str) -> str:
    """A fault's recorded parameters (the JSON of faults.parquet) as ``key: value`` text, each value
    read through its field in the fault's schema, so times carry their unit (``until: 30 s``)."""
    try:
        values = json.loads(params)
    except (TypeError, ValueError):
        return str(params)
    if not isinstance(values, Mapping):
        return str(params)
    fields = FAULT_KINDS[kind].model_fields if kind in FAULT_KINDS else {}
    return ", ".join(f"{key}: {_field_text(fields.get(key), value)}" for key, value in values.items())


def _field_text(field: FieldInfo | None, value) -> str:
    """``value`` as the schema field reads it (a distribution as one), with the field's unit."""
    if field is None:  # a parameter no field declares, such as the index of a random crash
        return value_text(value)
    try:
        value = TypeAdapter(field.annotation).validate_python(value)
    except ValidationError:
        return value_text(value)
    return value_text(value, _unit(field))


def _item_text(item, unit: str | None) -> str:
    """An item of a list; a section that differs from its defaults in one field is that field's value
    (a node list reads ``[n1, n2, n3]``)."""
    if isinstance(item, BaseModel) and not _is_dist(item):
        fields = _own_fields(item)
        if len(fields) == 1:
            return fields[0][1]
    return value_text(item, unit)


def _own_fields(model: BaseModel) -> list[tuple[str, str]]:
    """The fields of ``model`` that are required or differ from their default, as (key, text)."""
    shown = []
    for name, field in sorted(type(model).model_fields.items(), key=lambda item: item[0] != "dist"):
        value = getattr(model, name)
        if field.is_required() or value != field.get_default(call_default_factory=True, validated_data={}):
            shown.append((field.alias or name, value_text(value, _unit(field))))
    return shown


def _flow(pairs: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{key}: {text}" for key, text in pairs) + "}"


def _is_dist(model: BaseModel) -> bool:
    return "dist" in type(model).model_fields


def _unit(field: FieldInfo) -> str | None:
    """``duration`` or ``rate`` if the field's type parses one (also inside Optional and tuples), or
    ``duration`` if its description gives its unit as ms (a field with a validator of its own)."""
    found = _unit_in([*field.metadata, field.annotation])
    return found or ("duration" if re.search(r"\bms\b", field.description or "") else None)


def _unit_in(parts) -> str | None:
    for part in parts:
        if isinstance(part, BeforeValidator):
            if part.func is parse_duration:
                return "duration"
            if part.func is parse_rate:
                return "rate"
        elif not isinstance(part, type) and (found := _unit_in(typing.get_args(part))):
            return found
    return None


# --- HTML -----------------------------------------------------------------------------------------


def scenario_parts(given: str | None, resolved: Mapping, table) -> list[str]:
    """The pieces of a report's scenario section: what differs from the defaults, and the scenario as given.

    Args:
        given: the text of ``scenario.yaml``, or None for a folder written before it existed.
        resolved: the resolved scenario, every default filled in.
        table: the report's table maker, ``table(header, rows, id_=...)``.
    """
    rows = resolved_differences(resolved)
    parts = []
    if rows is not None:
        parts += [
            "<h3>What differs from the defaults</h3>",
            table(["field", "value"], [list(row) for row in rows], id_="scenario-differences", numbers=False)
            if rows
            else "<p>Nothing: every field has its default value.</p>",
        ]
    if given is not None:
        parts += ["<h3>As given</h3>", f'<pre class="scenario">{_e(given)}</pre>']
    elif rows is None:  # neither: the resolved form, without its empty fields, is all there is
        parts += [
            '<p class="note">The resolved scenario without its empty fields (times in milliseconds, '
            "rates per second):</p>",
            f'<pre class="scenario">{_e(plain_yaml(without_nulls(resolved)))}</pre>',
        ]
    else:
        parts.append(
            '<p class="note">This folder was written before qsim kept the scenario as given '
            "(scenario.yaml).</p>"
        )
    return parts


def resolved_differences(data: Mapping) -> list[tuple[str, str]] | None:
    """The differences from the defaults of a scenario read back, or None if it is not valid (now)."""
    try:
        return differences(scenario_from_dict(data))
    except (ScenarioError, TypeError):  # such as an empirical sample file that has moved since
        return None


def _e(value) -> str:
    return html.escape(str(value))
