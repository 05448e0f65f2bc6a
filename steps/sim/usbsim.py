"""Simulated units on USB: their flashing firmware, and a pyusb backend that presents them.

``UsbFirmware`` carries out the flashing protocol of docs/hardware.md against a ``SimDevice``.
``SimUsbBackend`` is a ``usb.backend.IBackend`` whose devices are such firmwares plugged into
ports, so the host adapter (``steps.hardware.usb``) runs unchanged through pyusb: enumeration,
descriptors and strings, configuration, interface claims and bulk transfers.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import re
import struct
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from types import SimpleNamespace
from typing import Any

import usb.backend  # type: ignore[import-untyped]
import usb.core  # type: ignore[import-untyped]

from engine.flow import Image
from engine.outcome import StationError
from steps.common.wire import error_reply
from steps.sim.device import SimDevice

SIM_VID, SIM_PID = 0x1209, 0xF10F
EP_OUT, EP_IN = 0x01, 0x81
PACKET_SIZE = 512
REPLY_LIMIT = 4096
DATA_VERBS = ("WRITE", "BOOTRAM", "RECOVER", "SIDELOAD")
GARBLED = b"\xff\xfe\x00\x9c garbled \xc3\x28"
"""What a garbled reply carries: bytes that are not UTF-8 text."""
_STRINGS = {1: "floorflow", 2: "simulated unit"}  # index 3 is the serial number
_LANGIDS = (0x0409,)
_PORT = re.compile(r"(\d+)-(\d+(?:\.\d+)*)")

# libusb's error codes, raised with the errno pyusb's libusb1 backend gives them
_NO_DEVICE, _NOT_FOUND, _BUSY, _TIMEOUT, _OVERFLOW, _PIPE = -4, -5, -6, -7, -8, -9
_ERRNO = {
    -4: errno.ENODEV,
    -5: errno.ENOENT,
    -6: errno.EBUSY,
    -7: errno.ETIMEDOUT,
    -8: errno.EOVERFLOW,
    -9: errno.EPIPE,
}


def _usb_error(code: int) -> Exception:
    kind = usb.core.USBTimeoutError if code == _TIMEOUT else usb.core.USBError
    return kind(os.strerror(_ERRNO[code]), code, _ERRNO[code])  # type: ignore[no-any-return]


@dataclass
class _Upload:
    """A command's data phase: the image it carries, the bytes still expected, the hash so far."""

    verb: str
    image: Image
    remaining: int
    sha: hashlib._Hash = field(default_factory=hashlib.sha256)


