"""``image.sideload``: install one image on the unit next to what is already installed.

On Azure Sphere this is ``az sphere device sideload deploy`` of an image package, typically the
factory test application; the other images on the unit stay. It installs on the unit's OS, so a
unit whose storage holds no OS yet (before an OS recovery or a full storage image) refuses it.
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
    image: str = param("Image (from the recipe's images) installed on the unit.", ref="image")


class ImageSideload(StepType):
    name = "image.sideload"
    summary = "Install an image next to what is already on the unit."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"image": "test_image"}
    typical = Typical(Duration.triangular(20, 30, 50), fail=0.003)

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(loads=(params.image,), needs_os=True)

    def run(self, ctx: StepContext) -> None:
        name = ctx.params.image
        device = open_device(ctx)
        device.sideload(image_of(ctx, name))
        if name not in device.status().images:
            raise StepFailed(f"the unit does not list '{name}' after installing it")
        ctx.measure("installed_image", name, image=name)
