"""The console firmware of a simulated unit, on the master side of a pseudo-terminal.

The station opens the slave side (``SimConsole.port``) with pyserial exactly as it opens a USB-UART
adapter, and speaks the protocol of docs/hardware.md ("UART: the console"). Each command maps onto
one ``SimDevice`` method; an exception becomes the unit's ``ERR`` line (``steps.common.wire``).

What the unit prints goes to the pty at once, so it is on the host's side before the unit's next
move (a boot banner before the USB reply that reports the boot). Two threads: one reads the host's
lines (so its writes never stall) and writes what the pty could not take at once, the other carries
out commands one at a time (so a slow unit delays only its own answer).

A pty has no real line rate, but it does keep the speed the host set: when that differs from the
firmware's, everything the unit prints reaches the host as garbage, as on a real UART.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import select
import shlex
import termios
import threading
import tty
from collections import deque

from engine.diagnostics import did_you_mean
from engine.outcome import StationError
from steps.common.identities import IDENTITY_KINDS
from steps.common.wire import error_reply
from steps.sim.device import CONSOLE_BAUDRATE, SimDevice

_USAGE = {
    "VERSION": "VERSION",
    "ID": "ID",
    "IDENT": "IDENT <kind> [<value>]",
    "SELFTEST": "SELFTEST <name>",
    "WIFI": "WIFI",
    "STATE": "STATE [<state>]",
    "SENSORCAL": "SENSORCAL <sensor>",
    "CUSTOMIZE": "CUSTOMIZE <market> [<operator>]",
    "RF START": "RF START <band> <channel>",
    "RF STOP": "RF STOP",
    "RF TRIM": "RF TRIM <band> <channel> <power_db> <freq_ppm> <0/1 persist>",
    "RF RSSI": "RF RSSI",
    "RF SETTINGS": "RF SETTINGS",
}
_HEARD = 256
_IDLE_S = 0.2
_RETRY_S = 0.01
"""How soon output the host is not reading yet is offered again."""
_JOIN_S = 2.0
_MAX_LINE = 4096
"""Input without a newline beyond this is dropped, as a firmware's line buffer would."""
_MAX_OUTPUT = 65536
"""Output nobody reads beyond this is dropped, as a UART drops what nobody listens to."""


def _shown(value: object) -> str:
    return "none" if value is None else str(value)


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what} must be an integer, not '{text}'") from None


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number, not '{text}'") from None


def answer(device: SimDevice, words: list[str]) -> list[tuple[str, str]]:
    """The data lines for one command (its words); raises what the unit answers ``ERR`` for."""
    verb, args = (" ".join(words[:2]), words[2:]) if words[0] == "RF" else (words[0], words[1:])
    match verb, args:
        case "VERSION", []:
            return [("version", _shown(device.status().os_version))]
        case "ID", []:
            return [("device_id", device.read_id("device-id"))]
        case "IDENT", [kind, *_] if kind not in IDENTITY_KINDS:
            raise StationError(f"no identity kind '{kind}'{did_you_mean(kind, IDENTITY_KINDS)}")
        case "IDENT", [kind]:
            return [(kind, _shown(device.read_identity(kind)))]
        case "IDENT", [kind, value]:
            device.write_identity(kind, value)
            return []
        case "SELFTEST", [name]:
            passed, printed = device.self_test(name, CONSOLE_BAUDRATE)
            verdict = "PASS" if passed else "FAIL"
            detail = printed.partition(": ")[2].removeprefix(verdict).strip()
            return [(name, f"{verdict} {detail}".rstrip())]
        case "WIFI", []:
            return [("network", ssid) for ssid in device.status().wifi_networks]
        case "STATE", []:
            return [("lifecycle", _shown(device.status().lifecycle))]
        case "STATE", [state]:
            device.advance_lifecycle(state)
            return []
        case "SENSORCAL", [sensor]:
            return [(name, str(value)) for name, value in device.calibrate_sensor(sensor).items()]
        case "CUSTOMIZE", [market]:
            return [("variant", device.customize(market, None))]
        case "CUSTOMIZE", [market, operator]:
            return [("variant", device.customize(market, operator))]
        case "RF START", [band, channel]:
            device.rf_start(band, _integer(channel, "channel"))
            return []
        case "RF STOP", []:
            device.rf_stop()
            return []
        case "RF TRIM", [band, channel, power_db, freq_ppm, persist]:
            if persist not in ("0", "1"):
                raise ValueError(f"persist must be 0 or 1, not '{persist}'")
            power, ppm = _number(power_db, "power_db"), _number(freq_ppm, "freq_ppm")
            device.write_trim(band, _integer(channel, "channel"), power, ppm, persist=persist == "1")
            return []
        case "RF RSSI", []:
            return [("rssi_dbm", str(device.rssi()))]
        case "RF SETTINGS", []:
            settings = device.rf_settings()
            return [
                ("region", _shown(settings.region)),
                ("target_power_dbm", _shown(settings.target_power_dbm)),
                ("mac", _shown(settings.mac)),
            ]
    if verb in _USAGE:
        raise ValueError(f"usage: {_USAGE[verb]}")
    raise ValueError(f"unknown command '{verb}'{did_you_mean(verb, _USAGE)}")


