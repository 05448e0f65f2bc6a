"""``device.customize``: apply the market and mobile-operator customizations to the unit.

On the Windows 10 Mobile line this selects the variant of the image for the market the phone is
sold in and, when it is sold through one, the operator's customizations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.step import StepType, param


@dataclass(frozen=True)
class Params:
    market: str = param("Market whose customizations are applied to the unit.")
    operator: str | None = param(
        "Mobile operator whose customizations are applied; None applies none.", default=None
    )


class DeviceCustomize(StepType):
    name = "device.customize"
    summary = "Apply the market and operator customizations to the unit."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"market": "EU"}
