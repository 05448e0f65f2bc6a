"""``device.recover``: rewrite the unit's storage with an OS recovery image.

On Azure Sphere this is ``az sphere device recover``: the whole flash is rewritten with the recovery
images, so whatever was installed before is gone: the unit runs the OS of the named image, with no
image installed on it (the recovery image is not one the unit lists).
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
    image: str = param("Recovery image (from the recipe's images) written to the unit.", ref="image")
    timeout_s: int = param("Seconds the recovery may take before the stage errors.", default=600)


class DeviceRecover(StepType):
    name = "device.recover"
    summary = "Rewrite the unit's storage with an OS recovery image."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"image": "os"}
    typical = Typical(Duration.lognormal(120, 20), fail=0.005)

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(replaces_storage=True, installs_os=True)

    def run(self, ctx: StepContext) -> None:
        p = ctx.params
        device = open_device(ctx)
        device.recover(image_of(ctx, p.image), p.timeout_s, ctx.cancelled)
        version = device.status().os_version
        if version is None:
            raise StepFailed(f"after recovery with '{p.image}' the unit reports no OS version")
        ctx.measure("os_version", version, image=p.image)
