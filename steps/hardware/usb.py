"""The USB flashing interface of a unit, through pyusb and libusb-1.0 (docs/hardware.md, "USB").

A ``UsbSelector`` names a device by VID/PID plus its port path or its serial number; ``PortScan``
says which are plugged in where (a station whose units arrive by being plugged in watches it);
``UsbLink.open`` finds the one selected, claims its interface and then speaks the protocol: one bulk OUT
transfer per command, one bulk IN transfer per reply, image data in bulk OUT transfers of at most
64 KiB after the unit's ``OK ready``. Every failure is a ``StationError`` naming the port (or,
for an ``ERR`` reply, what ``steps.common.wire.raise_reply`` makes of it).
"""

from __future__ import annotations

import contextlib
import errno
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import usb.backend.libusb1
import usb.core
import usb.util

from engine.outcome import StationError
from steps.common.wire import raise_reply

CHUNK_LIMIT = 1024 * 1024
"""The most image data one bulk OUT transfer carries."""
REPLY_LIMIT = 4096
_SHOWN_BYTES = 64


@dataclass(frozen=True)
class UsbSelector:
    """Which device to open: its VID and PID, plus its port path or its serial number."""

    vid: int
    pid: int
    port: str | None = None
    """Port path as Linux names it, ``BUS-P1.P2…`` (e.g. ``1-1.3``)."""
    serial: str | None = None
    """The device's iSerialNumber string."""

    def describe(self) -> str:
        """E.g. "USB 1209:f10f at port 1-1.3"."""
        text = f"USB {self.vid:04x}:{self.pid:04x}"
        if self.port is not None:
            text += f" at port {self.port}"
        if self.serial is not None:
            text += f" with serial {self.serial}"
        return text


def usb_backend() -> Any:
    """libusb-1.0 for pyusb: the library of the libusb-package wheel, else the system's."""
    backend = None
    try:
        import libusb_package

        backend = libusb_package.get_libusb1_backend()
    except ImportError:
        pass
    if backend is None:
        backend = usb.backend.libusb1.get_backend()
    if backend is None:
        raise StationError(
            "no libusb-1.0 library found for USB: install one with 'pip install libusb-package' "
            "(it bundles the library) or 'apt install libusb-1.0-0'"
        )
    return backend


def port_path(device: Any) -> str:
    """The device's port path as Linux names it: ``BUS-P1.P2…`` (``usbBUS`` for a root hub)."""
    numbers = device.port_numbers
    if not numbers:
        return f"usb{device.bus}"
    return f"{device.bus}-{'.'.join(str(n) for n in numbers)}"


def _serial_number(device: Any) -> str | None:
    """The device's iSerialNumber string; None when it has none or it cannot be read."""
    try:
        return usb.util.get_string(device, device.iSerialNumber) if device.iSerialNumber else None
    except (usb.core.USBError, ValueError, NotImplementedError):
        return None  # no permission to open it, or it has no strings


class PortScan:
    """What is plugged in, looked at anew on each call: the port path and iSerialNumber (None: none can be
    read) of every device of one VID/PID. A device's serial is read once, when it is first seen at its
    port; a device plugged in again enumerates at a new address and is read again."""

    def __init__(self, vid: int, pid: int, backend: Any) -> None:
        self.vid = vid
        self.pid = pid
        self.backend = backend
        self._serials: dict[tuple[int, int, str], str | None] = {}

    def __call__(self) -> list[tuple[str, str | None]]:
        """``(port path, serial)`` of each device attached (StationError when the devices cannot be listed)."""
        try:
            attached = list(usb.core.find(find_all=True, backend=self.backend, idVendor=self.vid, idProduct=self.pid))
        except usb.core.USBError as exc:
            raise StationError(f"USB {self.vid:04x}:{self.pid:04x}: cannot list the USB devices: {exc}") from None
        seen: dict[tuple[int, int, str], str | None] = {}
        for device in attached:
            key = (device.bus, device.address, port_path(device))
            if key in self._serials:
                seen[key] = self._serials[key]
            else:
                seen[key] = _serial_number(device)
                usb.util.dispose_resources(device)  # closes what reading the serial number opened
        self._serials = seen
        return [(port, serial) for (_, _, port), serial in seen.items()]


def _shown(data: bytes) -> str:
    more = f" … ({len(data)} bytes)" if len(data) > _SHOWN_BYTES else ""
    return f"{bytes(data[:_SHOWN_BYTES])!r}{more}"


