"""Reading what users hand qsim: regular files of bounded size, UTF-8 text, YAML of bounded size.

A scenario (or a samples file) might be a device that never ends, a FIFO that blocks on open,
binary garbage, UTF-16 text, or YAML whose aliases expand exponentially. Everything here checks
before it reads or builds, so a bad input costs milliseconds and a clear message, and no error
message ever shows more than a bounded excerpt of the input.
"""

from __future__ import annotations

import os
import reprlib
import stat

import yaml

SCENARIO_BYTES = 1 << 20  # 1 MiB: a scenario is a configuration; samples belong in a CSV file
SAMPLES_BYTES = 64 << 20  # 64 MiB of CSV: several million samples
YAML_VALUES = 1_000_000  # values (scalars and collections) after expanding every alias
YAML_DEPTH = 64  # nesting levels (a scenario needs about ten)
INT_DIGITS = 30  # longer integer literals are out of range for every field (and slow to convert)

_BOMS = {
    b"\xef\xbb\xbf": None,  # UTF-8 with a byte-order mark: fine
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}


class InputError(ValueError):
    """An input file or text cannot be used; the message says why, without a traceback."""


class YamlSyntaxError(InputError):
    """The text is not YAML at all (as opposed to YAML that is refused for its size or shape)."""


def read_bytes(path: str | os.PathLike, limit: int, what: str) -> bytes:
    """Return the bytes of the regular file at ``path``, refusing anything else or anything larger.

    The file is opened without blocking and checked with ``fstat`` before a byte is read, so a
    FIFO or a device (``/dev/zero``) is refused at once instead of blocking or never ending.

    Raises:
        InputError: if it cannot be opened, is not a regular file, or holds more than ``limit`` bytes.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputError(f"cannot read the {what} {os.fspath(path)}: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(f"the {what} {os.fspath(path)} is {_kind(mode)}, not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read the {what} {os.fspath(path)}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputError(f"the {what} {os.fspath(path)} is larger than the limit of {limit:,} bytes")
    return data


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return name
    return "not a regular file"


def decode_text(data: bytes, what: str) -> str:
    """Return ``data`` as text: UTF-8 (a byte-order mark allowed), never NUL bytes.

    Raises:
        InputError: naming the encoding found (UTF-16, UTF-32) or the first bad byte's place.
    """
    for bom, encoding in _BOMS.items():
        if data.startswith(bom):
            if encoding is not None:
                raise InputError(f"the {what} is {encoding} text; save it as UTF-8")
            data = data[len(bom) :]
            break
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _place(data, exc.start)
        raise InputError(
            f"the {what} is not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}, column {column}"
        ) from None
    if "\x00" in text:
        line, column = _place(data, data.index(b"\x00"))
        raise InputError(f"the {what} holds a NUL byte at line {line}, column {column}: binary, not text")
    return text


def _place(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def load_yaml(text: str, where: str = "") -> object:
    """Parse YAML safely, refusing deep nesting, cyclic or huge alias expansion and huge integers.

    Args:
        text: the YAML text.
        where: the dotted path the text is the value of (an override), for the messages.

    Raises:
        InputError: with every problem found in the document (YAML syntax errors one at a time).
    """
    _check_depth(text)
    loader = yaml.CSafeLoader(text) if yaml.__with_libyaml__ else yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problems = _node_problems(node, where)
        if problems:
            raise InputError("\n".join(problems))
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(yaml_message(exc)) from None
    finally:
        loader.dispose()


def yaml_message(exc: yaml.YAMLError) -> str:
    """Describe a YAML error in one line: where, and what."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    if isinstance(exc, yaml.reader.ReaderError):  # its text spans lines; its place is an offset
        where = f" at character {exc.position + 1}"
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"not valid YAML{where}: {problem}"


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than YAML_DEPTH before composing (the composer recurses per level)."""
    loader = yaml.CSafeLoader(text) if yaml.__with_libyaml__ else yaml.SafeLoader(text)
    depth = 0
    try:
        while (event := loader.get_event()) is not None:
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > YAML_DEPTH:
                    mark = event.start_mark
                    raise InputError(
                        f"nesting deeper than {YAML_DEPTH} levels at line {mark.line + 1}, "
                        f"column {mark.column + 1}"
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(yaml_message(exc)) from None
    finally:
        loader.dispose()


def _node_problems(root: yaml.Node, where: str) -> list[str]:
    """Refuse cycles, an expansion beyond YAML_VALUES and over-long integers, without expanding."""
    paths = _paths(root, where)
    size: dict[int, int] = {}  # id(node) -> values it expands to, once known
    depth: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()  # the nodes on the current walk down: meeting one again is a cycle
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[key] > YAML_VALUES:
                return [f"{_at(paths, node)}YAML aliases expand to more than {YAML_VALUES:,} values; refused"]
            if depth[key] > YAML_DEPTH:
                return [f"{_at(paths, node)}YAML aliases nest deeper than {YAML_DEPTH} levels; refused"]
        elif key in open_nodes:
            return [f"{_at(paths, node)}a YAML alias refers to a value that contains it (a cycle)"]
        elif key not in size:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node) if id(child) not in size)
    nodes = _nodes(root)
    return _duplicate_keys(nodes, paths) + [
        f"{paths[id(node)] or '(top level)'}: an integer of {len(node.value)} characters is out of range "
        f"(at most {INT_DIGITS}); found {node.value[:20]}..."
        for node in nodes
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":int") and len(node.value) > INT_DIGITS
    ]


def _duplicate_keys(nodes: list[yaml.Node], paths: dict[int, str]) -> list[str]:
    """Refuse a key given twice in one mapping."""
    # YAML would silently keep the last value: a fault could then name two kinds, and a field set
    # twice would show only one of its values.
    found = []
    for node in nodes:
        if not isinstance(node, yaml.MappingNode):
            continue
        seen: set[tuple[str, str]] = set()
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue  # a collection as a key is refused by the schema (keys are names)
            if (key.tag, key.value) in seen:
                path = _join(paths.get(id(node)) or "", key.value[:40])
                found.append((key.start_mark.line, f"{path}: duplicate key (line {key.start_mark.line + 1})"))
            seen.add((key.tag, key.value))
    return [message for _, message in sorted(found)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    return []


def _nodes(root: yaml.Node) -> list[yaml.Node]:
    """Every distinct node once (an alias is the node it names)."""
    seen: dict[int, yaml.Node] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            stack.extend(_children(node))
    return list(seen.values())


def _paths(root: yaml.Node, where: str) -> dict[int, str]:
    """The dotted path of each node where the text first gives it (aliases are not followed)."""
    paths = {id(root): where}
    stack = [root]
    while stack:
        node = stack.pop()
        path = paths[id(node)]
        if isinstance(node, yaml.SequenceNode):
            items = [(child, _join(path, str(i))) for i, child in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            items = [(k, path) for k, _ in node.value]
            items += [
                (v, _join(path, k.value[:40] if isinstance(k, yaml.ScalarNode) else "?"))
                for k, v in node.value
            ]
        else:
            items = []
        for child, child_path in items:
            if id(child) not in paths:
                paths[id(child)] = child_path
                stack.append(child)
    return paths


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


def _at(paths: dict[int, str], node: yaml.Node) -> str:
    return f"{paths.get(id(node)) or '(top level)'} (line {node.start_mark.line + 1}): "


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6
_SHORT.maxlevel = 3


def brief(value: object, limit: int = 80) -> str:
    """Return a short repr of ``value`` that costs little whatever its size (for error messages)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        text = _SHORT.repr(value)
    except (ValueError, RecursionError):
        text = f"a {type(value).__name__} too large to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."
