"""``device.record_id``: read the unit's identity and record it against the unit's history.

On Azure Sphere this is the chip's device ID as reported by ``az sphere device show-attached``;
later stages and the traceability record key the unit by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.step import StepType, param


@dataclass(frozen=True)
class Params:
    id_kind: str = param("Which identifier of the unit to read and record.", default="device-id")


class DeviceRecordId(StepType):
    name = "device.record_id"
    summary = "Read the unit's identifier and record it for traceability."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {}
