"""``rf.measure``: measure the radio's transmit performance on a band's channels.

On the Azure Sphere line the MT3620 radio is driven through the RF tools (in RF test mode, before
Module1Complete) while the tester measures each channel; results feed the stage's measurements.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.step import StepType, param


@dataclass(frozen=True)
class Params:
    band: str = param("Radio band to measure, for instance wifi-2g4.")
    channels: tuple[int, ...] = param("Channel numbers of the band to measure.")


class RfMeasure(StepType):
    name = "rf.measure"
    summary = "Measure the radio's RF performance on the given channels of a band."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"band": "wifi-2g4", "channels": (1, 6, 11)}
