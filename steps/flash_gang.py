"""``flash.gang``: write a full storage image to every unit on a gang-flashing fixture.

On the Windows 10 Mobile line this flashes an FFU onto all the phones on the fixture at once; the
whole storage is rewritten, so the named image replaces everything installed before. Each slot of
the station runs its unit's flash at the same time as the others (the runner's slots are threads,
the USB transfers release the interpreter), with its own progress; the image file is hashed once
for all of them. A unit that fails its write or its read-back fails alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.context import StepContext
from engine.outcome import StationError, StepFailed
from engine.step import Duration, Effects, StepType, Typical, param
from steps.common import image_of, open_device, resource


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
    typical = Typical(Duration.lognormal(300, 30), fail=0.005)

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(replaces_storage=True, loads=(params.image,), installs_os=True)

    def run(self, ctx: StepContext) -> None:
        p = ctx.params
        if p.fixture_slots is not None and ctx.slot > p.fixture_slots:
            raise StationError(f"slot {ctx.slot} is not on the {p.fixture_slots}-unit gang fixture")
        image = image_of(ctx, p.image)
        expected = resource(ctx, "image_store").digest(image) if p.verify else None
        device = open_device(ctx)

        def progress(done: int, total: int) -> None:
            ctx.progress(done / total if total else 1.0, f"{done >> 10}/{total >> 10} KiB")

        device.write_storage(image, progress, ctx.cancelled)
        if expected is not None:
            got = device.storage_digest()
            ctx.measure("storage_sha256", got, image=p.image)
            if got != expected:
                raise StepFailed(
                    f"storage read back after writing '{p.image}' hashes to {got[:16]}…, the image to {expected[:16]}…"
                )
