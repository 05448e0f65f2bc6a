"""The ``hardware`` Line: the station's real adapters, wired as the station config says.

``HardwareLine(flow, config)`` takes the checked wiring (``steps.hardware.config``): one
``HardwareUnit`` per slot's unit (USB flashing interface and serial console), and as station
resources the identity allocator, the image store, and — where configured — the RF tester and
fixture meter (SCPI through pyvisa) and the label printer (ZPL over TCP). A resource that is not
configured is not offered, and a step that needs it stops with an ERROR naming what the station
does offer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.flow import Flow
from engine.outcome import StationError
from steps.common.identities import IdentityLedger, JournalIdentityAllocator, PoolIdentityAllocator
from steps.common.images import FileImageStore
from steps.hardware.config import SlotWiring, StationWiring, parse_wiring
from steps.hardware.instruments import ScpiMeter, ScpiRfTester
from steps.hardware.printer import ZplPrinter
from steps.hardware.unit import HardwareUnit


class HardwareLine:
    def __init__(
        self,
        flow: Flow,
        config: Mapping[str, Any] | None = None,
        *,
        base: Path | None = None,
        usb_backend: Any = None,
        wiring: StationWiring | None = None,
        ledger: IdentityLedger | None = None,
    ) -> None:
        """``config`` is the station config as read (paths relative to ``base``), or give ``wiring``.

        ``usb_backend`` None: libusb, looked up when a unit's USB link first opens. ``ledger`` (the
        store) issues identities from its pools; without one the station keeps its own journal.
        """
        self.flow = flow
        self.wiring = wiring if wiring is not None else parse_wiring(config, base if base is not None else Path.cwd())
        self.usb_backend = usb_backend
        w = self.wiring
        self.identities: PoolIdentityAllocator | JournalIdentityAllocator = (
            PoolIdentityAllocator(ledger, w.identities)
            if ledger is not None
            else JournalIdentityAllocator(w.identities, w.identity_journal)
        )
        self.image_store = FileImageStore(w.images_dir)
        resources: dict[str, Any] = {"identities": self.identities, "image_store": self.image_store}
        if w.rf_tester is not None:
            resources["rf_tester"] = ScpiRfTester(w.rf_tester)
        if w.meter is not None:
            resources["meter"] = ScpiMeter(w.meter)
        if w.label_printer is not None:
            resources["label_printer"] = ZplPrinter(w.label_printer, w.label_previews)
        self._resources = resources

    def slot_wiring(self, slot: int) -> SlotWiring:
        try:
            return self.wiring.slots[slot]
        except KeyError:
            wired = ", ".join(str(n) for n in sorted(self.wiring.slots)) or "none"
            raise StationError(f"slot {slot} is not wired in the station config (wired slots: {wired})") from None

    def prepare(self, slots: int) -> None:
        """Every slot the run uses is wired: a missing one stops the run before any unit starts."""
        for slot in range(1, slots + 1):
            self.slot_wiring(slot)

    def open_unit(self, serial: str, slot: int) -> HardwareUnit:
        return HardwareUnit(serial, slot, self.wiring, self.slot_wiring(slot), self.image_store, self.usb_backend)

    def resources(self) -> Mapping[str, Any]:
        return MappingProxyType(self._resources)

    def close(self) -> None:
        for resource in self._resources.values():
            close = getattr(resource, "close", None)
            if close is not None:
                close()
