"""A safe parser of quorum expressions over node names: ``a*b + c``, parentheses, ``choose(k, ...)``.

``*`` is all of, ``+`` any of (``*`` binds tighter), ``choose(k, [x, y, z])`` or ``choose(k, x, y,
z)`` at least k of the items (names or expressions). The result is the minimal node sets that
satisfy the expression, as bit masks turned into frozensets. No ``eval``: a recursive-descent parser.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from qsim.quorums.masks import as_frozensets, check_count, check_names, minimal_masks


def parse_expression(names: Sequence[str], text: str, side: str = "quorum") -> tuple[frozenset[int], ...]:
    """Return the minimal quorums of an expression over node names (see ``from_expressions``).

    Raises:
        ValueError: with the expression and a caret under the offending position.
    """
    index = {name: i for i, name in enumerate(check_names(names))}
    return as_frozensets(_Parser(text, index, side).parse())


MAX_DEPTH = 100  # parentheses and choose(...) nested in each other, at most
SHOWN = 80  # characters of an expression an error shows, around the position it points at
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_TOKEN = re.compile(rf"\s*(?:({_NAME.pattern})|([*+(),\[\]])|(\S))")


class _Parser:
    """Recursive descent over tokens, each rule returning the minimal quorums (masks) it parsed.

    expr = term ('+' term)*; term = factor ('*' factor)*; factor = name | '(' expr ')' | choose.
    """

    def __init__(self, text: str, index: dict[str, int], side: str):
        self.text, self.index, self.side = text, index, side
        found = [(m.group(m.lastindex), m.start(m.lastindex)) for m in _TOKEN.finditer(text)]
        self.tokens = [*found, ("", len(text.rstrip()))]  # "" marks the end
        self.at = 0
        self.depth = 0  # parentheses and choose(...) open around the current token

    def parse(self) -> list[int]:
        if not self.text.strip():
            raise self.error("the expression is empty", 0)
        result = self.expr()
        if self.peek():
            raise self.error(f"unexpected {self.peek()!r}, expected '+', '*' or the end", self.pos())
        return result

    def error(self, message: str, pos: int) -> ValueError:
        start = max(0, pos - SHOWN // 2)  # a long expression is shown around the position only
        head, tail = self.text[start:pos], self.text[pos : pos + SHOWN // 2]
        shown = (
            ("..." if start else "")
            + _printable(head + tail)
            + ("..." if pos + SHOWN // 2 < len(self.text) else "")
        )
        under = len(_printable(head)) + (3 if start else 0)
        return ValueError(
            f"{self.side} expression: {message} at column {pos + 1}:\n  {shown}\n  {' ' * under}^"
        )

    def nested(self, pos: int) -> None:
        """Enter a parenthesis or a choose(...): refuse nesting past :data:`MAX_DEPTH` levels."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nested deeper than {MAX_DEPTH} levels", pos)

    def peek(self) -> str:
        return self.tokens[self.at][0]

    def pos(self) -> int:
        return self.tokens[self.at][1]

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if expected is not None and token != expected:
            found = repr(token) if token else "the end"
            raise self.error(f"expected {expected!r}, found {found}", self.pos())
        self.at += token != ""
        return token

    def expr(self) -> list[int]:
        terms = [self.term()]
        while self.peek() == "+":
            self.take()
            terms.append(self.term())
        return minimal_masks(itertools.chain.from_iterable(terms)) if len(terms) > 1 else terms[0]

    def term(self) -> list[int]:
        result = self.factor()
        while self.peek() == "*":
            self.take()
            result = _join(result, self.factor(), f"{self.side} expression")
        return result

    def factor(self) -> list[int]:
        pos, token = self.pos(), self.take()
        if token == "(":
            self.nested(pos)
            result = self.expr()
            self.take(")")
            self.depth -= 1
            return result
        if token == "choose" and self.peek() == "(":
            self.nested(pos)
            result = self.choose()
            self.depth -= 1
            return result
        if token in self.index:
            return [1 << self.index[token]]
        if _NAME.fullmatch(token):
            raise self.error(f"unknown node {token!r} (nodes: {', '.join(self.index)})", pos)
        found = repr(token) if token else "the end"
        raise self.error(f"expected a node name, '(' or choose(...), found {found}", pos)

    def choose(self) -> list[int]:
        self.take("(")
        pos, k = self.pos(), self.take()
        if not k.isdigit():
            raise self.error(f"choose needs a whole number k first, found {k or 'the end'!r}", pos)
        self.take(",")
        listed = self.peek() == "["
        if listed:
            self.take()
        items = [self.expr()]
        while self.peek() == ",":
            self.take()
            items.append(self.expr())
        self.take("]" if listed else ")")
        if listed:
            self.take(")")
        if not 1 <= int(k) <= len(items):
            raise self.error(f"choose needs 1 <= k <= {len(items)} (its item count), got k={k}", pos)
        return _at_least(int(k), items, f"{self.side} expression")


def _printable(text: str) -> str:
    """``text`` with each unprintable character (control, bidi override) shown as its escape."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _at_least(k: int, items: list[list[int]], what: str) -> list[int]:
    """Return the minimal sets that satisfy at least k of the items (each a minimal family)."""
    best = [[0]] + [[] for _ in range(k)]  # best[j]: minimal sets satisfying j of the items so far
    for item in items:
        for j in range(k, 0, -1):
            if best[j - 1]:
                best[j] = minimal_masks(best[j] + _join(best[j - 1], item, what))
                check_count(len(best[j]), what)
    return best[k]


def _join(a: list[int], b: list[int], what: str) -> list[int]:
    """Return the minimal unions of one set of ``a`` and one of ``b`` (both sides needed)."""
    check_count(len(a) * len(b), what)
    return minimal_masks(x | y for x in a for y in b)
