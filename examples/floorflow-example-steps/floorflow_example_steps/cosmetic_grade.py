"""example.cosmetic_grade: the operator grades the housing A, B or C by the checks it fails."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.step import Duration, Effects, StepType, Typical, param

GRADES = ("A", "B", "C")
"""No check failed: A; one: B; more: C."""


@dataclass(frozen=True)
class Params:
    checks: tuple[str, ...] = param("Cosmetic checks the operator answers, in order.")
    worst: Literal["A", "B", "C"] = param("The worst grade that still passes.", default="B")


class CosmeticGrade(StepType):
    name = "example.cosmetic_grade"
    summary = "Have the operator grade the housing A, B or C; a unit graded worse than `worst` fails."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"checks": ("no_scratches",)}
    typical = Typical(Duration.triangular(20, 35, 90), fail=0.02, operator=True)

    @classmethod
    def effects(cls, params: Params) -> Effects:
        # The checks are what an answers file may answer for a stage of this type.
        return Effects(asks=params.checks)

    def run(self, ctx: StepContext) -> None:
        failed: list[str] = []
        for check in ctx.params.checks:
            answer = ctx.operator.ask(ctx.stage.id, check, f"Unit {ctx.unit.serial}: {check.replace('_', ' ')}?")
            ctx.measure(check, "pass" if answer.passed else "fail")
            if not answer.passed:
                failed.append(check if answer.comment is None else f"{check} ({answer.comment})")
        grade = GRADES[min(len(failed), len(GRADES) - 1)]
        ctx.measure("cosmetic_grade", grade)
        if GRADES.index(grade) > GRADES.index(ctx.params.worst):
            raise StepFailed(f"cosmetic grade {grade} is worse than {ctx.params.worst}: {', '.join(failed)}")
