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

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.step import Duration, Effects, StepType, Typical, param
from steps.common import open_device


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
    typical = Typical(Duration.triangular(10, 20, 40), fail=0.003)

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(ready_check=True, expects_state=params.state, expects_images=params.images)

    def run(self, ctx: StepContext) -> None:
        p = ctx.params
        status = open_device(ctx).status()
        ctx.measure("os_version", status.os_version)
        ctx.measure("images", ",".join(status.images))
        ctx.measure("lifecycle_state", status.lifecycle)
        ctx.measure("wifi_networks", len(status.wifi_networks))
        ctx.measure("capabilities", len(status.capabilities))
        problems: list[str] = []
        if status.os_version not in p.os_versions:
            problems.append(f"OS {status.os_version} is not one of {', '.join(p.os_versions)}")
        if sorted(status.images) != sorted(p.images):
            problems.append(
                f"installed images are [{', '.join(status.images)}], expected exactly [{', '.join(p.images)}]"
            )
        if status.temporary:
            problems.append(f"temporary images left: {', '.join(status.temporary)}")
        if p.state is not None and status.lifecycle != p.state:
            problems.append(f"lifecycle state is {status.lifecycle}, expected {p.state}")
        if p.no_wifi and status.wifi_networks:
            problems.append(f"Wi-Fi networks configured: {', '.join(status.wifi_networks)}")
        if p.no_capabilities and status.capabilities:
            problems.append(f"capability certificates present: {', '.join(status.capabilities)}")
        if problems:
            raise StepFailed("not ready to ship: " + "; ".join(problems))
