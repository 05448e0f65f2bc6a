"""example.device_id_check: the unit's device ID has the shape its security chip gives.

It talks to the unit through the station's device, as floorflow's own steps do
(``steps.common.open_device``: the simulated line and the real one offer the same commands).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.step import Duration, StepType, Typical, param
from steps.common import open_device


@dataclass(frozen=True)
class Params:
    length: int = param("Hexadecimal digits in a device ID.", default=128)
    prefix: str | None = param("What every device ID of the product starts with (none: anything).", default=None)


class DeviceIdCheck(StepType):
    name = "example.device_id_check"
    summary = "Read the unit's device ID, check its length and prefix, and record its first 8 digits."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {}
    typical = Typical(Duration.fixed(4), fail=0.001)

    def run(self, ctx: StepContext) -> None:
        device_id = open_device(ctx).read_id("device-id")
        ctx.measure("device_id_prefix", device_id[:8])
        length, prefix = ctx.params.length, ctx.params.prefix
        if re.fullmatch(f"[0-9A-F]{{{length}}}", device_id) is None:
            raise StepFailed(f"device ID {device_id[:16]}... is not {length} upper-case hexadecimal digits")
        if prefix is not None and not device_id.startswith(prefix.upper()):
            raise StepFailed(f"device ID {device_id[:16]}... does not start with {prefix.upper()}")
