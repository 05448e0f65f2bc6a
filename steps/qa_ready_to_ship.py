"""``qa.ready_to_ship``: the final check that a unit may leave the line.

This is the Azure Sphere ready-to-ship check: the OS version is one of those allowed, exactly the
expected images are installed, no Wi-Fi network is configured, no device capability is present and
the unit is in the expected manufacturing state. For the route rules it is a gate: no temporary
image may be left on the unit when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.step import Effects, StepType, param


@dataclass(frozen=True)
class Params:
    os_versions: tuple[str, ...] = param("OS versions the unit is allowed to run.")
    images: tuple[str, ...] = param(
        "Images (from the recipe's images) that must be exactly what is installed.", ref="image"
    )
    state: str | None = param(
        "Lifecycle state the unit must be in; None does not check it.",
        default=None,
        ref="lifecycle",
    )
    no_wifi: bool = param("Require that no Wi-Fi network is configured on the unit.", default=True)
    no_capabilities: bool = param("Require that no device capability is present.", default=True)


class QaReadyToShip(StepType):
    name = "qa.ready_to_ship"
    summary = "Check that the unit is ready to ship: OS, images, Wi-Fi, capabilities, state."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"os_versions": ("24.10",), "images": ("app",)}

    @classmethod
    def effects(cls, params: Params) -> Effects:
        return Effects(ready_check=True, expects_state=params.state)
