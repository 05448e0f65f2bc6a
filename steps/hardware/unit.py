"""One unit on the fixture, reached over its USB flashing interface and its serial console.

``HardwareUnit`` is the ``steps.common.UnitDevice`` the shipped step types talk to: images and
status go over USB (``steps.hardware.usb``), everything the unit's firmware answers on its console
goes over the UART (``steps.hardware.console``). Both links open on first use, so a unit that is
not there is an ERROR of the first step that needs it, naming the port; the wire protocols are in
docs/hardware.md.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from engine.diagnostics import did_you_mean
from engine.flow import Image
from engine.outcome import StationError, StepFailed
from steps.common import RfSettings, UnitStatus
from steps.common.identities import IDENTITY_KINDS
from steps.common.images import FileImageStore
from steps.hardware.config import SlotWiring, StationWiring
from steps.hardware.console import ConsoleLink
from steps.hardware.usb import UsbLink, UsbSelector

BOOTED = "boot complete"
"""The console line that ends a boot banner."""


class HardwareUnit:
    def __init__(
        self,
        serial: str,
        slot: int,
        wiring: StationWiring,
        slot_wiring: SlotWiring,
        images: FileImageStore,
        backend: Any,
    ) -> None:
        self.serial = serial
        self.slot = slot
        self.rf_port = slot_wiring.rf_port if slot_wiring.rf_port is not None else slot
        self.meter_port = slot_wiring.meter_port if slot_wiring.meter_port is not None else slot
        self._station = wiring
        self._wiring = slot_wiring
        self._images = images
        self._backend = backend
        self._usb: UsbLink | None = None
        self._console: ConsoleLink | None = None
        self._banner = ""
        self._device_id: str | None = None
        self._lock = threading.Lock()

    # -- links -------------------------------------------------------------------------------------

    def usb(self) -> UsbLink:
        with self._lock:
            if self._usb is None:
                selector = UsbSelector(
                    self._station.usb_vid, self._station.usb_pid, self._wiring.usb_port, self._wiring.usb_serial
                )
                self._usb = UsbLink.open(selector, self._backend, self._station.usb_timeout_s)
            return self._usb

    def console(self) -> ConsoleLink:
        with self._lock:
            if self._console is None:
                if self._wiring.console is None:
                    raise StationError(f"slot {self.slot} has no serial console in the station config")
                self._console = ConsoleLink(
                    self._wiring.console, self._station.baudrate, self._station.console_timeout_s
                )
            return self._console

    def _ask(self, line: str) -> list[tuple[str, str]]:
        return self.console().command(line)

    def _value(self, line: str, key: str) -> str:
        return self.console().value(line, key)

    def close(self) -> None:
        with self._lock:
            links: list[Any] = [self._usb, self._console]
            self._usb = self._console = None
        for link in links:
            if link is not None:
                link.close()

    def begin(self, stage: str, cancelled: threading.Event) -> None:
        if cancelled.is_set():
            raise StationError(f"stage '{stage}' was cancelled before it reached unit {self.serial}")

    @property
    def device_id(self) -> str | None:
        """The unit's chip id once a step has read it (records carry it); never asks the unit itself."""
        return self._device_id

    # -- link, identity, boot ----------------------------------------------------------------------

    def connect(self, interface: str, timeout_s: float, cancelled: threading.Event) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if interface == "usb":
                    self.usb().command("INFO")
                else:
                    self._ask("ID")
                return
            except StationError:
                if time.monotonic() >= deadline:
                    raise
                self.close()
            if cancelled.wait(0.2):
                raise StationError(f"connecting to unit {self.serial} was cancelled")

    def read_id(self, kind: str) -> str:
        known = ("device-id", *IDENTITY_KINDS)
        if kind not in known:
            raise StationError(f"the unit cannot report id kind '{kind}'{did_you_mean(kind, known)}")
        if kind == "device-id":
            self._device_id = self._value("ID", "device_id")
            return self._device_id
        value = self.read_identity(kind)
        if value is None:
            raise StepFailed(f"unit {self.serial} has no {kind} written yet")
        return value

    def _send(
        self,
        verb: str,
        image: Image,
        progress: Callable[[int, int], None] | None = None,
        cancelled: threading.Event | None = None,
        timeout_s: float | None = None,
    ) -> str:
        source = self._images.source(image)
        report = None if progress is None else (lambda done: progress(done, source.size))
        return self.usb().send(
            f"{verb} {image.name} {source.size}", source.chunks(), source.size, report, cancelled, timeout_s
        )

    def write_storage(
        self,
        image: Image,
        progress: Callable[[int, int], None] | None = None,
        cancelled: threading.Event | None = None,
    ) -> None:
        self._send("WRITE", image, progress, cancelled)

    def storage_digest(self) -> str:
        return self.usb().command("VERIFY")

    def boot_ram(self, image: Image) -> None:
        self.console()  # open before the boot, so its banner is seen
        self._send("BOOTRAM", image)

    def reboot(self) -> None:
        self.usb().command("REBOOT")

    def wait_boot(self, usb: bool, timeout_s: float, cancelled: threading.Event) -> str:
        console = self.console()
        console.discard()
        started = time.monotonic()
        if self.usb().command(f"BOOT {timeout_s}", timeout_s=timeout_s + 5.0) == "running":
            if not self._banner:
                self._banner = f"version: {self._value('VERSION', 'version')}\n"
            return self._banner
        remaining = max(timeout_s - (time.monotonic() - started), 0.1)
        self._banner = console.wait_for(BOOTED, remaining, cancelled)
        if usb:
            self.usb().command("INFO")
        return self._banner

    # -- software ----------------------------------------------------------------------------------

    def recover(self, image: Image, timeout_s: float, cancelled: threading.Event) -> None:
        self.console()
        self._send("RECOVER", image, cancelled=cancelled, timeout_s=timeout_s + self._station.usb_timeout_s)

    def sideload(self, image: Image) -> None:
        self._send("SIDELOAD", image)

    def delete_image(self, name: str) -> bool:
        return self.usb().command(f"DELETE {name}") == "1"

    def status(self) -> UnitStatus:
        reply = self.usb().command("STATUS")
        try:
            raw = json.loads(reply)
            return UnitStatus(
                os_version=raw["os_version"],
                images=tuple(raw["images"]),
                temporary=tuple(raw["temporary"]),
                wifi_networks=tuple(raw["wifi_networks"]),
                capabilities=tuple(raw["capabilities"]),
                lifecycle=raw["lifecycle"],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StationError(f"unit {self.serial}: unintelligible status {reply[:120]!r} ({exc})") from None

    def advance_lifecycle(self, to: str) -> None:
        self._ask(f"STATE {to}")

    def self_test(self, name: str, baudrate: int) -> tuple[bool, str]:
        console = self.console()
        if baudrate != self._station.baudrate:
            console.set_baudrate(baudrate)
        try:
            result = console.value(f"SELFTEST {name}", name)
        finally:
            if baudrate != self._station.baudrate:
                console.set_baudrate(self._station.baudrate)
        verdict = result.partition(" ")[0]
        if verdict not in ("PASS", "FAIL"):
            raise StationError(f"unit {self.serial}: self-test {name} answered {result!r}, not PASS or FAIL")
        return verdict == "PASS", f"{name}: {result}"

    # -- radio -------------------------------------------------------------------------------------

    def rf_start(self, band: str, channel: int) -> None:
        self._ask(f"RF START {band} {channel}")

    def rf_stop(self) -> None:
        self._ask("RF STOP")

    def write_trim(self, band: str, channel: int, power_db: float, freq_ppm: float, persist: bool) -> None:
        self._ask(f"RF TRIM {band} {channel} {power_db:.4f} {freq_ppm:.4f} {int(persist)}")

    def rssi(self) -> float:
        return _number(self._value("RF RSSI", "rssi_dbm"), "rssi_dbm", self.serial)

    def rf_settings(self) -> RfSettings:
        values = dict(self._ask("RF SETTINGS"))
        power = _optional(values.get("target_power_dbm"))
        return RfSettings(
            region=_optional(values.get("region")),
            target_power_dbm=None if power is None else _number(power, "target_power_dbm", self.serial),
            mac=_optional(values.get("mac")),
        )

    # -- provisioning ------------------------------------------------------------------------------

    def read_identity(self, kind: str) -> str | None:
        return _optional(self._value(f"IDENT {kind}", kind))

    def write_identity(self, kind: str, value: str) -> None:
        self._ask(shlex.join(["IDENT", kind, value]))

    def calibrate_sensor(self, sensor: str) -> Mapping[str, float]:
        return {name: _number(value, name, self.serial) for name, value in self._ask(f"SENSORCAL {sensor}")}

    def customize(self, market: str, operator: str | None) -> str:
        return self._value(shlex.join(["CUSTOMIZE", market, *([operator] if operator else [])]), "variant")


def _optional(text: str | None) -> str | None:
    return None if text in (None, "none") else text


def _number(text: str, name: str, serial: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise StationError(f"unit {serial} reported {name} {text!r}, not a number") from None
