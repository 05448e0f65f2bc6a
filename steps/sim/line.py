"""The simulated station: the hardware Line's own code, wired to simulators instead of a fixture.

``SimLine`` is a ``HardwareLine`` whose USB backend is ``SimUsbBackend`` (one simulated unit per
slot's port), whose serial consoles are pseudo-terminals with ``SimConsole`` firmware on the other
end, and whose RF tester, meter and label printer are servers on 127.0.0.1. The steps run exactly
the code they run on the line; only what answers is simulated. The image files are written, with
seeded contents, into the simulation's directory.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.flow import Flow, Image
from engine.outcome import StationError
from steps.common.identities import IdentityLedger
from steps.hardware.config import SlotWiring, StationWiring
from steps.hardware.line import HardwareLine
from steps.hardware.unit import HardwareUnit
from steps.sim.config import SimConfig, parse_config
from steps.sim.device import SimDevice
from steps.sim.firmware import SimConsole
from steps.sim.instruments import SimMeterServer, SimRfTesterServer
from steps.sim.model import LineModel, line_model
from steps.sim.persist import StateDir
from steps.sim.printer import SimPrinterServer
from steps.sim.usbsim import SIM_PID, SIM_VID, SimUsbBackend, UsbFirmware

USB_BUS = 1
KEPT_IN_MEMORY = 256
"""Units that left the fixture whose simulated state the line keeps in memory when it also keeps it on disk
(a state dir): an older one is read back from its file when it comes again, so a station running all shift
holds no more than this many, however many units pass."""


def usb_port(slot: int) -> str:
    """The simulated fixture's USB port path of a slot (a hub per 100 slots)."""
    return f"{USB_BUS}-{1 + (slot - 1) // 100}.{1 + (slot - 1) % 100}"


class SimulatedUnit(HardwareUnit):
    """A unit on the simulated fixture: the hardware adapter, plus the simulator's fault hooks."""

    def __init__(self, sim: SimDevice, line: SimLine, *args: Any) -> None:
        super().__init__(*args)
        self.sim = sim
        self._line = line

        self.closed = False

    def begin(self, stage: str, cancelled: threading.Event) -> None:
        self.sim.begin(stage, cancelled)
        super().begin(stage, cancelled)

    def close(self) -> None:
        self.closed = True
        super().close()
        self._line.unplug(self.slot, self.sim)


