"""``device.record_id``: read the unit's identity and record it against the unit's history.

On Azure Sphere this is the chip's device ID as reported by ``az sphere device show-attached``;
later stages and the traceability record key the unit by it.
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
    id_kind: str = param("Which identifier of the unit to read and record.", default="device-id")


class DeviceRecordId(StepType):
    name = "device.record_id"
    summary = "Read the unit's identifier and record it for traceability."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {}
    typical = Typical(Duration.fixed(5), fail=0.001)

    def run(self, ctx: StepContext) -> None:
        kind = ctx.params.id_kind
        value = open_device(ctx).read_id(kind)
        if not value.strip():
            raise StepFailed(f"the unit reported an empty {kind}")
        ctx.measure(kind.replace("-", "_"), value)