class SimConsole:
    """Firmware of the unit in one fixture slot, on the master side of a pseudo-terminal (os.openpty)."""

    def __init__(self, baudrate: int = CONSOLE_BAUDRATE) -> None:
        speed = getattr(termios, f"B{baudrate}", None)
        if speed is None:
            raise ValueError(f"a serial line cannot run at {baudrate} baud")
        self.baudrate = baudrate
        self._speed: int = speed
        self.silent = False
        """When True the firmware reads but never answers (a hung unit)."""
        self.heard: deque[str] = deque(maxlen=_HEARD)
        """The lines the firmware received lately, oldest first, answered or not."""
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        attributes = termios.tcgetattr(self._slave)
        attributes[4] = attributes[5] = speed  # until a host sets its own
        termios.tcsetattr(self._slave, termios.TCSANOW, attributes)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        """The slave's path: what the station opens with pyserial."""
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._fds_open = True
        self._fds_lock = threading.Lock()
        """Held around every use of the fds from outside the I/O thread, so close() never races one."""
        self._device: SimDevice | None = None
        self._lock = threading.Lock()
        self._output = bytearray()
        self._drained = threading.Condition()
        self._commands: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._pump, name=f"sim-console-io {self.port}", daemon=True),
            threading.Thread(target=self._serve, name=f"sim-console-firmware {self.port}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def attach(self, device: SimDevice | None) -> None:
        """The unit now in the slot (None: an empty slot, silence); its boot banners go to the console."""
        with self._lock:
            previous, self._device = self._device, device
        if previous is not None and previous.on_console == self._banner:
            previous.on_console = None
        if device is not None:
            device.on_console = self._banner

    def emit(self, data: bytes) -> None:
        """Write raw bytes to the host, as they are; returns once they are in the host's input."""
        self._send(data)
        with self._drained:
            self._drained.wait_for(lambda: not self._output or self._stop.is_set(), timeout=_JOIN_S)

    def close(self) -> None:
        """Stop both threads and close the pty; closing again does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.attach(None)
        self._stop.set()
        self._wake()
        self._commands.put(None)
        for thread in self._threads:
            thread.join(_JOIN_S)
        with self._fds_lock:
            self._fds_open = False
            for fd in (self._master, self._slave, self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)

    # -- what the unit prints ----------------------------------------------------------------------

    def _banner(self, text: str) -> None:
        """``SimDevice.on_console``: called from the booting thread with the unit locked; never blocks."""
        self._print(text.replace("\r\n", "\n").splitlines())

    def _print(self, lines: list[str]) -> None:
        data = "".join(f"{line}\r\n" for line in lines).encode()
        self._send(data if self._host_speed_matches() else self._garbled(data))

    def _host_speed_matches(self) -> bool:
        with self._fds_lock:
            try:
                return not self._fds_open or bool(termios.tcgetattr(self._slave)[5] == self._speed)
            except termios.error:
                return True  # the tty is going away: nothing reaches a host anyway

    def _garbled(self, data: bytes) -> bytes:
        """What a host at another rate reads: a byte >= 0x80 per character, line ends kept."""
        noise = random.Random(data + str(self.baudrate).encode())
        return bytes(b if b in b"\r\n" else noise.randrange(0x80, 0x100) for b in data)

    def _send(self, data: bytes) -> None:
        """Write to the host at once, as far as the pty takes it; the I/O thread writes the rest later."""
        with self._fds_lock:
            if not self._fds_open:
                return
            with self._drained:
                self._output += data
                del self._output[:-_MAX_OUTPUT]
            self._write_master()
            if self._output:
                with contextlib.suppress(OSError):
                    os.write(self._wake_write, b"!")

    def _wake(self) -> None:
        with self._fds_lock, contextlib.suppress(OSError):
            if self._fds_open:
                os.write(self._wake_write, b"!")

    # -- the two threads ---------------------------------------------------------------------------

    def _pump(self) -> None:
        """Move bytes: host input into complete lines for the firmware, queued output to the host."""
        poller = select.poll()
        poller.register(self._master, select.POLLIN)
        poller.register(self._wake_read, select.POLLIN)
        line = bytearray()
        while not self._stop.is_set():
            timeout_s = _RETRY_S if self._output else _IDLE_S
            for fd, events in poller.poll(timeout_s * 1000):
                if fd == self._wake_read:
                    with contextlib.suppress(OSError):
                        os.read(self._wake_read, 4096)
                elif events & select.POLLIN:
                    line += self._read_master()
                elif events & (select.POLLHUP | select.POLLERR):
                    self._stop.wait(_RETRY_S)  # no slave open: nothing to read until one is
            while (end := line.find(b"\n")) >= 0:
                received = bytes(line[:end]).removesuffix(b"\r").decode("utf-8", "replace")
                del line[: end + 1]
                self.heard.append(received)
                self._commands.put(received)
            del line[:-_MAX_LINE]
            self._write_master()

    def _read_master(self) -> bytes:
        try:
            return os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            self._stop.wait(_RETRY_S)
            return b""

    def _write_master(self) -> None:
        with self._drained:
            try:
                del self._output[: os.write(self._master, self._output)]
            except (BlockingIOError, InterruptedError):
                pass  # the host's input is full: the I/O thread offers the rest again
            except OSError:
                self._output.clear()  # the pty is gone: nobody can read it
            if not self._output:
                self._drained.notify_all()

    def _serve(self) -> None:
        """Carry out the commands in the order they came: the unit's firmware proper."""
        while (received := self._commands.get()) is not None:
            try:
                words = shlex.split(received)
            except ValueError:
                words = received.split()  # an unbalanced quote: the verb still gets its usage reply
            with self._lock:
                device = self._device
            if self.silent or device is None or not words:
                continue
            if not self._host_speed_matches():
                # The firmware hears noise, and its complaint reaches the host as noise too.
                self._print(["ERR invalid unintelligible input"])
                continue
            try:
                reply = [f"{key}: {value}" for key, value in answer(device, words)] + ["OK"]
            except Exception as exc:  # every failure of the unit is an ERR line, never a dead firmware
                reply = [error_reply(exc)]
            self._print(reply)