class SimLine(HardwareLine):
    """A Line whose units and instruments are simulated; see ``steps.sim`` for the config keys."""

    def __init__(
        self, flow: Flow, config: Mapping[str, Any] | None = None, *, ledger: IdentityLedger | None = None
    ) -> None:
        self.config: SimConfig = parse_config(config, flow)
        self.model: LineModel = line_model(flow, self.config)
        self.state = StateDir(Path(self.config.state_dir)) if self.config.state_dir else None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        if self.state is not None:
            self.root = self.state.root
        else:
            self._scratch = tempfile.TemporaryDirectory(prefix="floorflow-sim-")
            self.root = Path(self._scratch.name)
        self._write_images(flow)
        self.usb = SimUsbBackend(USB_BUS)
        self.rf_server = SimRfTesterServer(
            self.unit_at, noise=self.config.rf_noise, failure_rate=self.config.rf_failure_rate
        )
        self.meter_server = SimMeterServer(self.unit_at)
        self.printer = SimPrinterServer()
        wiring = StationWiring(
            usb_vid=SIM_VID,
            usb_pid=SIM_PID,
            usb_timeout_s=30.0,
            console_timeout_s=5.0,
            images_dir=self.root / "images",
            rf_tester=self.rf_server.resource,
            meter=self.meter_server.resource,
            label_printer=self.printer.address,
            label_previews=self.root / "labels",
            identities=self.config.allocator,
            identity_journal=self.root / "identities.tsv" if self.state is not None else None,
            arrivals=self.config.arrivals,
        )
        super().__init__(flow, wiring=wiring, usb_backend=self.usb, ledger=ledger)
        self._offline()
        self._lock = threading.Lock()
        self._devices: dict[str, SimDevice] = {}
        self._consoles: dict[int, SimConsole] = {}
        self._in_slot: dict[int, SimDevice] = {}
        self._opened: dict[int, SimulatedUnit] = {}
        self._digests: dict[str, str] = {}

    def _write_images(self, flow: Flow) -> None:
        size = self.config.image_kib * 1024
        for image in flow.images.values():
            path = self._image_path(image)
            if not (path.is_file() and path.stat().st_size == size):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(random.Random(f"image/{image.name}").randbytes(size))

    def _image_path(self, image: Image) -> Path:
        return self.root / "images" / (image.file or image.name)

    def _file_digest(self, image: Image) -> str:
        """The sha256 of the simulated image's file (the hash a unit's storage reads back once written with it)."""
        digest = self._digests.get(image.name)
        if digest is None:
            with self._image_path(image).open("rb") as data:
                digest = self._digests[image.name] = hashlib.file_digest(data, "sha256").hexdigest()
        return digest

    def _offline(self) -> None:
        servers = {"rf_tester": self.rf_server, "meter": self.meter_server, "label_printer": self.printer}
        for name in self.config.offline:
            if name in servers:
                servers[name].close()  # nothing listens: the adapter's connection is refused
            else:
                self._resources[name].offline = True

    # -- the fixture -------------------------------------------------------------------------------

    def unit_at(self, port: int) -> SimDevice | None:
        """The simulated unit cabled to an instrument port (the unit in that slot)."""
        with self._lock:
            return self._in_slot.get(port)

    def slot_wiring(self, slot: int) -> SlotWiring:
        with self._lock:
            console = self._consoles.get(slot)
            if console is None:
                console = self._consoles[slot] = SimConsole()
        return SlotWiring(usb_port=usb_port(slot), console=console.port, rf_port=slot, meter_port=slot)

    def open_unit(self, serial: str, slot: int) -> SimulatedUnit:
        faults = self.config.unit(serial)
        wiring = self.slot_wiring(slot)
        with self._lock:
            opened = self._opened.get(slot)
            if opened is not None and opened.serial == serial and not opened.closed:
                return opened  # still open: its links are the ones holding the unit's interfaces
            device = self._devices.get(serial)
            if device is None:
                device = SimDevice(serial, self.model, faults)
                if faults.starts_with.os is not None:  # it reads back what flashing that file leaves
                    device.storage_hash = self._file_digest(faults.starts_with.os)
                if self.state is not None:  # a unit seen before arrives as it left, whatever it starts with
                    self.state.load(device)
                    device.on_change = self.state.save
                self._devices[serial] = device
            elif device.is_open and device.slot not in (None, slot):
                raise StationError(f"unit {serial} is already open in slot {device.slot}")
            self._devices[serial] = self._devices.pop(serial)  # the most recently opened last
            device.reopen(slot)
            if faults.missing:  # an empty fixture slot: nothing enumerates, the console is silent
                self._in_slot.pop(slot, None)
                self.usb.detach(usb_port(slot))
                self._consoles[slot].attach(None)
            elif self._in_slot.get(slot) is not device:  # a unit already on the fixture stays plugged in
                self._in_slot[slot] = device
                bytes_per_s = self.config.usb_mb_s * 1e6 if self.config.usb_mb_s > 0 else None
                self.usb.attach(usb_port(slot), UsbFirmware(device, self.flow.images, bytes_per_s))
                self._consoles[slot].attach(device)
            unit = SimulatedUnit(device, self, serial, slot, self.wiring, wiring, self.image_store, self.usb)
            self._opened[slot] = unit
            return unit

    def unplug(self, slot: int, device: SimDevice) -> None:
        """The unit leaves its slot (its record is done): the slot is empty until the next one."""
        with self._lock:
            device.close()
            if self._in_slot.get(slot) is device:
                del self._in_slot[slot]
                self.usb.detach(usb_port(slot))
                self._consoles[slot].attach(None)
            if self.state is not None:
                self._forget_left()

    def _forget_left(self) -> None:
        """Drop the units that left longest ago, past ``KEPT_IN_MEMORY``: their state is on disk."""
        left = [serial for serial, device in self._devices.items() if not device.is_open]
        for serial in left[: max(0, len(self._devices) - KEPT_IN_MEMORY)]:
            del self._devices[serial]

    def device(self, serial: str) -> SimDevice:
        """The simulated unit of a serial already opened on this line (for tests and reports)."""
        with self._lock:
            found = self._devices.get(serial)
            if found is None and self.state is not None and self.state.path(serial).exists():
                found = SimDevice(serial, self.model, self.config.unit(serial))
                self.state.load(found)
            if found is None:
                raise KeyError(serial)
            return found

    def close(self) -> None:
        super().close()
        with self._lock:
            devices, consoles = list(self._devices.values()), list(self._consoles.values())
        for device in devices:
            device.close()
        for console in consoles:
            console.close()
        for server in (self.rf_server, self.meter_server, self.printer):
            server.close()
        if self._scratch is not None:
            self._scratch.cleanup()
