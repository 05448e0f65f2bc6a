"""Problems found in recipes, each pointing at the source: ``file:line:col``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Pos:
    """A place in a source file; line and column are 1-based."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    pos: Pos
    severity: Severity
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.pos}: {self.severity}: {self.message} [{self.code}]"

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.pos.file,
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


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' suffix, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
