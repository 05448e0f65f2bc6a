"""What the step types expect of a unit's device and of the station, and the helpers they share.

A step talks to the unit only through ``ctx.device`` (what the Line's ``open_unit`` returned) and
to the station through ``ctx.resources``. Both are duck-typed: ``UnitDevice`` and the resource
protocols below list the methods the shipped step types call: ``steps.hardware.unit.HardwareUnit``
offers them over USB and the serial console, and a vendor's own adapter can offer them too.

Errors follow the engine's split: a unit that is bad or refuses a command raises ``StepFailed``
(FAIL); a station that cannot do its work raises ``StationError`` (ERROR, never scraps a unit).
This package is not a step module; it holds no step type.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from engine.context import StepContext
from engine.diagnostics import did_you_mean
from engine.flow import Image
from engine.outcome import StationError, StepFailed

_MAC = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")


class CommandRefused(StepFailed):
    """The unit refused a command in its current state (e.g. RF commands once Module1Complete)."""


@dataclass(frozen=True)
class UnitStatus:
    """What a unit reports about itself: what a ready-to-ship check reads."""

    os_version: str | None
    images: tuple[str, ...]
    """Images installed on the unit (storage and RAM), by name; the OS recovery files are not one."""
    temporary: tuple[str, ...]
    """The installed images that were loaded as temporary."""
    wifi_networks: tuple[str, ...]
    capabilities: tuple[str, ...]
    lifecycle: str | None


@dataclass(frozen=True)
class RfSettings:
    """The RF configuration programmed into the unit (Azure Sphere: e-fuses)."""

    region: str | None
    target_power_dbm: float | None
    mac: str | None


class UnitDevice(Protocol):
    """The unit's hardware as the shipped step types use it."""

    serial: str
    device_id: str

    def begin(self, stage: str, cancelled: threading.Event) -> None:
        """Called by every step before it talks to the unit (the simulator injects its faults here)."""

    def connect(self, interface: str, timeout_s: float, cancelled: threading.Event) -> None: ...
    def read_id(self, kind: str) -> str: ...
    def write_storage(
        self,
        image: Image,
        progress: Callable[[int, int], None] | None = None,
        cancelled: threading.Event | None = None,
    ) -> None:
        """Rewrite the whole storage with the image; ``progress(bytes done, bytes in all)``."""
        ...

    def storage_digest(self) -> str: ...
    def boot_ram(self, image: Image) -> None: ...
    def reboot(self) -> None: ...
    def wait_boot(self, usb: bool, timeout_s: float, cancelled: threading.Event) -> str:
        """Wait until the unit is up; returns what its console printed since the boot."""
        ...

    def recover(self, image: Image, timeout_s: float, cancelled: threading.Event) -> None: ...
    def sideload(self, image: Image) -> None: ...
    def delete_image(self, name: str) -> bool:
        """Remove an installed image; False when it was not installed."""
        ...

    def status(self) -> UnitStatus: ...
    def advance_lifecycle(self, to: str) -> None: ...
    def self_test(self, name: str, baudrate: int) -> tuple[bool, str]:
        """Run one self-test of the factory test application: (passed, what it printed)."""
        ...

    def rf_start(self, band: str, channel: int) -> None:
        """Enter RF test mode and transmit on the channel (refused once RF is locked)."""

    def rf_stop(self) -> None: ...
    def write_trim(self, band: str, channel: int, power_db: float, freq_ppm: float, persist: bool) -> None: ...
    def rssi(self) -> float:
        """The RSSI the unit reports for the level the tester generates (in RF test mode)."""
        ...

    def rf_settings(self) -> RfSettings: ...
    def read_identity(self, kind: str) -> str | None: ...
    def write_identity(self, kind: str, value: str) -> None: ...
    def calibrate_sensor(self, sensor: str) -> Mapping[str, float]: ...
    def customize(self, market: str, operator: str | None) -> str:
        """Apply a customization; returns the variant the unit reports afterwards."""
        ...

    def close(self) -> None: ...


# -- station resources ----------------------------------------------------------------------------


