"""``label.print``: print the unit's label with its identities.

The label template is filled with the identities recorded for the unit, for instance the serial
number, IMEI and MAC addresses written by ``provision.identity``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from engine.step import StepType, param


@dataclass(frozen=True)
class Params:
    template: str = param("Label template to print.", default="unit")
    fields: tuple[Literal["serial", "imei", "bt_mac", "wifi_mac"], ...] = param(
        "Identities printed on the label: any of serial, imei, bt_mac, wifi_mac.",
        default=("serial", "imei", "bt_mac", "wifi_mac"),
    )


class LabelPrint(StepType):
    name = "label.print"
    summary = "Print the unit's label with its recorded identities."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {}
