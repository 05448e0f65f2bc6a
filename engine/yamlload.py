"""Load YAML into plain dicts and lists that remember where each value was written.

ruamel.yaml composes the node tree (with line and column marks); we build the data ourselves so
that duplicate keys, tags that would construct objects, merge keys and oversized documents are
refused with a position, and so that the result is plain data a JSON Schema validator takes fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.diagnostics import Diagnostic, Pos, RecipeSyntaxError

MAX_BYTES = 1 << 20
"""A recipe is text written by people; a megabyte is far beyond any real one."""
MAX_NODES = 200_000
"""Counted with aliases expanded, so an alias bomb is refused before it is walked."""
MAX_DEPTH = 64

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null")}


class YMap(dict[str, Any]):
    """A mapping with the position of the mapping, of each key and of each value."""

    pos: Pos
    key_pos: dict[str, Pos]
    val_pos: dict[str, Pos]

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.key_pos = {}
        self.val_pos = {}

    def put(self, key: str, value: Any, key_pos: Pos, val_pos: Pos) -> None:
        self[key] = value
        self.key_pos[key] = key_pos
        self.val_pos[key] = val_pos

    def where(self, key: str, *, of_key: bool = False) -> Pos:
        table = self.key_pos if of_key else self.val_pos
        return table.get(key, self.key_pos.get(key, self.pos))


class YList(list[Any]):
    """A sequence with its own position and the position of each item."""

    pos: Pos
    item_pos: list[Pos]

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.item_pos = []

    def add(self, value: Any, pos: Pos) -> None:
        self.append(value)
        self.item_pos.append(pos)

    def where(self, index: int) -> Pos:
        return self.item_pos[index] if 0 <= index < len(self.item_pos) else self.pos


def _tag(node: Node) -> str:
    tag = node.tag
    return str(getattr(tag, "value", tag))


class _Builder:
    def __init__(self, file: str, yaml: YAML) -> None:
        self.file = file
        self.constructor = yaml.constructor
        self.nodes = 0

    def pos(self, node: Node) -> Pos:
        mark = node.start_mark
        return Pos(self.file, mark.line + 1, mark.column + 1)

    def fail(self, node: Node, code: str, message: str) -> RecipeSyntaxError:
        return RecipeSyntaxError([Diagnostic(self.pos(node), "error", code, message)])

    def build(self, node: Node, depth: int = 0) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, "yaml-too-large", f"document has more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise self.fail(node, "yaml-too-deep", f"document is nested deeper than {MAX_DEPTH}")
        tag = _tag(node)
        if isinstance(node, ScalarNode):
            if tag == _CORE + "timestamp":
                raise self.fail(node, "yaml-tag", f"'{node.value}' reads as a date: quote it to write text")
            if tag not in _SCALAR_TAGS:
                raise self.fail(node, "yaml-tag", f"tag '{tag}' is not allowed in a recipe")
            try:
                return self.constructor.construct_object(node, deep=True)
            except (ValueError, OverflowError) as exc:
                raise self.fail(node, "yaml-value", f"cannot read value: {exc}") from None
        if isinstance(node, SequenceNode):
            if tag != _CORE + "seq":
                raise self.fail(node, "yaml-tag", f"tag '{tag}' is not allowed in a recipe")
            seq = YList(self.pos(node))
            for item in node.value:
                seq.add(self.build(item, depth + 1), self.pos(item))
            return seq
        if isinstance(node, MappingNode):
            if tag != _CORE + "map":
                raise self.fail(node, "yaml-tag", f"tag '{tag}' is not allowed in a recipe")
            mapping = YMap(self.pos(node))
            for key_node, value_node in node.value:
                if _tag(key_node) == _CORE + "merge":
                    raise self.fail(key_node, "yaml-merge", "merge keys (<<) are not supported")
                key = self.build(key_node, depth + 1)
                if not isinstance(key, str):
                    raise self.fail(key_node, "yaml-key", f"key {key!r} is not a string")
                if key in mapping:
                    first = mapping.key_pos[key]
                    raise self.fail(
                        key_node,
                        "yaml-duplicate-key",
                        f"duplicate key '{key}' (first defined at line {first.line})",
                    )
                value = self.build(value_node, depth + 1)
                mapping.put(key, value, self.pos(key_node), self.pos(value_node))
            return mapping
        raise self.fail(node, "yaml-node", f"unexpected YAML node {type(node).__name__}")


def _flow_depth(text: str) -> int:
    """Deepest nesting of flow collections ([...] and {...}) outside quotes and comments.

    Block nesting needs indentation, so the size limit already bounds it; flow nesting is what a
    small file can make deep.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    quote = ""
    comment = False
    previous = "\n"
    for char in text:
        if comment:
            comment = char != "\n"
        elif quote:
            if char == quote:
                quote = ""
        elif char in "'\"" and previous in " \t\n[{,:":
            quote = char
        elif char == "#" and previous in " \t\n":
            comment = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
        previous = char
    return deepest


def _whole_file(file: str, code: str, message: str) -> RecipeSyntaxError:
    return RecipeSyntaxError([Diagnostic(Pos(file, 1, 1), "error", code, message)])


def load_text(text: str, file: str) -> Any:
    """Parse one YAML document; raise RecipeSyntaxError with a position on any problem."""
    if len(text) > MAX_BYTES:
        raise _whole_file(file, "yaml-too-large", f"file is larger than {MAX_BYTES} bytes")
    if _flow_depth(text) > MAX_DEPTH:
        # Refused before parsing: the C parser recurses without a limit and crashes on deep nesting.
        raise _whole_file(file, "yaml-too-deep", f"document is nested deeper than {MAX_DEPTH}")
    yaml = YAML(typ="safe")  # the C parser when ruamel.yaml.clib is there
    try:
        node = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p) or str(exc)
        raise RecipeSyntaxError([Diagnostic(Pos(file, line, col), "error", "yaml-syntax", message)]) from None
    except YAMLError as exc:
        raise _whole_file(file, "yaml-syntax", str(exc)) from None
    except RecursionError:
        raise _whole_file(file, "yaml-too-deep", "document is nested too deeply") from None
    if node is None:
        return None
    return _Builder(file, yaml).build(node)


def load_file(path: Path, shown_as: str | None = None) -> Any:
    """Read and parse ``path``; positions name it as ``shown_as`` (default: the path given)."""
    file = shown_as if shown_as is not None else str(path)
    with open(path, "rb") as fh:
        raw = fh.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise _whole_file(file, "yaml-too-large", f"file is larger than {MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _whole_file(file, "yaml-encoding", f"file is not UTF-8 text ({exc.reason})") from None
    return load_text(text, file)