class IdentityAllocator(Protocol):
    def allocate(self, kind: str, serial: str) -> str:
        """A never-issued identity of ``kind`` for the unit, or the one it was already given."""
        ...


class LabelPrinter(Protocol):
    def print_label(self, serial: str, zpl: str, fields: Sequence[tuple[str, str]]) -> Path | None:
        """Print the ZPL label; returns the PNG preview made of ``fields``, if the station keeps them."""
        ...


@dataclass(frozen=True)
class TxResult:
    power_dbm: float
    evm_percent: float
    freq_error_ppm: float


@dataclass(frozen=True)
class CallResult:
    connected: bool
    bler_percent: float | None
    """Block error rate measured on the downlink; None when the call did not connect."""


class RfTester(Protocol):
    """The radio tester cabled to the unit's RF port (LitePoint, a call box)."""

    def measure_tx(self, unit: Any, band: str, channel: int) -> TxResult: ...
    def measure_rssi(self, unit: Any, band: str, channel: int) -> tuple[float, float]:
        """Generate the band's reference level; returns (level generated, RSSI the unit reports)."""
        ...

    def call(self, unit: Any, band: str, channel: int) -> CallResult: ...


class Meter(Protocol):
    """The fixture's meters (ammeter, ...), read by quantity name such as standby_current_ma."""

    def read(self, unit: Any, quantity: str) -> float: ...


class ImageStore(Protocol):
    def digest(self, image: Image) -> str:
        """The sha256 the unit's storage must read back after the image is written."""
        ...

    def source(self, image: Image) -> Any:
        """The image's file, size and hash (``steps.common.images.ImageSource``)."""
        ...


# -- helpers --------------------------------------------------------------------------------------


def open_device(ctx: StepContext) -> UnitDevice:
    """The unit's device, told which stage is starting; StationError when the station has none."""
    device: UnitDevice | None = ctx.device
    if device is None:
        raise StationError(f"no device is open for unit {ctx.unit.serial} in slot {ctx.slot}")
    device.begin(ctx.stage.id, ctx.cancelled)
    return device


def resource(ctx: StepContext, name: str) -> Any:
    """A station resource by name; StationError naming what the station does offer."""
    try:
        return ctx.resources[name]
    except KeyError:
        offered = ", ".join(sorted(ctx.resources)) or "none"
        raise StationError(
            f"this station has no {name}{did_you_mean(name, ctx.resources)} (it offers: {offered})"
        ) from None


def image_of(ctx: StepContext, name: str) -> Image:
    try:
        return ctx.images[name]
    except KeyError:
        raise StationError(f"image '{name}' is not among the recipe's images{did_you_mean(name, ctx.images)}") from None


def stop_if_cancelled(ctx: StepContext) -> None:
    if ctx.cancelled.is_set():
        raise StationError(f"stage '{ctx.stage.id}' was cancelled (timeout or abort)")


def ask_checks(ctx: StepContext, checks: Sequence[str], prompt: str, picture: Path | None = None) -> list[str]:
    """Ask the operator each check, showing ``picture`` with it, and record each as "pass"/"fail"; returns the
    failed ones.

    Every check is asked even after a failure, so the record shows the whole inspection. Each
    failed check is named with the operator's comment, if any.
    """
    failed: list[str] = []
    for check in checks:
        stop_if_cancelled(ctx)
        if picture is None:  # (asked as before pictures, so an operator that shows none still answers)
            answer = ctx.operator.ask(ctx.stage.id, check, prompt)
        else:
            answer = ctx.operator.ask(ctx.stage.id, check, prompt, picture)
        ctx.measure(check, "pass" if answer.passed else "fail")
        if not answer.passed:
            failed.append(f"{check} ({answer.comment})" if answer.comment else check)
    return failed


def valid_mac(text: str | None) -> bool:
    """A unicast MAC address written as six colon-separated hex octets, not all zeros or all ones."""
    if text is None or _MAC.fullmatch(text) is None:
        return False
    octets = [int(o, 16) for o in text.split(":")]
    return not (octets[0] & 1) and any(octets) and any(o != 0xFF for o in octets)
