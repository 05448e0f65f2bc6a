"""``rf.verify_config``: check the RF settings programmed into the unit.

On Azure Sphere the RF settings check tool compares what the MT3620's e-fuses hold (regulatory
region, target transmit power, and a programmed MAC address) with what the product expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.step import Duration, Effects, StepType, Typical, param
from steps.common import open_device, valid_mac
from steps.common.radio import RF_TEST_MODE


@dataclass(frozen=True)
class Params:
    region: str = param("Regulatory region the unit's RF settings must name.")
    target_power_dbm: float = param("Target transmit power, in dBm, the RF settings must hold.")
    check_mac: bool = param("Also require a MAC address to be programmed.", default=True)


TARGET_TOLERANCE_DB = 0.01
"""Target power is programmed, not measured: it must be the expected value."""


class RfVerifyConfig(StepType):
    name = "rf.verify_config"
    summary = "Verify the unit's programmed RF settings: region, target power and MAC address."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"region": "EU", "target_power_dbm": 16.0}
    typical = Typical(Duration.fixed(15), fail=0.002)

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(needs_capabilities=(RF_TEST_MODE,))

    def run(self, ctx: StepContext) -> None:
        p = ctx.params
        settings = open_device(ctx).rf_settings()
        ctx.measure("rf_region", settings.region)
        ctx.measure("rf_target_power_dbm", settings.target_power_dbm, "dBm")
        problems: list[str] = []
        if settings.region != p.region:
            problems.append(f"region is {settings.region}, expected {p.region}")
        target = settings.target_power_dbm
        if target is None or abs(target - p.target_power_dbm) > TARGET_TOLERANCE_DB:
            problems.append(f"target power is {target} dBm, expected {p.target_power_dbm} dBm")
        if p.check_mac:
            ctx.measure("rf_mac", settings.mac)
            if not valid_mac(settings.mac):
                problems.append(f"no valid MAC address programmed (found {settings.mac!r})")
        if problems:
            raise StepFailed("RF settings: " + "; ".join(problems))
