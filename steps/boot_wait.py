"""``boot.wait``: wait until the unit has booted, optionally rebooting it first.

The unit counts as up when it enumerates on USB and, if a banner is given, prints it on the serial
console. A reboot starts the unit from its storage, so an image booted from RAM (the Windows 10
Mobile MMOS test image) is gone afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.step import Duration, Effects, StepType, Typical, param
from steps.common import open_device


@dataclass(frozen=True)
class Params:
    usb: bool = param("Wait for the unit to enumerate on USB.", default=True)
    banner: str | None = param(
        "Regular expression the serial console must print; None does not watch the console.",
        default=None,
    )
    reboot: bool = param("Reboot the unit from its storage before waiting.", default=False)
    timeout_s: int = param("Seconds to wait for the unit to come up before the stage errors.", default=60)


class BootWait(StepType):
    name = "boot.wait"
    summary = "Wait for the unit to boot (on USB and/or a serial banner), optionally rebooting it."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {}
    typical = Typical(Duration.triangular(30, 45, 90), fail=0.003)

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(clears_volatile=params.reboot, boots=True)

    def run(self, ctx: StepContext) -> None:
        p = ctx.params
        device = open_device(ctx)
        if p.reboot:
            device.reboot()
        console = device.wait_boot(p.usb, p.timeout_s, ctx.cancelled)
        if p.banner is not None and re.search(p.banner, console) is None:
            last = console.strip().splitlines()[-1:] or [""]
            raise StepFailed(f"the unit's console never printed /{p.banner}/; its last line was {last[0]!r}")
