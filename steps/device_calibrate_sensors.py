"""``device.calibrate_sensors``: calibrate the unit's sensors on the fixture.

On the Windows 10 Mobile line the phone sits in a fixture that presents known light, field,
distance and orientation; the calibration of each named sensor is stored on the phone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.step import Duration, StepType, Typical, param
from steps.common import open_device, stop_if_cancelled


@dataclass(frozen=True)
class Params:
    sensors: tuple[Literal["als", "magnetometer", "proximity", "accelerometer"], ...] = param(
        "Sensors to calibrate: any of als, magnetometer, proximity, accelerometer."
    )


CORRECTABLE: dict[str, tuple[float, float, str | None]] = {
    "als_gain": (0.5, 1.5, None),
    "magnetometer_offset_ut": (0.0, 400.0, "uT"),
    "proximity_crosstalk_counts": (0.0, 1000.0, "counts"),
    "accelerometer_bias_g": (0.0, 0.3, "g"),
}
"""What each sensor's calibration can correct: a unit beyond it has a bad sensor."""


class DeviceCalibrateSensors(StepType):
    name = "device.calibrate_sensors"
    summary = "Calibrate the unit's sensors (ALS, magnetometer, proximity, accelerometer)."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"sensors": ("als",)}
    typical = Typical(Duration.triangular(30, 40, 60), fail=0.01)

    def run(self, ctx: StepContext) -> None:
        device = open_device(ctx)
        beyond: list[str] = []
        for sensor in ctx.params.sensors:
            stop_if_cancelled(ctx)
            for name, value in device.calibrate_sensor(sensor).items():
                low, high, units = CORRECTABLE.get(name, (None, None, None))
                ctx.measure(name, value, units, sensor=sensor)
                if (low is not None and value < low) or (high is not None and value > high):
                    beyond.append(f"{name} = {value:g}{' ' + units if units else ''} (correctable: {low:g}..{high:g})")
        if beyond:
            raise StepFailed(f"calibration cannot correct {', '.join(beyond)}")
