"""``provision.identity``: write the unit's permanent identities.

On the Windows 10 Mobile line this writes the IMEI, Bluetooth and Wi-Fi MAC addresses and serial
number allocated to the phone. It can be done only once per unit, so declare the stage
``irreversible: true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from engine.step import StepType, param


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
