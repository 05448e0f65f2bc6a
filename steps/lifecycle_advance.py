"""``lifecycle.advance``: move the unit forward in its one-way lifecycle.

On Azure Sphere this updates the chip's manufacturing state (Blank, then Module1Complete, then
DeviceComplete); each step locks capabilities away for good, so the route rules require every
temporary image to be gone before the final advance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.step import Duration, Effects, StepType, Typical, param
from steps.common import open_device


@dataclass(frozen=True)
class Params:
    to: str = param("Lifecycle state (from the recipe's lifecycle) the unit moves to.", ref="lifecycle")


class LifecycleAdvance(StepType):
    name = "lifecycle.advance"
    summary = "Move the unit's lifecycle forward to the given state."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"to": "DeviceComplete"}
    typical = Typical(Duration.fixed(3), fail=0.001)

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(advances_to=params.to)

    def run(self, ctx: StepContext) -> None:
        to = ctx.params.to
        device = open_device(ctx)
        device.advance_lifecycle(to)
        state = device.status().lifecycle
        ctx.measure("lifecycle_state", state)
        if state != to:
            raise StepFailed(f"the unit reports lifecycle state {state} after moving it to {to}")
