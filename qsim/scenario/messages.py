"""Validation errors in qsim's words: one line per problem, ``dotted.path: expected ..., found ...``."""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Mapping

from pydantic import BaseModel, ValidationError

from qsim.distributions import DIST_NAMES, Dist
from qsim.inputs import brief
from qsim.scenario.faults import FAULT_TAGS
from qsim.scenario.schema import ARRIVAL_TYPES, Arrival, Scenario

_TAGS = {
    name: model for name, model in zip(DIST_NAMES, typing.get_args(typing.get_args(Dist)[0]), strict=True)
}
_TAGS.update(zip(ARRIVAL_TYPES, typing.get_args(typing.get_args(Arrival)[0]), strict=True))
_TAGS.update(FAULT_TAGS)


def format_errors(exc: ValidationError) -> list[str]:
    """Turn a pydantic error into lines of ``dotted.path: expected ..., found ...``, one per problem.

    The members of a union (``r: 2`` or ``r: quorum``) each report a failure; they become one line
    for the field, listing what each member would take.
    """
    errors = exc.errors(include_url=False)
    deeper = {err["loc"][:i] for err in errors for i in range(len(err["loc"]))}
    lines: dict[object, None] = {}  # a line, or the loc of a union rendered once its members are in
    unions: dict[tuple, list[tuple[str, dict]]] = {}
    for err in errors:
        if err["type"] == "too_short" and err["loc"] in deeper:
            continue  # pydantic's echo of an invalid item reported below this list
        cut = _union_cut(err["loc"])
        if cut is None:
            lines.update(dict.fromkeys(_error_lines(err)))
        else:
            unions.setdefault(err["loc"][:cut], []).append((err["loc"][cut], err))
            lines[err["loc"][:cut]] = None
    return list(dict.fromkeys(_union_line(k, unions[k]) if isinstance(k, tuple) else k for k in lines))


# The label pydantic puts in an error's place for each member of a union: int, constrained-int,
# literal[...], tuple[...], function-after[...] and so on. Field names never look like these.
_UNION_LABEL = re.compile(r"(int|float|str|bool|none|bytes|constrained-[a-z]+|[a-z][a-z-]*\[.*\])", re.S)


def _union_cut(loc: tuple) -> int | None:
    """Return the place of the first union member label in ``loc``, or None."""
    return next(
        (i for i, part in enumerate(loc) if isinstance(part, str) and _UNION_LABEL.fullmatch(part)), None
    )


def _union_line(loc: tuple, members: list[tuple[str, dict]]) -> str:
    """One line for a value no member of a union takes: what each would take, and what was found."""
    here = [err for label, err in members if err["loc"][-1] == label]  # errors about the value itself
    found = (here or [members[0][1]])[0]["input"]
    alternatives = dict.fromkeys(_alternative(label, err) for label, err in members)
    *rest, last = alternatives
    listed = f"{', '.join(rest)} or {last}" if rest else last
    return f"{_dotted(loc)}: expected {listed}, found {_show(found)}"


def _alternative(label: str, err: dict) -> str:
    """What one member of a union takes, in a few words."""
    if label.startswith(("tuple[", "list[")):
        items = label[label.index("[") + 1 : -1]
        return (
            "a list"
            if items.endswith("...") or label.startswith("list[")
            else f"a list of {items.count(',') + 1} items"
        )
    if err["type"] == "string_type":
        return "a name"
    if err["type"] == "literal_error" and " or " in err["msg"]:
        return "one of " + err["msg"].removeprefix("Input should be ").replace(" or ", ", ")
    return _expected(err, err["loc"]).removeprefix("expected ").split(", found ")[0]


def _error_lines(err: dict) -> list[str]:
    """The lines of one error that is not part of a union."""
    loc, kind = err["loc"], err["type"]
    path = _dotted(loc)
    if kind == "qsim":
        return [f"{_join(path, sub)}: {message}" for sub, message in err["ctx"]["problems"]]
    if kind == "extra_forbidden":
        return [f"{path}: unknown key{_suggestion(loc)}"]
    if kind == "missing":
        return [f"{path}: required field is missing"]
    if kind == "invalid_key" or loc[-1:] == ("[key]",):
        parent = _dotted(loc[:-1] if kind == "invalid_key" else loc[:-2])
        return [f"{parent}: keys must be names, found the key {_show(err['input'])}"]
    if kind == "string_pattern_mismatch":
        return [f"{path}: expected letters, digits, '.', '_' or '-', starting with a letter or digit; "
                f"found {_show(err['input'])}"]  # fmt: skip
    if kind == "union_tag_invalid":
        tags = err["ctx"]["expected_tags"]
        field = err["ctx"]["discriminator"].strip("'")
        return [f"{_join(path, field)}: expected one of {tags}, found {err['ctx']['tag']!r}"]
    if kind == "union_tag_not_found":
        field = err["ctx"]["discriminator"].strip("'")
        choices = ", ".join(DIST_NAMES if field == "dist" else ARRIVAL_TYPES)
        found = _show(err["input"])
        return [f"{path}: expected a mapping with a '{field}' field (one of {choices}), found {found}"]
    return [f"{path}: {_expected(err, loc)}"]


# pydantic's error types, in qsim's words; {what} is the field's name (the last part of its path).
_EXPECTED = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "text",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_attributes_type": "a mapping",
    "model_type": "a mapping of {what} fields",
}


def _expected(err: dict, loc: tuple = ()) -> str:
    message = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
            if "found" in message or isinstance(err["input"], Mapping):
                return message
            return f"{message}, found {_show(err['input'])}"
    what = next((str(part) for part in reversed(loc) if isinstance(part, str) and part not in _TAGS), "")
    if err["type"] in _EXPECTED:
        expected = _EXPECTED[err["type"]].format(what=what)
        if expected == "a list" and what.endswith("s"):
            expected = f"a list of {what}"  # faults, delays, links: the field names what its items are
        return f"expected {expected}, found {_show(err['input'])}"
    if message.startswith("Input should be "):
        message = "expected " + message[len("Input should be ") :]
    return f"{message}, found {_show(err['input'])}"


def _show(value) -> str:
    if isinstance(value, bytes | bytearray):
        return "binary data (a !!binary value)"
    return brief(value)


def _dotted(loc: tuple) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and (p in _TAGS or "[" in p))]
    return ".".join(parts) or "(top level)"


def _join(path: str, sub: str) -> str:
    return sub if path == "(top level)" else f"{path}.{sub}"


def _suggestion(loc: tuple) -> str:
    known = sorted(_keys_at(loc[:-1]))
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; expected one of: {', '.join(known)}" if known else ""


def _keys_at(loc: tuple) -> set[str]:
    models: set[type[BaseModel]] = {Scenario}
    for part in loc:
        if isinstance(part, int) or "[" in str(part):
            continue
        if part in _TAGS:
            models = {_TAGS[part]}
            continue
        inner: set[type[BaseModel]] = set()
        for model in models:
            for name, field in model.model_fields.items():
                if part in (name, field.alias):
                    inner |= _models_in(field.annotation)
        models = inner
    return {field.alias or name for model in models for name, field in model.model_fields.items()}


def _models_in(annotation) -> set[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {annotation}
    found: set[type[BaseModel]] = set()
    for arg in typing.get_args(annotation):
        found |= _models_in(arg)
    return found
