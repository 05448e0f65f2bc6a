"""``provision.identity``: write the unit's permanent identities.

On the Windows 10 Mobile line this writes the IMEI, Bluetooth and Wi-Fi MAC addresses and serial
number allocated to the phone. It can be done only once per unit, so declare the stage
``irreversible: true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from engine.context import StepContext
from engine.outcome import NotStarted, StationError, StepFailed
from engine.step import Duration, StepType, Typical, param
from steps.common import open_device, resource, valid_mac


@dataclass(frozen=True)
class Params:
    identities: tuple[Literal["imei", "bt_mac", "wifi_mac", "serial"], ...] = param(
        "Identities to allocate and write: any of imei, bt_mac, wifi_mac, serial."
    )


class ProvisionIdentity(StepType):
    name = "provision.identity"
    summary = "Allocate and write the unit's permanent identities (IMEI, MAC addresses, serial)."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"identities": ("serial",)}
    typical = Typical(Duration.triangular(10, 15, 25), fail=0.002)

    def run(self, ctx: StepContext) -> None:
        device = open_device(ctx)
        allocator = resource(ctx, "identities")
        carried = {kind: device.read_identity(kind) for kind in ctx.params.identities}
        for kind, existing in carried.items():
            # Written before (an earlier attempt, or another line): identities are kept for good.
            if existing is not None and not well_formed(kind, existing):
                raise StepFailed(f"the unit already carries a malformed {kind} {existing!r}")
        # Every missing value is allocated before the first is written: an exhausted pool stops the
        # step before the unit is touched, never halfway through its identities.
        try:
            fresh = {
                kind: allocator.allocate(kind, ctx.unit.serial) for kind, value in carried.items() if value is None
            }
        except StationError as exc:  # an exhausted pool, the allocator offline: nothing was written
            raise NotStarted(str(exc)) from None
        for kind, value in fresh.items():
            if not well_formed(kind, value):
                raise StationError(f"the allocator issued a malformed {kind} {value!r}; nothing was written")
        for kind in ctx.params.identities:
            value = fresh.get(kind) or carried[kind]
            assert value is not None
            if kind in fresh:
                device.write_identity(kind, value)
                if device.read_identity(kind) != value:
                    raise StepFailed(f"the unit's {kind} does not read back as {value} after writing it")
            ctx.measure(kind, value)


def well_formed(kind: str, value: str) -> bool:
    if kind == "imei":
        # Imported here: stdnum costs ~20 ms to import, and `floorflow validate` never runs a step.
        from stdnum import imei

        return len(value) == 15 and bool(imei.is_valid(value))
    if kind in ("bt_mac", "wifi_mac"):
        return valid_mac(value)
    return bool(value) and value.isprintable() and not any(c.isspace() for c in value)
