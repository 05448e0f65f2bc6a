"""``manual.checklist``: an operator confirms a list of checks by hand.

Used for visual inspection and for rework (for instance ``antenna_reseated`` after an RF failure);
the stage passes when the operator confirms every check. Each check is recorded as a measurement
named after it ("pass" or "fail"). A measurement the stage declares that is not a check (such as
``standby_current_ma``) is read from the fixture's meter (``resources["meter"]``) once the operator
has done the checks, since an operator's answer carries no number.

A ``picture`` (an image file, its path relative to the recipe file that names it) is shown to the
operator with each check; a picture that is not a file there is a station error, before any check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from engine.context import StepContext
from engine.outcome import StationError, StepFailed
from engine.step import Duration, Effects, StepType, Typical, param
from steps.common import ask_checks, open_device, resource


@dataclass(frozen=True)
class Params:
    checks: tuple[str, ...] = param("Names of the checks the operator must confirm, in order.")
    instructions: str | None = param("Text shown to the operator before the checks; None shows none.", default=None)
    picture: str | None = param(
        "An image file shown to the operator with the checks, its path relative to the recipe file; None shows none.",
        default=None,
    )


class ManualChecklist(StepType):
    name = "manual.checklist"
    summary = "Have the operator confirm a list of manual checks."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"checks": ("antenna_reseated",)}
    typical = Typical(Duration.triangular(20, 30, 60), fail=0.004, operator=True)

    @classmethod
    def effects(cls, params: Any) -> Effects:
        # The operator checks the unit by hand (a meter reading is the fixture's): no command reaches it.
        return Effects(asks=tuple(params.checks), talks_to_unit=False)

    def run(self, ctx: StepContext) -> None:
        p = ctx.params
        picture = None if p.picture is None else picture_of(ctx, p.picture)
        device = open_device(ctx)
        failed = ask_checks(ctx, p.checks, p.instructions or "", picture)
        readings = [m for m in ctx.stage.measurements if m.name not in p.checks]
        if readings:
            meter = resource(ctx, "meter")
            for m in readings:
                ctx.measure(m.name, meter.read(device, m.name), m.units)
        if failed:
            raise StepFailed(f"{len(failed)} of {len(p.checks)} checks failed: {', '.join(failed)}")


def picture_of(ctx: StepContext, picture: str) -> Path:
    """The stage's picture as an absolute path, found next to the recipe file whose ``with:`` names it."""
    recipe = Path(ctx.stage.at("with").file)
    path = (recipe.parent / picture).resolve()
    if not path.is_file():
        raise StationError(f"stage '{ctx.stage.id}': picture '{picture}' is not a file ({path})")
    return path
