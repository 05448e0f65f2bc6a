"""``image.delete``: remove one image from the unit.

On Azure Sphere this is ``az sphere device sideload delete`` of the factory test application, so
that no temporary image is left when the unit is finalized.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.step import Effects, StepType, param


@dataclass(frozen=True)
class Params:
    image: str = param("Image (from the recipe's images) removed from the unit.", ref="image")


class ImageDelete(StepType):
    name = "image.delete"
    summary = "Remove an image from the unit."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"image": "test_image"}

    @classmethod
    def effects(cls, params: Params) -> Effects:
        return Effects(removes=(params.image,))
