"""Load YAML into plain dicts and lists that remember where each value was written.

ruamel.yaml composes the node tree (with line and column marks); we build the data ourselves so
that duplicate keys, tags that would construct objects, merge keys and oversized documents are
refused with a position, and so that the result is plain data a JSON Schema validator takes fast.
"""

from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tag import Tag

from engine.diagnostics import Diagnostic, Pos, RecipeSyntaxError, quoted
from engine.yamlindent import indentation_words

MAX_BYTES = 1 << 20
"""A recipe is text written by people; a megabyte is far beyond any real one."""
MAX_NODES = 200_000
"""Counted with aliases expanded, so an alias bomb is refused before it is walked."""
MAX_DEPTH = 64

MAX_INT = (1 << 63) - 1
"""With ``finite=True``, integers beyond 64 bits are refused: no count, bound or version needs more,
and a store column or a float parameter could not hold them."""

_CORE = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_CORE + t for t in ("str", "int", "float", "bool", "null"))
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL}
_HOLDS = {_INT: {_INT}, _FLOAT: {_FLOAT, _INT}, _BOOL: {_BOOL}, _NULL: {_NULL}}
"""For a scalar given an explicit tag: the tags its text must read as when plain (``!!float 1`` is
fine, ``!!bool maybe`` is not). ``!!str`` holds any text."""
_NOT_YAML_TEXT = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters YAML does not allow in a document (the C0 controls but tab and line breaks, DEL, ...)."""


class _Resolver(VersionedResolver):
    """ruamel.yaml's YAML 1.2 resolver with its rules looked up once.

    The stock resolver looks the YAML version up for every scalar, through two failed attribute
    lookups, and makes a new tag object each time: a third of the time a large recipe took to load.
    The rules are the same (YAML 1.2 is what the C parser always used); only the lookups are gone.
    """

    @property
    def processing_version(self) -> Any:
        return (1, 2)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode:
            if implicit[0]:
                known = _RESOLVED.get(value)  # ids, keys and step names recur thousands of times
                if known is not None:
                    return known
                if len(_RESOLVED) > 100_000:
                    _RESOLVED.clear()
                _RESOLVED[value] = _implicit_tag(value)
                return _RESOLVED[value]
            return _STR_TAG
        return _SEQ_TAG if kind is SequenceNode else _MAP_TAG


def _implicit_tag(value: str) -> Tag:
    for tag, regexp in _implicit_rules().get(value[:1], _ANY_FIRST):
        if regexp.match(value):
            return tag
    return _STR_TAG


def _implicit_rules() -> dict[str, list[tuple[Tag, Any]]]:
    """ruamel.yaml's YAML 1.2 implicit rules by first character, each ending with the any-first ones."""
    global _RULES
    if _RULES is None:
        table = VersionedResolver(version=(1, 2)).versioned_resolver
        shared: dict[str, Tag] = {}
        rules = {
            first: [(shared.setdefault(tag, Tag(suffix=tag)), regexp) for tag, regexp in entries]
            for first, entries in table.items()
        }
        _ANY_FIRST.extend(rules.pop(None, []))
        _RULES = {first: entries + _ANY_FIRST for first, entries in rules.items()}
        _TAG_TEXT.update((id(tag), (tag, str(tag.trval))) for tag in shared.values())
    return _RULES


_RULES: dict[str, list[tuple[Tag, Any]]] | None = None
_ANY_FIRST: list[tuple[Tag, Any]] = []
_RESOLVED: dict[str, Tag] = {}
"""Plain scalars already resolved, and their tags."""
_STR_TAG, _SEQ_TAG, _MAP_TAG = (Tag(suffix=_CORE + t) for t in ("str", "seq", "map"))
_TAG_TEXT: dict[int, tuple[Tag, str]] = {id(t): (t, str(t.trval)) for t in (_STR_TAG, _SEQ_TAG, _MAP_TAG)}
"""The text of each tag the resolver gives, by identity: reading a tag's text is a property lookup
and a try for each of the 150,000 values of a large recipe."""
_PLAIN = _Resolver()


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
    tag = node.ctag
    known = _TAG_TEXT.get(id(tag))
    if known is not None and known[0] is tag:
        return known[1]
    return str(tag.trval) if isinstance(tag, Tag) else str(tag)


