"""``sample.inspect``: a random sample test run on the units the stage's ``sampling:`` picks.

The stage's ``sampling:`` decides which units run it: a rate, or an ANSI/ASQ Z1.4 single sampling
plan (normal inspection) from the lot size, inspection level and AQL. Sampled units go through the
named checks (for instance an out-of-box inspection or a drop test); each failure counts against
the lot, and at the plan's rejection number (or the stage's recall threshold) the lot is held. The
plan in force is recorded with every inspection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.sampling import plan_of
from engine.step import Duration, Effects, StepType, Typical, param
from steps.common import ask_checks, open_device


@dataclass(frozen=True)
class Params:
    tests: tuple[str, ...] = param("Names of the checks run on a sampled unit.")


class SampleInspect(StepType):
    name = "sample.inspect"
    summary = "Inspect a randomly sampled unit; use with the stage's sampling."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"tests": ("visual",)}
    typical = Typical(Duration.triangular(300, 600, 900), fail=0.01, operator=True)

    @classmethod
    def effects(cls, params: Any) -> Effects:
        # An inspector tests the packed unit by hand: the station sends it nothing.
        return Effects(asks=tuple(params.tests), talks_to_unit=False)

    def run(self, ctx: StepContext) -> None:
        open_device(ctx)
        plan = plan_of(ctx.stage.sampling) if ctx.stage.sampling is not None else None
        if plan is not None:
            ctx.measure("sample_plan", f"Z1.4 {plan.letter}: n={plan.sample_size} Ac={plan.accept} Re={plan.reject}")
        tests = ctx.params.tests
        failed = ask_checks(ctx, tests, "sample test of a packed unit")
        if failed:
            raise StepFailed(f"{len(failed)} of {len(tests)} sample tests failed: {', '.join(failed)}")
