"""Say in a recipe's words what a YAML parser's indentation error means.

The parser says "while parsing a block mapping did not find expected key": true, but it names its
own state, not the line the engineer wrote wrong. Indentation is what makes most of these errors, so
the line the parser stopped at is compared with the lines above it that it can belong to (the list
items and keys it could line up with), and the message says which it is indented deeper or less
than, or that a tab indents it. Anything else keeps the parser's words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.diagnostics import quoted

_INDENT_PROBLEMS = ("did not find expected key", "did not find expected '-' indicator")
_COLON_PROBLEM = "mapping values are not allowed"
_TAB = "\t"


@dataclass(frozen=True)
class _Line:
    """A line above the one in error that it may belong to: where its list item and key start."""

    number: int
    dash: int | None
    """Column (0-based) of the line's '-', when it starts a list item."""
    key: int | None
    """Column of the key the line starts (after the '- ' of an item), when it starts one."""
    name: str


def indentation_words(lines: list[str], problem: str, line: int, col: int) -> tuple[int, int, str] | None:
    """(line, column, message) in a recipe's words for the parser's ``problem`` at ``line``:``col``
    (0-based), or None when it is not an indentation mistake this recognises."""
    if not 0 <= line < len(lines):
        return None
    text = lines[line]
    indent = len(text) - len(text.lstrip(" \t"))
    if _TAB in text[:indent]:
        tab = text.index(_TAB)
        return line, tab, "a tab indents this line: YAML indents with spaces"
    if _COLON_PROBLEM in problem:
        if ": " in text[indent:col]:
            return line, col, "a value that holds ': ' must be quoted ('...' or \"...\")"
    elif not (any(p in problem for p in _INDENT_PROBLEMS) and col == indent):
        return None
    message = _compared(lines, line, indent, _starts_item(text[indent:]))
    return (line, col, message) if message else None


def _starts_item(text: str) -> bool:
    return text.startswith("-") and (len(text) == 1 or text[1] in " \t")


def _compared(lines: list[str], line: int, indent: int, item: bool) -> str | None:
    """How the line at ``indent`` is out of line with the lists or keys above it."""
    above = _enclosing(lines, line)
    if item:
        dashes = [(a.dash, a) for a in above if a.dash is not None]
        if not dashes:
            keys = sorted((a for a in above if a.key is not None), key=lambda a: abs((a.key or 0) - indent))
            beside = f" (like {_key_at(keys[0])})" if keys else ""
            return f"a list item where a key is expected{beside}: a list goes under a key, indented"
        return _deeper_or_less("this list item", "the list it belongs to", indent, dashes, _item_at)
    for a in above:
        if a.dash == indent and a.key is not None:
            return f"this line is indented less than the key it belongs beside ({_key_at(a)}, after the '- ')"
    columns = [(a.key, a) for a in above if a.key is not None]
    return _deeper_or_less("this line", "the keys beside it", indent, columns, _key_at) if columns else None


def _deeper_or_less(
    subject: str, what: str, indent: int, columns: list[tuple[int, _Line]], say: Callable[[_Line], str]
) -> str | None:
    """Compared with the nearest column (both, when two are as near)."""
    nearest = min(abs(column - indent) for column, _ in columns)
    if nearest == 0:
        return None
    near = [(column, a) for column, a in columns if abs(column - indent) == nearest]
    (column, a), (other, b) = near[0], near[-1]
    if column != other:  # as far from one above it as from one below: either may be meant
        outer, inner = (b, a) if other < column else (a, b)
        return f"{subject} is indented between {say(outer)} and {say(inner)}: line it up with one of them"
    how = "deeper" if indent > column else "less"
    return f"{subject} is indented {how} than {what} (like {say(a)})"


def _item_at(a: _Line) -> str:
    return f"the '-' at line {a.number + 1}, column {(a.dash or 0) + 1}"


def _key_at(a: _Line) -> str:
    return f"{quoted(a.name)} at line {a.number + 1}, column {(a.key or 0) + 1}"


def _enclosing(lines: list[str], line: int) -> list[_Line]:
    """The lines above ``line`` that it may line up with, nearest first: the first line with content
    above it, then each line above that is indented less than all those between."""
    out: list[_Line] = []
    least: int | None = None
    for number in range(line - 1, -1, -1):
        text = lines[number]
        body = text.lstrip(" ")
        if not body or body.startswith("#"):
            continue
        indent = len(text) - len(body)
        if least is not None and indent >= least:
            continue
        least = indent
        out.append(_parsed(number, indent, body))
        if indent == 0:
            break
    return out


def _parsed(number: int, indent: int, body: str) -> _Line:
    dash = None
    if _starts_item(body):
        dash = indent
        rest = body[1:].lstrip(" ")
        indent += len(body) - len(rest)
        body = rest
    name, colon, after = body.partition(":")
    is_key = bool(colon) and after[:1] in ("", " ") and bool(name) and name[0] not in "-[{'\"#" and " #" not in name
    return _Line(number, dash, indent if is_key else None, name.strip() if is_key else "")
