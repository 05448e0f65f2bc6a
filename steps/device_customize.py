"""``device.customize``: apply the market and mobile-operator customizations to the unit.

On the Windows 10 Mobile line this selects the variant of the image for the market the phone is
sold in and, when it is sold through one, the operator's customizations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.step import Duration, StepType, Typical, param
from steps.common import open_device


@dataclass(frozen=True)
class Params:
    market: str = param("Market whose customizations are applied to the unit.")
    operator: str | None = param("Mobile operator whose customizations are applied; None applies none.", default=None)


class DeviceCustomize(StepType):
    name = "device.customize"
    summary = "Apply the market and operator customizations to the unit."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"market": "EU"}
    typical = Typical(Duration.triangular(20, 30, 45), fail=0.002)

    def run(self, ctx: StepContext) -> None:
        p = ctx.params
        expected = p.market if p.operator is None else f"{p.market}/{p.operator}"
        variant = open_device(ctx).customize(p.market, p.operator)
        ctx.measure("customization", variant)
        if variant != expected:
            raise StepFailed(f"the unit reports customization {variant!r} after {expected!r} was applied")
