"""``label.print``: print the unit's label with its identities.

The label template is filled with the identities recorded for the unit, for instance the serial
number, IMEI and MAC addresses written by ``provision.identity``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.step import Duration, StepType, Typical, param
from steps.common import open_device, resource


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
    typical = Typical(Duration.fixed(8), fail=0.002)

    def run(self, ctx: StepContext) -> None:
        p = ctx.params
        device = open_device(ctx)
        values = {kind: device.read_identity(kind) for kind in p.fields}
        missing = [kind for kind, value in values.items() if value is None]
        if missing:
            raise StepFailed(f"the unit has no {', '.join(missing)} to print; provision.identity writes them")
        printed = [(kind, value) for kind, value in values.items() if value is not None]
        zpl = render_zpl(p.template, ctx.unit.serial, printed)
        preview = resource(ctx, "label_printer").print_label(ctx.unit.serial, zpl, printed)
        if preview is not None:
            ctx.measure("label_preview", str(preview))


_TITLES = {"serial": "S/N", "imei": "IMEI", "bt_mac": "BT MAC", "wifi_mac": "Wi-Fi MAC"}


def _field_data(text: str) -> str:
    """Text for a ^FH^FD field: ZPL's command characters and the hex indicator as _XX escapes."""
    return "".join(f"_{ord(c):02X}" if c in "^~_\\" else c for c in text)


def _comment(text: str) -> str:
    return "".join(c for c in text if c not in "^~")


def render_zpl(template: str, serial: str, fields: Sequence[tuple[str, str]]) -> str:
    """A ZPL II label: each identity as a caption and a Code 128 barcode with its text below."""
    lines = ["^XA", "^CI28", f"^FX floorflow label template {_comment(template)}^FS", f"^FX unit {_comment(serial)}^FS"]
    lines.append("^PW812")
    y = 30
    for kind, value in fields:
        lines.append(f"^FO40,{y}^A0N,26,26^FD{_TITLES.get(kind, kind)}^FS")
        lines.append(f"^FO40,{y + 32}^BY2^BCN,70,Y,N,N^FH^FD{_field_data(value)}^FS")
        y += 150
    lines.append("^XZ")
    return "\n".join(lines) + "\n"
