"""``device.calibrate_sensors``: calibrate the unit's sensors on the fixture.

On the Windows 10 Mobile line the phone sits in a fixture that presents known light, field,
distance and orientation; the calibration of each named sensor is stored on the phone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from engine.step import StepType, param


@dataclass(frozen=True)
class Params:
    sensors: tuple[Literal["als", "magnetometer", "proximity", "accelerometer"], ...] = param(
        "Sensors to calibrate: any of als, magnetometer, proximity, accelerometer."
    )


class DeviceCalibrateSensors(StepType):
    name = "device.calibrate_sensors"
    summary = "Calibrate the unit's sensors (ALS, magnetometer, proximity, accelerometer)."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"sensors": ("als",)}
