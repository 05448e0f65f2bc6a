"""Problems found in recipes, each pointing at the source: ``file:line:col``.

A diagnostic is always one line of plain text: whatever a recipe or a file name holds (a newline,
an escape sequence, a control character) is escaped where a diagnostic is made, so no input can
split a diagnostic or colour the terminal. Messages quote what the user wrote with ``quoted``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]
MAX_MESSAGE = 1000
"""Characters of a message kept: a recipe may hold a megabyte-long key, a terminal line should not."""
QUOTE_LIMIT = 80
"""Characters of one quoted value kept."""


def one_line(text: str) -> str:
    """``text`` with every character that is not printable (a space is) written as its escape, as repr does."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def quoted(text: object, limit: int = QUOTE_LIMIT) -> str:
    """What the user wrote, quoted for a message (repr-style: control characters escaped), cut at ``limit``."""
    value = text if isinstance(text, str) else str(text)
    return repr(value if len(value) <= limit else value[:limit] + "…")


@dataclass(frozen=True, order=True)
class Pos:
    """A place in a source file; line and column are 1-based."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{one_line(self.file)}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    pos: Pos
    severity: Severity
    code: str
    message: str

    def __post_init__(self) -> None:
        # The one place that keeps every diagnostic on one line, whoever wrote the message.
        message = self.message if len(self.message) <= MAX_MESSAGE else self.message[:MAX_MESSAGE] + "…"
        object.__setattr__(self, "message", one_line(message))

    def __str__(self) -> str:
        return f"{self.pos}: {self.severity}: {self.message} [{self.code}]"

    def as_json(self) -> dict[str, object]:
        return {
            "file": one_line(self.pos.file),
            "line": self.pos.line,
            "column": self.pos.col,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }


class RecipeError(Exception):
    """A recipe cannot be used; carries every problem found, errors first."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.severity != "error", d.pos))
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class RecipeSyntaxError(RecipeError):
    """The file is not YAML that floorflow accepts (syntax, duplicate keys, tags, size)."""


class RecipeSchemaError(RecipeError):
    """The YAML does not follow the recipe schema or a step type's parameters."""


_FEW_CHOICES = 500
"""Up to this many names, each is compared with the unknown one; beyond, only near misses are looked up."""
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_-."


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' suffix, or '' when nothing is close.

    Comparing with every name costs time in proportion to their number, for every unknown name: in a
    recipe of thousands of stages with thousands of unknown references that grows with the square of
    its size. So a large set of names (given as a mapping or a set) is only searched for names one
    edit away (a letter left out, doubled, swapped or changed), each a lookup.
    """
    if isinstance(choices, Mapping | AbstractSet) and len(choices) > _FEW_CHOICES:
        near = sorted(n for n in _one_edit(name) if n in choices)
        return f" (did you mean {quoted(near[0])}?)" if near else ""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {quoted(close[0])}?)" if close else ""


def _one_edit(name: str) -> set[str]:
    """Every text one deletion, transposition, replacement or insertion away from ``name``."""
    if len(name) > 200:
        return set()
    letters = set(_ALPHABET) | set(name)
    splits = [(name[:i], name[i:]) for i in range(len(name) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    out |= {a + c + b[1:] for a, b in splits if b for c in letters}
    out |= {a + c + b for a, b in splits for c in letters}
    out.discard(name)
    return out
