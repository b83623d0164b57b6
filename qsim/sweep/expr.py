"""A small, safe expression language for sweep filters (``where``) and range bounds (``1..n``).

Text is parsed with :func:`ast.parse` and checked against a short list of allowed constructs:
numbers, strings, True/False/None, names and dotted names (``quorum.n``), ``and``/``or``/``not``,
comparisons (chained, and ``in``/``not in`` a tuple or list literal), arithmetic on numbers
(``+ - * / // % **``, unary ``-`` and ``+``), parentheses and the functions ``min``, ``max`` and
``abs``. Evaluation walks the checked tree; nothing is ever passed to ``eval``, ``exec`` or
``compile``, and a dotted name is only a key into the values given, never an attribute lookup.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn

from qsim.errors import QsimError
from qsim.inputs import brief

FUNCTIONS = {"min": min, "max": max, "abs": abs}
_ARITY = {"min": "two or more numbers", "max": "two or more numbers", "abs": "one number"}
MAX_CHARS = 1000  # a filter or bound names a few factors; longer text is a mistake (or an attack)
EXCERPT_CHARS = 60  # of an expression, in messages
_CONSTANTS = (int, float, str, bool, type(None))
_NUMBERS = (int, float)
_MAX_POWER_BITS = 10_000  # keeps 10**10**10 from hanging expansion


def _power(base: object, exponent: object) -> object:
    is_int = isinstance(base, int) and isinstance(exponent, int)
    if is_int and abs(base) > 1 and exponent > 0 and base.bit_length() * exponent > _MAX_POWER_BITS:
        raise ValueError(f"the power is too large (more than {_MAX_POWER_BITS} bits)")
    if base < 0 and not float(exponent).is_integer():
        raise ValueError(
            f"({base:g}) ** {exponent:g} is not a real number (a negative base, a fractional power)"
        )
    return base**exponent


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
}
_UNARY = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda item, items: item in items,
    ast.NotIn: lambda item, items: item not in items,
}
_SYMBOLS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.USub: "-",
    ast.UAdd: "+",
    ast.MatMult: "@",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.Is: "is",
    ast.IsNot: "is not",
}
_CONSTRUCTS = {
    ast.Subscript: "a subscript (a[0])",
    ast.Slice: "a slice",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.NamedExpr: "an assignment expression (:=)",
    ast.Starred: "a starred expression (*a)",
    ast.IfExp: "a conditional expression (a if b else c)",
    ast.Dict: "a dict literal",
    ast.Set: "a set literal",
    ast.Tuple: "a tuple or list other than on the right of 'in'",
    ast.List: "a tuple or list other than on the right of 'in'",
    ast.Await: "await",
}


class ExpressionError(QsimError):
    """An expression is not allowed, not valid, or cannot be evaluated; the message quotes it."""


@dataclass(frozen=True)
class Expression:
    """A parsed and checked expression; two expressions are equal when their syntax trees are.

    Attributes:
        text: the source, stripped.
        names: the plain and dotted names it reads (``quorum.n``, ``r``).
    """

    text: str = field(compare=False)
    names: frozenset[str] = field(init=False, compare=False)
    _tree: ast.Expression = field(init=False, repr=False, compare=False)
    _form: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        tree = _parse_checked(self.text)
        object.__setattr__(self, "text", self.text.strip())
        object.__setattr__(self, "_tree", tree)
        object.__setattr__(self, "names", frozenset(_names(tree.body)))
        object.__setattr__(self, "_form", ast.dump(tree))

    def evaluate(self, values: Mapping[str, object]) -> object:
        """Return the value of the expression with its names taken from ``values``.

        Raises:
            ExpressionError: for a name missing from ``values`` (listing the known ones), and
                for any failure of evaluation such as a division by zero.
        """
        missing = sorted(name for name in self.names if name not in values)
        if missing:
            known = ", ".join(sorted(values)) or "none"
            noun = "name" if len(missing) == 1 else "names"
            raise ExpressionError(f"{self.excerpt} uses unknown {noun} {', '.join(missing)}; known: {known}")
        try:
            return _evaluate(self._tree.body, values)
        except ZeroDivisionError:
            raise ExpressionError(f"cannot evaluate {self.excerpt}: a division by zero") from None
        except OverflowError:
            raise ExpressionError(f"cannot evaluate {self.excerpt}: a number too large to compute") from None
        except (TypeError, ValueError) as exc:  # raised by the checks below, in qsim's words
            raise ExpressionError(f"cannot evaluate {self.excerpt}: {exc}") from None
        except RecursionError:
            raise ExpressionError(f"cannot evaluate {self.excerpt}: too deeply nested") from None

    @property
    def excerpt(self) -> str:
        """The text quoted for a message, cut to EXCERPT_CHARS characters."""
        return excerpt(self.text)


def excerpt(text: str) -> str:
    """Return ``text`` quoted for a message, cut short if long."""
    return repr(text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 3] + "...")


def parse(text: str) -> Expression:
    """Parse and check ``text``.

    Raises:
        ExpressionError: naming the first construct that is not allowed, or the syntax error.
    """
    return Expression(text)


def _parse_checked(text: object) -> ast.Expression:
    """Return the syntax tree of ``text`` if every construct in it is allowed."""
    if not isinstance(text, str):
        raise ExpressionError(f"expected an expression in a string, found {brief(text)}")
    if len(text) > MAX_CHARS:
        raise ExpressionError(
            f"an expression of {len(text):,} characters is longer than the limit of {MAX_CHARS:,} "
            f"(a filter or bound names a few factors): {excerpt(text)}"
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
        _check(tree.body, text)
    except SyntaxError as exc:
        raise ExpressionError(f"not a valid expression ({exc.msg}): {excerpt(text)}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"too deeply nested: {excerpt(text)}") from None
    return tree


def _check(node: ast.expr, text: str) -> None:
    """Raise ExpressionError unless ``node`` and everything under it is allowed."""
    match node:
        case ast.Constant(value=value) if type(value) in _CONSTANTS:
            return
        case ast.Name() | ast.Attribute():
            _dotted(node, text)
        case ast.BoolOp(values=values):
            _check_all(values, text)
        case ast.UnaryOp(op=op, operand=operand):
            _check_operator(op, _UNARY, text)
            _check(operand, text)
        case ast.BinOp(left=left, op=op, right=right):
            _check_operator(op, _BINARY, text)
            _check_all((left, right), text)
        case ast.Compare():
            _check_compare(node, text)
        case ast.Call():
            _check_call(node, text)
        case ast.Constant(value=value):
            _reject(f"a {type(value).__name__} constant", text)
        case _:
            _reject(_CONSTRUCTS.get(type(node), f"a {type(node).__name__} expression"), text)


def _check_all(nodes: Iterable[ast.expr], text: str) -> None:
    for node in nodes:
        _check(node, text)


def _check_operator(op: ast.AST, allowed: Mapping, text: str) -> None:
    if type(op) not in allowed:
        _reject(f"the operator {_SYMBOLS.get(type(op), type(op).__name__)!r}", text)


def _check_compare(node: ast.Compare, text: str) -> None:
    _check(node.left, text)
    for op, right in zip(node.ops, node.comparators, strict=True):
        _check_operator(op, _COMPARE, text)
        if isinstance(op, ast.In | ast.NotIn):
            if not isinstance(right, ast.Tuple | ast.List):
                _reject("'in' against anything but a tuple or list literal (such as n in (3, 5))", text)
            _check_all(right.elts, text)
        else:
            _check(right, text)


def _check_call(node: ast.Call, text: str) -> None:
    if not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS):
        _reject(f"a call to {ast.unparse(node.func)!r} (only {', '.join(FUNCTIONS)} may be called)", text)
    if node.keywords:
        _reject("a keyword argument", text)
    _check_all(node.args, text)
    name = node.func.id
    if (len(node.args) == 1) != (name == "abs") or not node.args:
        raise ExpressionError(f"{name}() takes {_ARITY[name]}: {excerpt(text)}")


def _dotted(node: ast.expr, text: str = "") -> str:
    """Return the name that a Name or a chain of Attributes on a Name spells, such as ``quorum.n``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        _reject("an attribute of something other than a dotted name", text)
    parts.append(node.id)
    for part in parts:
        if part.startswith("__"):
            _reject(f"a dunder name ({part!r})", text)
    return ".".join(reversed(parts))


