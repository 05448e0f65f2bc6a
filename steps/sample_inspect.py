"""``sample.inspect``: a random sample test run on the units the stage's ``sampling:`` picks.

Sampled units go through the named checks (for instance a drop or full RF re-test); failures count
against the lot and may put it on hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.step import Effects, StepType, param
from steps.common import ask_checks, open_device


@dataclass(frozen=True)
class Params:
    tests: tuple[str, ...] = param("Names of the checks run on a sampled unit.")


class SampleInspect(StepType):
    name = "sample.inspect"
    summary = "Inspect a randomly sampled unit; use with the stage's sampling."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"tests": ("visual",)}

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(asks=tuple(params.tests))

    def run(self, ctx: StepContext) -> None:
        open_device(ctx)
        tests = ctx.params.tests
        failed = ask_checks(ctx, tests, "sample test of a packed unit")
        if failed:
            raise StepFailed(f"{len(failed)} of {len(tests)} sample tests failed: {', '.join(failed)}")