class UsbLink:
    """One unit's flashing interface: text commands and image data over its bulk endpoints."""

    def __init__(self, device: Any, interface: Any, ep_out: Any, ep_in: Any, timeout_s: float) -> None:
        self.where = f"USB {port_path(device)}"
        """Names the link in messages, e.g. "USB 1-1.3"."""
        self.timeout_s = timeout_s
        self._device: Any = device
        self._interface = interface
        self._out = ep_out
        self._in = ep_in
        self._lock = threading.RLock()
        self._out_of_step: str | None = None
        """Why the unit and the host may no longer agree on where in the protocol they are."""

    @classmethod
    def open(cls, selector: UsbSelector, backend: Any | None = None, timeout_s: float = 10.0) -> UsbLink:
        """Find the selected device, claim its interface and find its bulk endpoints."""
        backend = backend if backend is not None else usb_backend()
        try:
            attached = list(usb.core.find(find_all=True, backend=backend))
        except usb.core.USBError as exc:
            raise StationError(f"{selector.describe()}: cannot list the USB devices: {exc}") from None
        ours = [d for d in attached if (d.idVendor, d.idProduct) == (selector.vid, selector.pid)]
        matches = [d for d in ours if selector.port in (None, port_path(d))]
        if selector.serial is not None:
            matches = [d for d in matches if _serial_number(d) == selector.serial]
        problem = None
        if not matches:
            problem = f"no device found for {selector.describe()}; attached: {_inventory(attached, ours)}"
        elif len(matches) > 1:
            ports = ", ".join(port_path(d) for d in matches)
            problem = f"{len(matches)} devices match {selector.describe()} (at {ports}); select one by port or serial"
        for device in attached:
            if problem is not None or device is not matches[0]:
                usb.util.dispose_resources(device)  # closes what reading a serial number opened
        if problem is not None:
            raise StationError(problem)
        return cls._claim(matches[0], timeout_s)

    @classmethod
    def _claim(cls, device: Any, timeout_s: float) -> UsbLink:
        where = f"USB {port_path(device)}"
        try:
            device.set_configuration()
            interface = device.get_active_configuration()[(0, 0)]
            number = interface.bInterfaceNumber
            try:
                if device.is_kernel_driver_active(number):
                    device.detach_kernel_driver(number)
            except NotImplementedError:
                pass  # the platform has no kernel drivers to detach (Windows, macOS)
            usb.util.claim_interface(device, number)
        except (usb.core.USBError, ValueError, IndexError) as exc:  # the last two: descriptors not as expected
            usb.util.dispose_resources(device)
            denied = getattr(exc, "errno", None) == errno.EACCES
            hint = " (no permission: a udev rule must grant access to it)" if denied else ""
            raise StationError(f"{where}: cannot claim the flashing interface: {exc}{hint}") from None
        ep_out, ep_in = (
            _bulk_endpoint(interface, direction) for direction in (usb.util.ENDPOINT_OUT, usb.util.ENDPOINT_IN)
        )
        if ep_out is None or ep_in is None:
            usb.util.dispose_resources(device)
            raise StationError(f"{where}: the device has no bulk OUT and bulk IN endpoint: not a flashing interface")
        return cls(device, interface, ep_out, ep_in, timeout_s)

    def __enter__(self) -> UsbLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def command(self, line: str, timeout_s: float | None = None) -> str:
        """Send one command; the text after ``OK`` in the unit's reply ("" for a bare ``OK``)."""
        with self._lock:
            verb = self._start(line)
            self._write(line.encode("ascii"), verb, timeout_s)
            return self._reply(verb, timeout_s)

    def send(
        self,
        line: str,
        chunks: Iterable[bytes],
        size: int,
        progress: Callable[[int], None] | None = None,
        cancelled: threading.Event | None = None,
        timeout_s: float | None = None,
    ) -> str:
        """Send a command with ``size`` bytes of data; the text after ``OK`` in the final reply.

        ``progress`` is told the bytes sent so far after each transfer; ``cancelled`` is checked
        before each one. Once the data has started, any failure leaves the unit waiting for the
        rest: the link refuses further commands until it is reopened.
        """
        with self._lock:  # one exchange at a time, even from several threads
            verb = self._start(line)
            if cancelled is not None and cancelled.is_set():
                raise StationError(f"{self.where}: {verb} cancelled before it started")
            ready = self.command(line, timeout_s)
            if ready != "ready":
                self._out_of_step = f"an unexpected reply to {verb}"
                raise StationError(f"{self.where}: expected 'OK ready' to {verb}, got 'OK {ready}'")
            sent = 0
            try:
                for chunk in chunks:
                    for start in range(0, len(chunk), CHUNK_LIMIT):
                        piece = chunk[start : start + CHUNK_LIMIT]
                        if cancelled is not None and cancelled.is_set():
                            raise StationError(f"{self.where}: {verb} cancelled after {sent} of {size} bytes")
                        if sent + len(piece) > size:
                            raise StationError(
                                f"{self.where}: the image source for {verb} gives more than {size} bytes"
                            )
                        self._write(piece, verb, timeout_s)
                        sent += len(piece)
                        if progress is not None:
                            progress(sent)
                if sent != size:
                    raise StationError(f"{self.where}: the image source for {verb} gave {sent} bytes, not {size}")
            except OSError as exc:
                self._out_of_step = f"an interrupted {verb}"
                raise StationError(f"{self.where}: reading the image for {verb} failed: {exc}") from None
            except BaseException:
                self._out_of_step = self._out_of_step or f"an interrupted {verb}"
                raise
            return self._reply(verb, timeout_s)

    def close(self) -> None:
        """Release the interface and the device; closing twice does nothing."""
        with self._lock:
            device, self._device = self._device, None
        if device is None:
            return
        with contextlib.suppress(usb.core.USBError):  # an unplugged device has nothing left to release
            usb.util.release_interface(device, self._interface)
        usb.util.dispose_resources(device)

    def _start(self, line: str) -> str:
        """The command's verb, once the link is known fit to carry it."""
        if self._device is None:
            raise StationError(f"{self.where}: the link is closed")
        if self._out_of_step is not None:
            raise StationError(f"{self.where}: the link is out of step after {self._out_of_step}; reopen it")
        if not line.isascii() or not line.strip() or "\n" in line:
            raise StationError(f"{self.where}: not a command line: {line[:80]!r}")
        return line.split()[0]

    def _ms(self, timeout_s: float | None) -> int:
        return max(1, round(1000 * (self.timeout_s if timeout_s is None else timeout_s)))  # 0 is "forever"

    def _write(self, data: bytes, verb: str, timeout_s: float | None) -> None:
        try:
            self._device.write(self._out, data, self._ms(timeout_s))
        except usb.core.USBTimeoutError:
            self._out_of_step = f"a timed-out {verb}"
            raise StationError(
                f"{self.where}: the unit took no data for {verb} within {self._ms(timeout_s) / 1000:g} s"
            ) from None
        except usb.core.USBError as exc:
            raise self._failed(verb, exc) from None

    def _reply(self, verb: str, timeout_s: float | None) -> str:
        """Read one reply; the text after ``OK``."""
        try:
            data = bytes(self._device.read(self._in, REPLY_LIMIT, self._ms(timeout_s)))
        except usb.core.USBTimeoutError:
            self._out_of_step = f"no reply to {verb}"
            raise StationError(f"{self.where}: no reply to {verb} within {self._ms(timeout_s) / 1000:g} s") from None
        except usb.core.USBError as exc:
            raise self._failed(verb, exc) from None
        try:
            text = data.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            self._out_of_step = f"an unintelligible reply to {verb}"
            raise StationError(f"{self.where}: unintelligible reply to {verb}: {_shown(data)}") from None
        if text == "OK":
            return ""
        if text.startswith("OK "):
            return text[3:]
        if text.startswith("ERR "):
            raise_reply(text, self.where)
        self._out_of_step = f"an unexpected reply to {verb}"
        raise StationError(f"{self.where}: unexpected reply to {verb}: {_shown(data)}")

    def _failed(self, verb: str, exc: Exception) -> StationError:
        self._out_of_step = f"a failed {verb}"
        gone = " (unplugged?)" if getattr(exc, "errno", None) == errno.ENODEV else ""
        return StationError(f"{self.where}: USB transfer failed during {verb}{gone}: {exc}")


def _bulk_endpoint(interface: Any, direction: int) -> Any:
    return usb.util.find_descriptor(
        interface,
        custom_match=lambda e: (
            usb.util.endpoint_direction(e.bEndpointAddress) == direction
            and usb.util.endpoint_type(e.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK
        ),
    )


def _inventory(attached: list[Any], ours: list[Any]) -> str:
    """What is attached, as ``vid:pid@port``, with the serial of the devices of the wanted VID/PID."""
    if not attached:
        return "no USB devices at all"
    shown = []
    for device in attached:
        text = f"{device.idVendor:04x}:{device.idProduct:04x}@{port_path(device)}"
        if any(device is d for d in ours):
            text += f" (serial {_serial_number(device) or 'unreadable'})"
        shown.append(text)
    return ", ".join(shown)