def _reject(what: str, text: str) -> NoReturn:
    raise ExpressionError(f"{what} is not allowed in an expression: {excerpt(text)}")


def _names(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Name | ast.Attribute):
        return {_dotted(node)}
    children = node.args if isinstance(node, ast.Call) else ast.iter_child_nodes(node)
    return set().union(*(_names(child) for child in children))


def _evaluate(node: ast.expr, values: Mapping[str, object]) -> object:
    match node:
        case ast.Constant(value=value):
            return value
        case ast.Name() | ast.Attribute():
            return values[_dotted(node)]
        case ast.BoolOp(op=op, values=operands):
            return _bool_op(isinstance(op, ast.And), operands, values)
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            return not _evaluate(operand, values)
        case ast.UnaryOp(op=op, operand=operand):
            return _UNARY[type(op)](*_numbers(op, _evaluate(operand, values)))
        case ast.BinOp(left=left, op=op, right=right):
            return _BINARY[type(op)](*_numbers(op, _evaluate(left, values), _evaluate(right, values)))
        case ast.Compare():
            return _compare(node, values)
        case ast.Call(func=ast.Name(id=name), args=args):
            return FUNCTIONS[name](*_numbers(name, *(_evaluate(arg, values) for arg in args)))
        case ast.Tuple(elts=items) | ast.List(elts=items):
            return tuple(_evaluate(item, values) for item in items)
    raise AssertionError(f"unchecked node {ast.dump(node)}")  # _check admits nothing else