class UsbFirmware:
    """One simulated unit's flashing interface: executes the commands of docs/hardware.md against a SimDevice.

    Commands run one at a time on a worker thread of the firmware's own (started when work
    arrives, gone when there is none), as a real unit answers asynchronously: a bulk OUT transfer
    queues a command, a bulk IN transfer waits for a reply. Image data is hashed as it arrives.
    """

    def __init__(self, device: SimDevice, images: Mapping[str, Image], bytes_per_s: float | None = None) -> None:
        self.device = device
        self.images = dict(images)
        self.bytes_per_s = bytes_per_s
        """Simulated bus speed: an OUT transfer of n bytes takes n / bytes_per_s seconds; None: no delay."""
        self.silent = False
        """True: the unit takes every transfer and answers nothing (a hung firmware)."""
        self._garble = False
        self._lock = threading.Lock()
        self._replied = threading.Condition(self._lock)
        self._replies: deque[bytes] = deque()
        self._jobs: deque[tuple[int, Callable[[], str]]] = deque()
        self._working = False
        self._upload: _Upload | None = None
        self._generation = 0
        """Counts resets: work queued before a reset is dropped, with its reply."""
        self._current = 0
        """The generation of the command being carried out."""
        self._stopped = threading.Event()

    def garble_next_reply(self) -> None:
        """The next reply the unit sends is bytes that are not text."""
        with self._lock:
            self._garble = True

    def transfer_s(self, size: int) -> float:
        """How long a bulk OUT transfer of ``size`` bytes takes on the simulated bus."""
        return size / self.bytes_per_s if self.bytes_per_s else 0.0

    def receive(self, data: bytes) -> None:
        """A bulk OUT transfer from the host: a command, or image data while a command awaits it."""
        with self._lock:
            upload = self._upload
            if self.silent:
                return
            if upload is None:
                self._queue_locked(partial(self._command, data))
                return
            upload.sha.update(data)
            upload.remaining -= len(data)
            if upload.remaining <= 0:  # more than announced: the hash shows it
                self._upload = None
                self._queue_locked(partial(self._finish, upload))

    def next_reply(self, timeout_s: float | None, gone: threading.Event) -> bytes | None:
        """The oldest unread reply; None when none comes within ``timeout_s`` or ``gone`` is set."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._replied:
            while not self._replies:
                left = None if deadline is None else deadline - time.monotonic()
                if gone.is_set() or (left is not None and left <= 0):
                    return None
                self._replied.wait(left)
            return self._replies.popleft()

    def wake(self) -> None:
        """Wake every reader waiting for a reply (the device was unplugged)."""
        with self._replied:
            self._replied.notify_all()

    def reset(self) -> None:
        """The host (re)configured the device: drop the data phase, queued work and unread replies."""
        with self._lock:
            self._generation += 1
            self._upload = None
            self._jobs.clear()
            self._replies.clear()

    def close(self) -> None:
        """A boot or recovery in progress gives up; nothing more is carried out."""
        self._stopped.set()
        self.reset()

    def _queue_locked(self, job: Callable[[], str]) -> None:
        if self._stopped.is_set():
            return
        self._jobs.append((self._generation, job))
        if not self._working:
            self._working = True
            threading.Thread(target=self._work, name=f"usb-firmware-{self.device.serial}", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._working = False
                    return
                generation, job = self._jobs.popleft()
                self._current = generation
            try:
                reply = job()
            except Exception as exc:  # the unit's own error, answered as the real firmware does
                reply = error_reply(exc)
            with self._lock:
                if generation == self._generation and not self.silent:
                    self._post_locked(reply)

    def _post_locked(self, reply: str) -> None:
        payload = GARBLED if self._garble else reply.encode()[:REPLY_LIMIT]
        self._garble = False
        self._replies.append(payload)
        self._replied.notify_all()

    def _image(self, name: str) -> Image:
        if name not in self.images:
            raise StationError(f"unknown image '{name}'")
        return self.images[name]

    def _command(self, data: bytes) -> str:
        try:
            verb, *args = data.decode("ascii").split()
        except (UnicodeDecodeError, ValueError):
            raise StationError(f"not a command: {data[:40]!r}") from None
        device = self.device
        if verb in DATA_VERBS and len(args) == 2 and args[1].isdigit():
            upload = _Upload(verb, self._image(args[0]), int(args[1]))
            with self._lock:  # the data may follow "OK ready" at once: be ready for it first
                if self._current != self._generation:
                    return "OK ready"  # reset meanwhile: the reply is dropped too
                if upload.remaining:
                    self._upload = upload
                else:
                    self._queue_locked(partial(self._finish, upload))
            return "OK ready"
        if verb == "INFO" and not args:
            return "OK " + json.dumps({"device_id": device.device_id, "running": device.running, "os": device.os_image})
        if verb == "VERIFY" and not args:
            return f"OK {device.storage_digest()}"
        if verb == "STATUS" and not args:
            return "OK " + json.dumps(asdict(device.status()))
        if verb == "DELETE" and len(args) == 1:
            return f"OK {int(device.delete_image(self._image(args[0]).name))}"
        if verb == "BOOT" and len(args) == 1 and (timeout_s := _seconds_arg(args[0])) is not None:
            was = device.running
            device.wait_boot(True, timeout_s, self._stopped)
            return "OK running" if was else "OK booted"
        if verb == "REBOOT" and not args:
            device.reboot()
            return "OK"
        raise StationError(f"unknown command or wrong arguments: {' '.join([verb, *args])[:80]!r}")

    def _finish(self, upload: _Upload) -> str:
        """The data of a command has all arrived: carry the command out."""
        device, image = self.device, upload.image
        if upload.verb == "WRITE":
            device.write_storage(image, digest=upload.sha.hexdigest())
            return f"OK {device.storage_digest()}"
        if upload.verb == "BOOTRAM":
            device.boot_ram(image)
        elif upload.verb == "RECOVER":
            device.recover(image, timeout_s=60, cancelled=self._stopped)
        else:
            device.sideload(image)
        return "OK"


@dataclass(eq=False)
class _Plug:
    """A device attached at a port: what enumeration yields and open handles point at."""

    port: str
    bus: int
    port_numbers: tuple[int, ...]
    address: int
    firmware: UsbFirmware
    unplugged: threading.Event = field(default_factory=threading.Event)
    configuration: int = 0
    claimed_by: _Handle | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(eq=False)
class _Handle:
    """An open device, as ``open_device`` returns it."""

    plug: _Plug


def _descriptor(length: int, kind: int, **fields: Any) -> SimpleNamespace:
    return SimpleNamespace(bLength=length, bDescriptorType=kind, extra_descriptors=[], **fields)


_CONFIG = _descriptor(
    9, 2, wTotalLength=32, bNumInterfaces=1, bConfigurationValue=1, iConfiguration=0, bmAttributes=0x80, bMaxPower=50
)
_INTERFACE = _descriptor(
    9, 4, bInterfaceNumber=0, bAlternateSetting=0, bNumEndpoints=2, bInterfaceClass=0xFF, bInterfaceSubClass=0,
    bInterfaceProtocol=0, iInterface=0,
)  # fmt: skip
_ENDPOINTS = tuple(
    _descriptor(7, 5, bEndpointAddress=a, bmAttributes=2, wMaxPacketSize=PACKET_SIZE, bInterval=0, bRefresh=0,
                bSynchAddress=0)
    for a in (EP_OUT, EP_IN)
)  # fmt: skip


class SimUsbBackend(usb.backend.IBackend):  # type: ignore[misc]
    """A pyusb backend presenting simulated units at the ports of one bus.

    Each unit enumerates with full descriptors: device (vendor class, VID 0x1209, PID 0xF10F),
    one configuration, one interface with bulk OUT 0x01 and bulk IN 0x81 (512-byte packets), and
    strings iManufacturer 'floorflow', iProduct 'simulated unit', iSerialNumber the first 16 hex
    digits of the unit's device id; plus its bus, address and port numbers. Each device has its
    own lock, so transfers to different devices run in parallel.
    """

    def __init__(self, bus: int = 1) -> None:
        self.bus = bus
        self._plugs: dict[str, _Plug] = {}
        self._addresses = itertools.count()
        self._lock = threading.Lock()

    # -- the bench: plugging devices in and out -----------------------------------------------------

    def attach(self, port: str, firmware: UsbFirmware) -> None:
        """Plug a device in at ``port`` (``BUS-P1.P2…``, e.g. ``1-1.3``, on this backend's bus).

        A device already at that port is unplugged first.
        """
        match = _PORT.fullmatch(port)
        if match is None or int(match[1]) != self.bus:
            raise ValueError(f"port '{port}' is not a port path on bus {self.bus} (like {self.bus}-1.3)")
        numbers = tuple(int(n) for n in match[2].split("."))
        self.detach(port)
        with self._lock:
            address = next(self._addresses) % 126 + 2  # 2..127: 1 is the root hub's
            self._plugs[port] = _Plug(port, self.bus, numbers, address, firmware)

    def detach(self, port: str) -> None:
        """Unplug the device at ``port``, if any: its open handles fail from now on (ENODEV)."""
        with self._lock:
            plug = self._plugs.pop(port, None)
        if plug is not None:
            plug.unplugged.set()
            plug.firmware.wake()

    def ports(self) -> list[str]:
        with self._lock:
            return sorted(self._plugs)

    # -- enumeration and descriptors ----------------------------------------------------------------

    def enumerate_devices(self) -> list[_Plug]:
        with self._lock:
            return list(self._plugs.values())

    def get_parent(self, dev: _Plug) -> None:
        return None

    def get_device_descriptor(self, dev: _Plug) -> SimpleNamespace:
        return _descriptor(
            18, 1, bcdUSB=0x0200, bDeviceClass=0xFF, bDeviceSubClass=0, bDeviceProtocol=0, bMaxPacketSize0=64,
            idVendor=SIM_VID, idProduct=SIM_PID, bcdDevice=0x0100, iManufacturer=1, iProduct=2, iSerialNumber=3,
            bNumConfigurations=1, bus=dev.bus, address=dev.address, port_number=dev.port_numbers[-1],
            port_numbers=dev.port_numbers, speed=3,  # libusb's LIBUSB_SPEED_HIGH: 512-byte bulk packets
        )  # fmt: skip

    def get_configuration_descriptor(self, dev: _Plug, config: int) -> SimpleNamespace:
        if config != 0:
            raise _usb_error(_NOT_FOUND)
        return _CONFIG

    def get_interface_descriptor(self, dev: _Plug, intf: int, alt: int, config: int) -> SimpleNamespace:
        self.get_configuration_descriptor(dev, config)
        if intf != 0 or alt != 0:
            raise IndexError(f"invalid interface {intf} or alternate setting {alt}")
        return _INTERFACE

    def get_endpoint_descriptor(self, dev: _Plug, ep: int, intf: int, alt: int, config: int) -> SimpleNamespace:
        self.get_interface_descriptor(dev, intf, alt, config)
        if ep not in (0, 1):
            raise IndexError(f"invalid endpoint index {ep}")
        return _ENDPOINTS[ep]

    # -- handles, configuration, interfaces ---------------------------------------------------------

    def open_device(self, dev: _Plug) -> _Handle:
        if dev.unplugged.is_set():
            raise _usb_error(_NO_DEVICE)
        return _Handle(dev)

    def close_device(self, dev_handle: _Handle) -> None:
        with dev_handle.plug.lock:
            if dev_handle.plug.claimed_by is dev_handle:
                dev_handle.plug.claimed_by = None

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        plug = self._live(dev_handle)
        if config_value not in (0, 1):
            raise _usb_error(_NOT_FOUND)
        with plug.lock:
            if plug.claimed_by not in (None, dev_handle):
                raise _usb_error(_BUSY)
            plug.configuration = config_value
        plug.firmware.reset()

    def get_configuration(self, dev_handle: _Handle) -> int:
        return self._live(dev_handle).configuration

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        if (intf, altsetting) != (0, 0):
            raise _usb_error(_NOT_FOUND)

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        plug = self._live(dev_handle)
        with plug.lock:
            if intf != 0 or plug.configuration != 1:
                raise _usb_error(_NOT_FOUND)
            if plug.claimed_by not in (None, dev_handle):
                raise _usb_error(_BUSY)
            plug.claimed_by = dev_handle

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        with dev_handle.plug.lock:
            if dev_handle.plug.claimed_by is not dev_handle:
                raise _usb_error(_NOT_FOUND)
            dev_handle.plug.claimed_by = None

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        return False

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        self._live(dev_handle)

    def reset_device(self, dev_handle: _Handle) -> None:
        self._live(dev_handle).firmware.reset()

    # -- transfers ------------------------------------------------------------------------------------

    def bulk_write(self, dev_handle: _Handle, ep: int, intf: int, data: array[int], timeout: int) -> int:
        plug = self._claimed(dev_handle, ep, EP_OUT)
        delay = plug.firmware.transfer_s(len(data))
        limit = _seconds(timeout)
        if plug.unplugged.wait(delay if limit is None else min(delay, limit)):
            raise _usb_error(_NO_DEVICE)
        if limit is not None and delay > limit:
            raise _usb_error(_TIMEOUT)
        plug.firmware.receive(data.tobytes())
        return len(data)

    def bulk_read(self, dev_handle: _Handle, ep: int, intf: int, buff: array[int], timeout: int) -> int:
        plug = self._claimed(dev_handle, ep, EP_IN)
        reply = plug.firmware.next_reply(_seconds(timeout), plug.unplugged)
        if plug.unplugged.is_set():
            raise _usb_error(_NO_DEVICE)
        if reply is None:
            raise _usb_error(_TIMEOUT)
        if len(reply) > len(buff):
            raise _usb_error(_OVERFLOW)
        buff[: len(reply)] = array("B", reply)
        return len(reply)

    def ctrl_transfer(
        self, dev_handle: _Handle, bmRequestType: int, bRequest: int, wValue: int, wIndex: int, data: array[int],
        timeout: int,
    ) -> int:  # fmt: skip
        plug = self._live(dev_handle)
        if (bmRequestType, bRequest) != (0x80, 6):  # GET_DESCRIPTOR of strings; a real device stalls the rest
            raise _usb_error(_PIPE)
        kind, index = wValue >> 8, wValue & 0xFF
        if kind == 3 and index == 0:
            reply = bytes([2 + 2 * len(_LANGIDS), 3]) + b"".join(struct.pack("<H", i) for i in _LANGIDS)
        elif kind == 3 and index in (1, 2, 3):
            text = _STRINGS.get(index) or plug.firmware.device.device_id[:16]
            encoded = text.encode("utf-16-le")
            reply = bytes([2 + len(encoded), 3]) + encoded
        else:
            raise _usb_error(_PIPE)
        count = min(len(reply), len(data))
        data[:count] = array("B", reply[:count])
        return count

    def _live(self, dev_handle: _Handle) -> _Plug:
        if dev_handle.plug.unplugged.is_set():
            raise _usb_error(_NO_DEVICE)
        return dev_handle.plug

    def _claimed(self, dev_handle: _Handle, ep: int, expected: int) -> _Plug:
        plug = self._live(dev_handle)
        if ep != expected or plug.claimed_by is not dev_handle:
            raise _usb_error(_PIPE if ep != expected else _NOT_FOUND)
        return plug


def _seconds(timeout_ms: int) -> float | None:
    """A libusb timeout in seconds: 0 means wait forever."""
    return timeout_ms / 1000 if timeout_ms else None


def _seconds_arg(text: str) -> float | None:
    """A command's timeout argument in seconds; None when it is not a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value < float("inf") else None
