"""``flash.boot_ram``: boot an image from RAM without writing it to storage.

On the Windows 10 Mobile line this boots the MMOS manufacturing image (a WIM) from RAM for the
factory tests; the image lives only until the unit next reboots from its storage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.step import Duration, Effects, StepType, Typical, param
from steps.common import image_of, open_device


@dataclass(frozen=True)
class Params:
    image: str = param("Image (from the recipe's images) booted from RAM.", ref="image")


class FlashBootRam(StepType):
    name = "flash.boot_ram"
    summary = "Boot an image from RAM; it is gone at the next reboot."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"image": "test_image"}
    typical = Typical(Duration.triangular(45, 60, 90), fail=0.005)

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(loads_volatile=(params.image,))

    def run(self, ctx: StepContext) -> None:
        name = ctx.params.image
        device = open_device(ctx)
        device.boot_ram(image_of(ctx, name))
        if name not in device.status().images:
            raise StepFailed(f"the unit does not report '{name}' running after booting it from RAM")