def _bool_op(is_and: bool, operands: list[ast.expr], values: Mapping[str, object]) -> object:
    """Evaluate ``and``/``or`` as Python does: short-circuit, and return the deciding operand."""
    for operand in operands[:-1]:
        value = _evaluate(operand, values)
        if bool(value) != is_and:
            return value
    return _evaluate(operands[-1], values)


def _compare(node: ast.Compare, values: Mapping[str, object]) -> bool:
    left = _evaluate(node.left, values)
    for op, comparator in zip(node.ops, node.comparators, strict=True):
        right = _evaluate(comparator, values)
        if isinstance(op, _ORDERING) and not _comparable(left, right):
            found = f"{_kind(left)} and {_kind(right)}"
            raise TypeError(f"{_ORDERING_SYMBOLS[type(op)]!r} orders two numbers or two texts, found {found}")
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True


def _numbers(op: ast.AST | str, *operands: object) -> tuple[object, ...]:
    if not all(isinstance(value, _NUMBERS) for value in operands):
        found = " and ".join(_kind(value) for value in operands)
        what = f"{op}()" if isinstance(op, str) else repr(_SYMBOLS[type(op)])
        raise TypeError(f"{what} needs numbers, found {found}")
    return operands


_ORDERING = ast.Lt | ast.LtE | ast.Gt | ast.GtE
_ORDERING_SYMBOLS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def _comparable(left: object, right: object) -> bool:
    both = (left, right)
    return all(isinstance(v, _NUMBERS) for v in both) or all(isinstance(v, str) for v in both)


def _kind(value: object) -> str:
    """What a value is, in a user's words."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, _NUMBERS):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "null" if value is None else "a list or mapping"
