"""A pyusb backend presenting simulated units: ``usb.backend.IBackend`` over ``UsbFirmware``.

``SimUsbBackend``'s devices are firmwares plugged into ports, so the host adapter
(``steps.hardware.usb``) runs unchanged through pyusb: enumeration, descriptors and strings,
configuration, interface claims and bulk transfers.
"""

from __future__ import annotations

import itertools
import re
import struct
import threading
from array import array
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import usb.backend

from steps.sim.usbfirmware import (
    EP_IN,
    EP_OUT,
    LIBUSB_BUSY,
    LIBUSB_NO_DEVICE,
    LIBUSB_NOT_FOUND,
    LIBUSB_OVERFLOW,
    LIBUSB_PIPE,
    LIBUSB_TIMEOUT,
    PACKET_SIZE,
    SIM_PID,
    SIM_VID,
    UsbFirmware,
    usb_error,
)

__all__ = ["SIM_PID", "SIM_VID", "SimUsbBackend", "UsbFirmware"]

_STRINGS = {1: "floorflow", 2: "simulated unit"}  # index 3 is the serial number
_LANGIDS = (0x0409,)
_PORT = re.compile(r"(\d+)-(\d+(?:\.\d+)*)")


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
            raise usb_error(LIBUSB_NOT_FOUND)
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
            raise usb_error(LIBUSB_NO_DEVICE)
        return _Handle(dev)

    def close_device(self, dev_handle: _Handle) -> None:
        with dev_handle.plug.lock:
            if dev_handle.plug.claimed_by is dev_handle:
                dev_handle.plug.claimed_by = None

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        plug = self._live(dev_handle)
        if config_value not in (0, 1):
            raise usb_error(LIBUSB_NOT_FOUND)
        with plug.lock:
            if plug.claimed_by not in (None, dev_handle):
                raise usb_error(LIBUSB_BUSY)
            plug.configuration = config_value
        plug.firmware.reset()

    def get_configuration(self, dev_handle: _Handle) -> int:
        return self._live(dev_handle).configuration

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        if (intf, altsetting) != (0, 0):
            raise usb_error(LIBUSB_NOT_FOUND)

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        plug = self._live(dev_handle)
        with plug.lock:
            if intf != 0 or plug.configuration != 1:
                raise usb_error(LIBUSB_NOT_FOUND)
            if plug.claimed_by not in (None, dev_handle):
                raise usb_error(LIBUSB_BUSY)
            plug.claimed_by = dev_handle

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        with dev_handle.plug.lock:
            if dev_handle.plug.claimed_by is not dev_handle:
                raise usb_error(LIBUSB_NOT_FOUND)
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
            raise usb_error(LIBUSB_NO_DEVICE)
        if limit is not None and delay > limit:
            raise usb_error(LIBUSB_TIMEOUT)
        plug.firmware.receive(data.tobytes())
        return len(data)

    def bulk_read(self, dev_handle: _Handle, ep: int, intf: int, buff: array[int], timeout: int) -> int:
        plug = self._claimed(dev_handle, ep, EP_IN)
        reply = plug.firmware.next_reply(_seconds(timeout), plug.unplugged)
        if plug.unplugged.is_set():
            raise usb_error(LIBUSB_NO_DEVICE)
        if reply is None:
            raise usb_error(LIBUSB_TIMEOUT)
        if len(reply) > len(buff):
            raise usb_error(LIBUSB_OVERFLOW)
        buff[: len(reply)] = array("B", reply)
        return len(reply)

    def ctrl_transfer(
        self, dev_handle: _Handle, bmRequestType: int, bRequest: int, wValue: int, wIndex: int, data: array[int],
        timeout: int,
    ) -> int:  # fmt: skip
        plug = self._live(dev_handle)
        if (bmRequestType, bRequest) != (0x80, 6):  # GET_DESCRIPTOR of strings; a real device stalls the rest
            raise usb_error(LIBUSB_PIPE)
        kind, index = wValue >> 8, wValue & 0xFF
        if kind == 3 and index == 0:
            reply = bytes([2 + 2 * len(_LANGIDS), 3]) + b"".join(struct.pack("<H", i) for i in _LANGIDS)
        elif kind == 3 and index in (1, 2, 3):
            text = _STRINGS.get(index) or plug.firmware.device.device_id[:16]
            encoded = text.encode("utf-16-le")
            reply = bytes([2 + len(encoded), 3]) + encoded
        else:
            raise usb_error(LIBUSB_PIPE)
        count = min(len(reply), len(data))
        data[:count] = array("B", reply[:count])
        return count

    def _live(self, dev_handle: _Handle) -> _Plug:
        if dev_handle.plug.unplugged.is_set():
            raise usb_error(LIBUSB_NO_DEVICE)
        return dev_handle.plug

    def _claimed(self, dev_handle: _Handle, ep: int, expected: int) -> _Plug:
        plug = self._live(dev_handle)
        if ep != expected or plug.claimed_by is not dev_handle:
            raise usb_error(LIBUSB_PIPE if ep != expected else LIBUSB_NOT_FOUND)
        return plug


def _seconds(timeout_ms: int) -> float | None:
    """A libusb timeout in seconds: 0 means wait forever."""
    return timeout_ms / 1000 if timeout_ms else None
