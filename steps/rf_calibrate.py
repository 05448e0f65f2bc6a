"""``rf.calibrate``: tune the radio on a band's channels and store the trim values.

On the Azure Sphere line the MT3620 radio is tuned per unit with the RF tools, and the resulting
trim values are written to the chip's e-fuses unless the stage only computes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.step import StepType, param


@dataclass(frozen=True)
class Params:
    band: str = param("Radio band to calibrate, for instance wifi-2g4.")
    channels: tuple[int, ...] = param("Channel numbers of the band to calibrate on.")
    write_trim: bool = param("Write the computed trim values to the unit.", default=True)


class RfCalibrate(StepType):
    name = "rf.calibrate"
    summary = "Calibrate the radio on the given channels and write the trim values."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"band": "wifi-2g4", "channels": (1, 6, 11)}
