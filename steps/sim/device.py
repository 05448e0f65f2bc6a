"""One simulated unit: its storage, RAM, OS, lifecycle, identities, radio, sensors and faults.

Behaves like the hardware it stands for where the route rules care: a full storage write replaces
everything installed, a reboot drops RAM-booted images, identities are write-once, the lifecycle
only moves forward, RF commands are refused once the unit reaches Module1Complete and software,
settings and identities are frozen once it reaches DeviceComplete (Azure Sphere, reference 002).
Every method is thread-safe.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Mapping
from typing import Any

from engine.diagnostics import did_you_mean
from engine.flow import Image
from engine.outcome import StationError, StepFailed
from steps.common import CommandRefused, RfSettings, UnitStatus
from steps.common.identities import IDENTITY_KINDS
from steps.common.radio import band as band_of
from steps.hardware.unit import BOOTED
from steps.sim.model import LOCKDOWN_STATE, RF_LOCK_STATE, image_digest
from steps.sim.unit import SimUnit

CONSOLE_BAUDRATE = 115200
_SENSORS: dict[str, tuple[str, float, float]] = {
    "als": ("als_gain", 0.9, 1.1),
    "magnetometer": ("magnetometer_offset_ut", 5.0, 60.0),
    "proximity": ("proximity_crosstalk_counts", 40.0, 180.0),
    "accelerometer": ("accelerometer_bias_g", 0.0, 0.05),
}
_PASS_WORDS = ("pass", "ok", "true")


class SimDevice(SimUnit):
    """The commands of one simulated unit (the ``steps.common.UnitDevice`` interface)."""

    # -- link, identity, boot ---------------------------------------------------------------------

    def connect(self, interface: str, timeout_s: float, cancelled: threading.Event) -> None:
        with self._lock:
            self._live()
            self.connected, self.interface = True, interface

    def read_id(self, kind: str) -> str:
        with self._lock:
            self._live()
            if kind == "device-id":
                return str(self.reading("device_id", self.device_id))
            if kind in IDENTITY_KINDS:
                value = self.identities.get(kind)
                if value is None:
                    raise StepFailed(f"unit {self.serial} has no {kind} written yet")
                return value
            known = ("device-id", *IDENTITY_KINDS)
            raise StationError(f"the unit cannot report id kind '{kind}'{did_you_mean(kind, known)}")

    def write_storage(self, image: Image, digest: str | None = None) -> None:
        """Storage now holds ``image``; ``digest`` is the sha256 of the bytes received (the USB
        firmware hashes them as they arrive), the image's nominal hash when not given."""
        with self._lock:
            self._writable(f"a storage write of '{image.name}'")
            self.storage = {image.name: image.temporary}
            self.os_image = image.name
            corrupt = self.stage in self.faults.corrupt
            written = digest if digest is not None else image_digest(image)
            self.storage_hash = written if not corrupt else hashlib.sha256(b"bad block" + written.encode()).hexdigest()
            self.ram.clear()
            self.wifi.clear()
            self.running = False  # the programmer leaves the unit powered down
            self._changed("write_storage")

    def storage_digest(self) -> str:
        with self._lock:
            self._live()
            if self.storage_hash is None:
                raise StepFailed(f"unit {self.serial}: storage is blank, nothing to read back")
            return self.storage_hash

    def _boot(self, image: str) -> None:
        """Come up in ``image``: print the banner (the unit's own, else the line's), then ``boot complete``."""
        version = self.model.os_versions.get(image, "?")
        template = self.faults.boot_banner if self.faults.boot_banner is not None else self.model.boot_banner
        banner = template.format(serial=self.serial, image=image, version=version).splitlines()
        self.console = "".join(f"{line}\n" for line in [*banner, BOOTED])
        self.running = True
        if self.on_console is not None:
            self.on_console(self.console)

    def boot_ram(self, image: Image) -> None:
        with self._lock:
            self._writable(f"booting '{image.name}' from RAM")
            self.ram = {image.name: image.temporary}
            self._boot(image.name)
            self._changed("boot_ram")

    def reboot(self) -> None:
        with self._lock:
            self._live()
            self.ram.clear()
            self.running = False
            self.rf_mode = None
            self.radio.end_test_mode()
            self._changed()

    def _come_up(self, timeout_s: float, cancelled: threading.Event) -> None:
        """Take the simulated boot time, bounded by the caller's timeout; stop early when cancelled."""
        if cancelled.wait(min(self.model.boot_s, timeout_s)):
            raise StationError(f"waiting for unit {self.serial} to boot was cancelled")
        if self.model.boot_s > timeout_s:
            raise StepFailed(f"unit {self.serial} did not come up within {timeout_s} s")

    def wait_boot(self, usb: bool, timeout_s: float, cancelled: threading.Event) -> str:
        with self._lock:
            self._live()
            if self.running:
                return self.console
            if self.os_image is None:
                raise StepFailed(f"unit {self.serial} did not come up: there is no OS on its storage")
        self._come_up(timeout_s, cancelled)
        with self._lock:
            assert self.os_image is not None
            self._boot(self.os_image)
            self.connected = self.connected or usb
            self._changed()
            return self.console

    # -- software ----------------------------------------------------------------------------------

    def recover(self, image: Image, timeout_s: float, cancelled: threading.Event, digest: str | None = None) -> None:
        """An OS update from ``image``; ``digest`` as for ``write_storage``."""
        with self._lock:
            self._writable(f"an OS recovery with '{image.name}'")
            self.storage.clear()
            self.os_image = image.name
            self.storage_hash = digest if digest is not None else image_digest(image)
            self.ram.clear()
            self.wifi.clear()
            self.running = False
            self._changed("recover")
        self._come_up(timeout_s, cancelled)
        with self._lock:
            self._boot(image.name)
            self._changed()

    def sideload(self, image: Image) -> None:
        with self._lock:
            self._writable(f"installing '{image.name}'")
            if image.name in self.model.unsigned:
                raise CommandRefused(f"unit {self.serial} refuses '{image.name}': it is not production-signed")
            if self.os_image is None:
                raise CommandRefused(f"unit {self.serial} has no OS to install '{image.name}' on")
            self.storage[image.name] = image.temporary
            self._changed("sideload")

    def delete_image(self, name: str) -> bool:
        with self._lock:
            self._writable(f"deleting '{name}'")
            found = self.storage.pop(name, None) is not None
            found = self.ram.pop(name, None) is not None or found
            self._changed("delete_image" if found else None)
            return found

    def status(self) -> UnitStatus:
        with self._lock:
            self._live()
            booted = next(iter(self.ram), self.os_image)
            installed = {**self.storage, **self.ram}
            return UnitStatus(
                os_version=None if booted is None else self.model.os_versions.get(booted),
                images=tuple(sorted(installed)),
                temporary=tuple(sorted(n for n, temporary in installed.items() if temporary)),
                wifi_networks=tuple(self.wifi),
                capabilities=self.capabilities,
                lifecycle=self.lifecycle,
            )

    def advance_lifecycle(self, to: str) -> None:
        with self._lock:
            self._live()
            if to not in self.model.lifecycle:
                raise StationError(
                    f"'{to}' is not a lifecycle state of this product{did_you_mean(to, self.model.lifecycle)}"
                )
            now, target = self.model.state_index(self.lifecycle), self.model.lifecycle.index(to)
            if target < now:
                raise CommandRefused(f"unit {self.serial} is {self.lifecycle}: its lifecycle cannot go back to {to}")
            if target > now:
                self.lifecycle = to
                self._changed("advance_lifecycle")

    def self_test(self, name: str, baudrate: int) -> tuple[bool, str]:
        with self._lock:
            self._live()
            if baudrate != CONSOLE_BAUDRATE:
                raise StationError(
                    f"no intelligible answer at {baudrate} baud (the console runs at {CONSOLE_BAUDRATE})"
                )
            tests = [n for n in {**self.storage, **self.ram} if self._image_type(n) == "test"]
            if not (self.running and tests):
                raise StepFailed(f"unit {self.serial}: no factory test application answers on the UART")
            result = self.reading(name, "pass")
            word = str(result).lower()
            passed = result is True or word in _PASS_WORDS
            detail = "" if word in ("pass", "fail", "true", "false") else f" ({result})"
            return passed, f"{name}: {'PASS' if passed else 'FAIL'}{detail}"

    def _image_type(self, name: str) -> str | None:
        return self.model.image_types.get(name)

    # -- radio -------------------------------------------------------------------------------------

    def _rf(self, what: str) -> None:
        self._live()
        self._refuse_from(RF_LOCK_STATE, what)
        self._refuse_from(LOCKDOWN_STATE, what)

    def rf_start(self, band: str, channel: int) -> None:
        with self._lock:
            self._rf("RF test mode")
            band_of(band, channel)
            self.rf_mode = (band, channel)

    def rf_stop(self) -> None:
        with self._lock:
            self.rf_mode = None
            self.radio.end_test_mode()

    def write_trim(self, band: str, channel: int, power_db: float, freq_ppm: float, persist: bool) -> None:
        with self._lock:
            self._rf("trim writes")
            self.radio.set_trim(band, channel, power_db, freq_ppm, persist)
            if persist:
                self._changed("write_trim")

    def emission(self) -> tuple[str, int, Any]:
        """What the unit transmits now, for the simulated tester; StationError when it is silent."""
        with self._lock:
            self._live()
            if self.rf_mode is None:
                raise StationError(f"the tester sees no signal: unit {self.serial} is not transmitting")
            band, channel = self.rf_mode
            return band, channel, self.radio.emission(band_of(band), channel)

    def standby_current_ma(self) -> float:
        """The current the unit draws in standby (what the fixture meter reads, before its noise)."""
        return random.Random(f"{self.serial}/meter/standby_current_ma").uniform(3.0, 5.5)

    def rssi(self) -> float:
        """The RSSI the unit reports for the level the tester generates at its RF port now."""
        with self._lock:
            self._rf("RSSI reports")
            if self.rf_mode is None or self.rx_input_dbm is None:
                raise StepFailed(f"unit {self.serial} receives no signal to report an RSSI for")
            spec = band_of(self.rf_mode[0])
            reported = float(round(self.rx_input_dbm + self.radio.rssi_error_db(spec) + self.rng().gauss(0.0, 0.3)))
            return float(self.reading("rx_rssi_dbm", reported))

    def rf_settings(self) -> RfSettings:
        with self._lock:
            self._rf("the RF settings tool")
            factory_mac = ":".join(["02", *(self.device_id[i : i + 2] for i in range(0, 10, 2))])
            return RfSettings(
                region=self.reading("rf_region", self.model.rf_region),
                target_power_dbm=self.reading("rf_target_power_dbm", self.model.rf_target_power_dbm),
                mac=self.reading("rf_mac", self.identities.get("wifi_mac", factory_mac)),
            )

    # -- provisioning ------------------------------------------------------------------------------

    def read_identity(self, kind: str) -> str | None:
        with self._lock:
            self._live()
            return self.identities.get(kind)

    def write_identity(self, kind: str, value: str) -> None:
        with self._lock:
            self._writable(f"writing its {kind}")
            existing = self.identities.get(kind)
            if existing == value:
                return
            if existing is not None:
                # The station is wrong, not the unit: an ERROR, which never scraps the unit.
                raise StationError(
                    f"unit {self.serial} already carries {kind} {existing}, write-once: refusing {value}"
                )
            self.identities[kind] = value
            self._changed(f"write_identity:{kind}")

    def calibrate_sensor(self, sensor: str) -> Mapping[str, float]:
        with self._lock:
            self._writable(f"calibrating its {sensor}")
            if sensor not in _SENSORS:
                raise StationError(f"the fixture has no stimulus for sensor '{sensor}'{did_you_mean(sensor, _SENSORS)}")
            name, low, high = _SENSORS[sensor]
            value = self.reading(name, random.Random(f"{self.serial}/sensor/{sensor}").uniform(low, high))
            self.sensor_cal[sensor] = {name: float(value)}
            self._changed("calibrate_sensor")
            return dict(self.sensor_cal[sensor])

    def customize(self, market: str, operator: str | None) -> str:
        with self._lock:
            self._writable("a customization")
            self.customization = (market, operator)
            self._changed("customize")
            return str(self.reading("customization", market if operator is None else f"{market}/{operator}"))