def _tag_name(tag: str) -> str:
    """A tag as it is written: ``!!binary`` for the YAML core tags."""
    return quoted("!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag)


class _Builder:
    def __init__(self, file: str, yaml: YAML, finite: bool, text: str) -> None:
        self.file = file
        self.constructor = yaml.constructor
        self.finite = finite
        self.nodes = 0
        self.text = text
        self.surely_inside = text.count("\n") + 1
        """Lines the text has at least (other line breaks only add lines): a mark on them is inside it."""
        self.lines: list[str] | None = None

    def pos(self, node: Node) -> Pos:
        mark = node.start_mark
        if mark.line < self.surely_inside:
            return Pos(self.file, mark.line + 1, mark.column + 1)
        # An empty value at the end of a file with no final line break is marked a line past it.
        if self.lines is None:
            self.lines = _LINE_BREAK.split(self.text)
            self.surely_inside = len(self.lines)
        return Pos(self.file, *_inside_lines(self.lines, mark.line + 1, mark.column + 1))

    def fail(self, node: Node, code: str, message: str) -> RecipeSyntaxError:
        return RecipeSyntaxError([Diagnostic(self.pos(node), "error", code, message)])

    def build(self, node: Node, depth: int = 0) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, "yaml-too-large", f"document has more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise self.fail(node, "yaml-too-deep", f"document is nested deeper than {MAX_DEPTH}")
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        tag = _tag(node)
        if isinstance(node, SequenceNode):
            if tag != _CORE + "seq":
                raise self.fail(node, "yaml-tag", f"tag {_tag_name(tag)} is not allowed in a recipe")
            seq = YList(self.pos(node))
            for item in node.value:
                seq.add(self.build(item, depth + 1), self.pos(item))
            return seq
        if isinstance(node, MappingNode):
            if tag != _CORE + "map":
                raise self.fail(node, "yaml-tag", f"tag {_tag_name(tag)} is not allowed in a recipe")
            return self.mapping(node, depth)
        raise self.fail(node, "yaml-node", f"unexpected YAML node {type(node).__name__}")

    def mapping(self, node: MappingNode, depth: int) -> YMap:
        mapping = YMap(self.pos(node))
        for key_node, value_node in node.value:
            if key_node.value == "<<" and _tag(key_node) == _CORE + "merge":
                raise self.fail(key_node, "yaml-merge", "merge keys (<<) are not supported")
            key = self.build(key_node, depth + 1)
            if not isinstance(key, str):
                raise self.fail(key_node, "yaml-key", f"key {quoted(repr(key))} is not a string")
            if key in mapping:
                first = mapping.key_pos[key]
                raise self.fail(
                    key_node,
                    "yaml-duplicate-key",
                    f"duplicate key {quoted(key)} (first defined at line {first.line})",
                )
            value = self.build(value_node, depth + 1)
            mapping.put(key, value, self.pos(key_node), self.pos(value_node))
        return mapping

    def scalar(self, node: ScalarNode) -> Any:
        tag, text = _tag(node), node.value
        if tag == _STR:
            return text
        if tag == _CORE + "timestamp":
            raise self.fail(node, "yaml-tag", f"{quoted(text)} reads as a date: quote it to write text")
        if tag not in _SCALAR_TAGS:
            raise self.fail(node, "yaml-tag", f"tag {_tag_name(tag)} is not allowed in a recipe")
        # A tag written out (!!bool, !!int ...) is kept only for text that reads as that type unquoted.
        plain = str(_PLAIN.resolve(ScalarNode, text, (True, False)))
        if plain not in _HOLDS[tag]:
            raise self.fail(node, "yaml-value", f"{quoted(text)} is not a value of type {_tag_name(tag)}")
        try:
            value = self.constructor.construct_object(node, deep=True)
        except Exception as exc:  # whatever the constructor raises, the value is the problem
            raise self.fail(node, "yaml-value", f"cannot read {quoted(text)}: {exc}") from None
        if self.finite:
            self.check_number(node, value)
        return value

    def check_number(self, node: ScalarNode, value: Any) -> None:
        """Refuse a number no limit or parameter can use: not finite, or too large for a float or a store."""
        if isinstance(value, float) and not math.isfinite(value):
            message = f"{quoted(node.value)} is not a finite number (a limit of .nan or .inf would pass every value)"
            raise self.fail(node, "non-finite-number", message)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            message = f"{quoted(node.value)} is beyond the 64-bit integers a recipe may hold"
            raise self.fail(node, "number-range", message)


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
    for mark in _FLOW_MARK.finditer(text):  # only these characters change the count, the rest is skipped
        char, at = mark.group(), mark.start()
        if comment:
            comment = char != "\n"
        elif quote:
            if char == quote:
                quote = ""
        elif char in "'\"" and (text[at - 1] if at else "\n") in " \t\n[{,:":
            quote = char
        elif char == "#" and (text[at - 1] if at else "\n") in " \t\n":
            comment = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


_FLOW_MARK = re.compile("[][{}'\"#\n]")


def _whole_file(file: str, code: str, message: str) -> RecipeSyntaxError:
    return RecipeSyntaxError([Diagnostic(Pos(file, 1, 1), "error", code, message)])


_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
"""Line breaks as the C parser counts them, so a position found here agrees with the parser's."""


def _at_offset(text: str, offset: int, file: str, code: str, message: str) -> RecipeSyntaxError:
    line, start = 1, 0
    for brk in _LINE_BREAK.finditer(text, 0, offset):
        line, start = line + 1, brk.end()
    return RecipeSyntaxError([Diagnostic(Pos(file, line, offset - start + 1), "error", code, message)])


def _inside_text(text: str, line: int, col: int) -> tuple[int, int]:
    """The parser's position, kept inside the text: at the end of a file with no final line break
    it points one line past it."""
    return _inside_lines(_LINE_BREAK.split(text), line, col)


def _inside_lines(lines: list[str], line: int, col: int) -> tuple[int, int]:
    if line > len(lines):
        return len(lines), len(lines[-1]) + 1
    return line, min(col, len(lines[line - 1]) + 1)


def _parser_error(text: str, file: str, exc: MarkedYAMLError) -> RecipeSyntaxError:
    """The parser's error at its place, in a recipe's words when it is an indentation mistake."""
    mark = exc.problem_mark or exc.context_mark
    message = " ".join(str(p) for p in (exc.context, exc.problem) if p) or str(exc)
    if mark is None:
        return _whole_file(file, "yaml-syntax", message)
    said = indentation_words(_LINE_BREAK.split(text), message, mark.line, mark.column)
    line, col, message = (said[0], said[1], said[2]) if said else (mark.line, mark.column, message)
    line, col = _inside_text(text, line + 1, col + 1)
    return RecipeSyntaxError([Diagnostic(Pos(file, line, col), "error", "yaml-syntax", message)])


def load_text(text: str, file: str, *, finite: bool = False) -> Any:
    """Parse one YAML document; raise RecipeSyntaxError with a position on any problem.

    ``finite``: refuse numbers that are not finite (.nan, .inf, 1e400) or beyond 64-bit integers,
    at their position (a recipe's limits and parameters must be real bounds).
    """
    if len(text) > MAX_BYTES or (len(text) * 4 > MAX_BYTES and len(text.encode("utf-8", "replace")) > MAX_BYTES):
        raise _whole_file(file, "yaml-too-large", f"file is larger than {MAX_BYTES} bytes")
    bad = _NOT_YAML_TEXT.search(text)
    if bad:
        char = bad.group()
        message = f"character U+{ord(char):04X} ({quoted(char)}) is not allowed in YAML text: write it as an escape"
        raise _at_offset(text, bad.start(), file, "yaml-character", message)
    if _flow_depth(text) > MAX_DEPTH:
        # Refused before parsing: the C parser recurses without a limit and crashes on deep nesting.
        raise _whole_file(file, "yaml-too-deep", f"document is nested deeper than {MAX_DEPTH}")
    yaml = YAML(typ="safe")  # the C parser when ruamel.yaml.clib is there
    yaml.Resolver = _Resolver
    try:
        node = yaml.compose(text)
    except MarkedYAMLError as exc:
        raise _parser_error(text, file, exc) from None
    except YAMLError as exc:
        offset = getattr(exc, "position", None)
        if isinstance(offset, int) and 0 <= offset <= len(text):
            raise _at_offset(text, offset, file, "yaml-syntax", str(getattr(exc, "reason", exc))) from None
        raise _whole_file(file, "yaml-syntax", str(exc)) from None
    except RecursionError:
        raise _whole_file(file, "yaml-too-deep", "document is nested too deeply") from None
    if node is None:
        return None
    return _Builder(file, yaml, finite, text).build(node)


def read_text(path: Path, file: str) -> str:
    """The UTF-8 text of the regular file ``path``; RecipeSyntaxError at ``file``:1:1 otherwise.

    Opened without waiting (a FIFO has no writer) and checked to be a regular file before anything is
    read: a device never ends. OSError when the file cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = "a directory" if stat.S_ISDIR(mode) else "a device, FIFO or socket"
            raise _whole_file(file, "file-not-regular", f"is {what}, not a regular file")
        raw = fh.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise _whole_file(file, "yaml-too-large", f"file is larger than {MAX_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start].decode("utf-8")  # valid up to the byte: lines and columns as the parser counts
        message = f"file is not UTF-8 text ({exc.reason})"
        raise _at_offset(before, len(before), file, "yaml-encoding", message) from None


def load_file(path: Path, shown_as: str | None = None, *, finite: bool = False) -> Any:
    """Read and parse ``path``; positions name it as ``shown_as`` (default: the path given).

    ``finite`` as for ``load_text``. OSError when the file cannot be opened or read.
    """
    file = shown_as if shown_as is not None else str(path)
    return load_text(read_text(path, file), file, finite=finite)
