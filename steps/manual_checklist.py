"""``manual.checklist``: an operator confirms a list of checks by hand.

Used for visual inspection and for rework (for instance ``antenna_reseated`` after an RF failure);
the stage passes when the operator confirms every check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.step import StepType, param


@dataclass(frozen=True)
class Params:
    checks: tuple[str, ...] = param("Names of the checks the operator must confirm, in order.")
    instructions: str | None = param(
        "Text shown to the operator before the checks; None shows none.", default=None
    )


class ManualChecklist(StepType):
    name = "manual.checklist"
    summary = "Have the operator confirm a list of manual checks."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"checks": ("antenna_reseated",)}
