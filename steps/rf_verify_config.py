"""``rf.verify_config``: check the RF settings programmed into the unit.

On Azure Sphere the RF settings check tool compares what the MT3620's e-fuses hold (regulatory
region, target transmit power, and a programmed MAC address) with what the product expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.step import StepType, param


@dataclass(frozen=True)
class Params:
    region: str = param("Regulatory region the unit's RF settings must name.")
    target_power_dbm: float = param("Target transmit power, in dBm, the RF settings must hold.")
    check_mac: bool = param("Also require a MAC address to be programmed.", default=True)


class RfVerifyConfig(StepType):
    name = "rf.verify_config"
    summary = "Verify the unit's programmed RF settings: region, target power and MAC address."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"region": "EU", "target_power_dbm": 16.0}
