"""One simulated unit's flashing firmware: the protocol of docs/hardware.md against a ``SimDevice``.

``UsbFirmware`` is what sits behind a simulated USB port (``steps.sim.usbsim``): a bulk OUT transfer
queues a command or carries image data, a bulk IN transfer waits for the reply. Errors are raised
as pyusb raises libusb's, so the host adapter sees what it would see on a real bus.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial

import usb.core

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

# libusb's error codes, raised with the errno pyusb's libusb1 backend gives them
LIBUSB_NO_DEVICE, LIBUSB_NOT_FOUND, LIBUSB_BUSY, LIBUSB_TIMEOUT, LIBUSB_OVERFLOW, LIBUSB_PIPE = -4, -5, -6, -7, -8, -9
_ERRNO = {
    -4: errno.ENODEV,
    -5: errno.ENOENT,
    -6: errno.EBUSY,
    -7: errno.ETIMEDOUT,
    -8: errno.EOVERFLOW,
    -9: errno.EPIPE,
}


def usb_error(code: int) -> Exception:
    kind = usb.core.USBTimeoutError if code == LIBUSB_TIMEOUT else usb.core.USBError
    error: Exception = kind(os.strerror(_ERRNO[code]), code, _ERRNO[code])
    return error


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
            device.recover(image, timeout_s=60, cancelled=self._stopped, digest=upload.sha.hexdigest())
        else:
            device.sideload(image)
        return "OK"


def _seconds_arg(text: str) -> float | None:
    """A command's timeout argument in seconds; None when it is not a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value < float("inf") else None
