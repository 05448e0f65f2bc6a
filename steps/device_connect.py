"""``device.connect``: open the station's link to the unit on the fixture.

On the Azure Sphere line the MT3620 is reached over USB through its FTDI bridge (or a bare service
UART on module testers); on the Windows 10 Mobile line the phone enumerates over USB. Every later
stage on the station talks to the unit through this link.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from engine.context import StepContext
from engine.step import Duration, Effects, StepType, Typical, param
from steps.common import open_device


@dataclass(frozen=True)
class Params:
    interface: Literal["usb", "uart", "ftdi"] = param(
        "Link used to reach the unit: USB, a plain service UART, or the FTDI USB-serial bridge.",
        default="usb",
    )
    timeout_s: int = param("Seconds to wait for the unit to answer before the stage errors.", default=30)


class DeviceConnect(StepType):
    name = "device.connect"
    summary = "Connect to the unit on the fixture over USB, UART or FTDI."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {}
    typical = Typical(Duration.triangular(5, 10, 20), fail=0.003)

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(connects=True)

    def run(self, ctx: StepContext) -> None:
        p = ctx.params
        open_device(ctx).connect(p.interface, p.timeout_s, ctx.cancelled)
