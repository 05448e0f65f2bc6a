"""``flash.gang``: write a full storage image to every unit on a gang-flashing fixture.

On the Windows 10 Mobile line this flashes an FFU onto all the phones on the fixture at once; the
whole storage is rewritten, so the named image replaces everything installed before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.step import Effects, StepType, param


@dataclass(frozen=True)
class Params:
    image: str = param("Storage image (from the recipe's images) written to the unit.", ref="image")
    verify: bool = param("Read the storage back after writing and compare its hash.", default=True)
    fixture_slots: int | None = param(
        "Number of units the fixture flashes at once; None uses the station's slot count.",
        default=None,
    )


class FlashGang(StepType):
    name = "flash.gang"
    summary = "Flash a full storage image onto every unit of a gang fixture."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"image": "os"}

    @classmethod
    def effects(cls, params: Params) -> Effects:
        return Effects(replaces_storage=True, loads=(params.image,))
