"""A unit's UART console through pyserial: one command line out, ``key: value`` lines and ``OK``/``ERR`` back.

The protocol is in docs/hardware.md ("UART: the console"). Every read polls in short slices, so a
command's deadline and a caller's cancel are honoured and nothing blocks forever. A port that does
not open, a timeout, a partial line and garbage (a host at the wrong baud rate) are ``StationError``
naming the port; a unit that never prints its boot marker is ``StepFailed``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import TracebackType

import serial

from engine.outcome import StationError, StepFailed
from steps.common.wire import raise_reply

_PORT_ERRORS: tuple[type[Exception], ...] = (serial.SerialException, OSError)
"""What a port raises when it fails or goes away."""
try:
    from termios import error as termios_error
except ImportError:  # not POSIX: pyserial raises only its own errors there
    pass
else:
    _PORT_ERRORS += (termios_error,)  # pyserial lets a failed tcflush's error through
_SETUP_ERRORS: tuple[type[Exception], ...] = (*_PORT_ERRORS, ValueError)
"""What opening or reconfiguring a port raises: pyserial's ValueError is a setting it rejects."""

POLL_S = 0.05
"""Longest a single read waits, so deadlines and cancels are seen this often."""
_SHOWN_CHARS = 120


def shown(data: bytes | bytearray) -> str:
    """The bytes as an error message quotes them: their repr, cut to about 120 characters."""
    text = repr(bytes(data))
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _text(raw: bytes) -> str | None:
    """The line as text, or None when it is not printable UTF-8 (what a wrong baud rate reads)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


def _garbage(seen: bytearray) -> bool:
    """Whether bytes read are something other than lines of text (a partial line counts as text)."""
    return _text(bytes(seen).replace(b"\r", b"").replace(b"\n", b"")) is None


class ConsoleLink:
    """A unit's serial console: one command line out, `key: value` lines and OK/ERR back."""

    def __init__(self, port: str, baudrate: int = 115200, timeout_s: float = 5.0) -> None:
        self.port = port
        self.where = f"serial {port}"
        self.timeout_s = timeout_s
        """How long a command waits for its whole reply unless the call says otherwise."""
        self._lock = threading.Lock()
        try:
            self._serial = serial.Serial(
                port=port,
                baudrate=baudrate,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
                timeout=POLL_S,
                write_timeout=timeout_s,
            )
        except _SETUP_ERRORS as exc:
            raise StationError(f"serial port {port} does not open: {exc}") from exc

    def __enter__(self) -> ConsoleLink:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- commands ---------------------------------------------------------------------------------

    def command(self, line: str, timeout_s: float | None = None) -> list[tuple[str, str]]:
        """Send one command line; its data lines as (key, value) once the unit answers ``OK``.

        An ``ERR`` reply raises what it means (``steps.common.wire.raise_reply``). Input left over
        from before (a late reply, a banner) is discarded first.
        """
        if not line.strip() or "\n" in line or "\r" in line:
            raise StationError(f"{self.where}: a console command is one non-empty line, not {line!r}")
        timeout = self.timeout_s if timeout_s is None else timeout_s
        verb = line.split()[0]
        with self._lock:
            self._discard_input()
            self._write(f"{line}\n".encode())
            seen = bytearray()
            data: list[tuple[str, str]] = []
            for raw in self._lines(time.monotonic() + timeout, None, seen):
                text = _text(raw)
                if text is None:
                    raise self._unintelligible(line, seen)
                if not text:
                    continue  # a blank line carries nothing; consoles print them between prompts
                if text == "OK":
                    return data
                if text == "ERR" or text.startswith("ERR "):
                    raise_reply(text, self.where)
                key, colon, value = text.partition(": ")
                if not (colon and key):
                    raise self._unintelligible(line, seen)
                data.append((key, value))
        if not seen:
            raise StationError(f"{self.where}: no answer to {verb} within {timeout:g} s")
        if _garbage(seen):
            raise self._unintelligible(line, seen)
        raise StationError(
            f"{self.where}: no complete reply to '{line}' within {timeout:g} s; bytes seen: {shown(seen)}"
        )

    def value(self, line: str, key: str, timeout_s: float | None = None) -> str:
        """The one value of ``key`` in the reply to ``line``; StationError when it has none or several."""
        data = self.command(line, timeout_s)
        values = [v for k, v in data if k == key]
        if len(values) != 1:
            got = ", ".join(k for k, _ in data) or "no data lines"
            count = "no" if not values else f"{len(values)}"
            raise StationError(f"{self.where}: the reply to '{line}' has {count} '{key}' lines (got: {got})")
        return values[0]

    def wait_for(self, marker: str, timeout_s: float, cancelled: threading.Event | None = None) -> str:
        """Read until a line equal to ``marker`` (e.g. "boot complete"); all text seen, through it.

        A unit that does not print the marker in time is ``StepFailed`` (it did not come up), unless
        what it printed is garbage: then the station's baud rate is wrong, a ``StationError``.
        """
        with self._lock:
            seen = bytearray()
            printed: list[str] = []
            for raw in self._lines(time.monotonic() + timeout_s, cancelled, seen):
                printed.append(raw.decode("utf-8", "replace"))
                if printed[-1] == marker:
                    return "\n".join(printed) + "\n"
        if cancelled is not None and cancelled.is_set():
            raise StationError(f"{self.where}: waiting for '{marker}' was cancelled")
        if _garbage(seen):
            raise StationError(
                f"{self.where}: unintelligible output at {self.baudrate} baud (wrong baud rate?); "
                f"bytes seen: {shown(seen)}"
            )
        raise StepFailed(f"{self.where}: no '{marker}' within {timeout_s:g} s; seen: {shown(seen)}")

    # -- the port ---------------------------------------------------------------------------------

    def discard(self) -> None:
        """Drop whatever the unit printed that nobody read yet (before a boot, whose banner matters)."""
        with self._lock:
            self._discard_input()

    def set_baudrate(self, baudrate: int) -> None:
        """Switch the port to another rate (the unit's console keeps its own)."""
        with self._lock:
            try:
                self._serial.baudrate = baudrate
            except _SETUP_ERRORS as exc:
                raise StationError(f"{self.where}: cannot set {baudrate} baud: {exc}") from exc

    @property
    def baudrate(self) -> int:
        """The rate the port runs at now."""
        return int(self._serial.baudrate)

    def close(self) -> None:
        """Release the port; closing again does nothing."""
        self._serial.close()

    # -- reading and writing ----------------------------------------------------------------------

    def _discard_input(self) -> None:
        try:
            self._serial.reset_input_buffer()
        except _PORT_ERRORS as exc:
            raise StationError(f"{self.where}: {exc}") from exc

    def _write(self, data: bytes) -> None:
        try:
            self._serial.write(data)
            self._serial.flush()
        except _PORT_ERRORS as exc:
            raise StationError(f"{self.where}: writing failed: {exc}") from exc

    def _read(self) -> bytes:
        """What arrives within one poll slice (maybe nothing)."""
        try:
            return bytes(self._serial.read(self._serial.in_waiting or 1))
        except _PORT_ERRORS as exc:
            raise StationError(f"{self.where}: reading failed: {exc}") from exc

    def _lines(self, deadline: float, cancelled: threading.Event | None, seen: bytearray) -> Iterator[bytes]:
        """Complete lines, without their ``\\n`` or ``\\r\\n``, as they arrive until the deadline or a cancel.

        ``seen`` receives every byte read, for the caller's error messages.
        """
        pending = bytearray()
        while True:
            while (end := pending.find(b"\n")) >= 0:
                line = bytes(pending[:end]).removesuffix(b"\r")
                del pending[: end + 1]
                yield line
            if (cancelled is not None and cancelled.is_set()) or time.monotonic() >= deadline:
                return
            chunk = self._read()
            seen += chunk
            pending += chunk

    def _unintelligible(self, line: str, seen: bytearray) -> StationError:
        return StationError(
            f"{self.where}: unintelligible reply to '{line}' at {self.baudrate} baud (wrong baud rate?); "
            f"bytes seen: {shown(seen)}"
        )
