"""``image.delete``: remove one image from the unit.

On Azure Sphere this is ``az sphere device sideload delete`` of the factory test application, so
that no temporary image is left when the unit is finalized.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.step import Duration, Effects, StepType, Typical, param
from steps.common import open_device


@dataclass(frozen=True)
class Params:
    image: str = param("Image (from the recipe's images) removed from the unit.", ref="image")


class ImageDelete(StepType):
    name = "image.delete"
    summary = "Remove an image from the unit."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"image": "test_image"}
    typical = Typical(Duration.fixed(10), fail=0.001)

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(removes=(params.image,))

    def run(self, ctx: StepContext) -> None:
        name = ctx.params.image
        device = open_device(ctx)
        if not device.delete_image(name):
            ctx.log.info("image '%s' was not on unit %s: nothing to delete", name, ctx.unit.serial)
        if name in device.status().images:
            raise StepFailed(f"'{name}' is still installed after deleting it")
