"""The radio tester and the fixture meter, over SCPI through pyvisa (the pyvisa-py backend).

pyvisa is the ``instruments`` extra: it is imported when an instrument first opens its session, and
without it that first measurement is a StationError saying which extra to install.

The protocol is docs/hardware.md, "SCPI". Each instrument opens its VISA session on first use and
drops it after any I/O error, so the next measurement reconnects. Slots run in threads and share
the instruments: one lock per instrument covers each whole select-port, configure, measure
sequence, since the switch and the settings are the instrument's, not the caller's.

Every failure is a StationError naming the instrument and its resource: the link (refused, timed
out, dropped), a reply that does not parse, and a measurement the instrument could not make
(9.91E37, SCPI's NaN), which carries what the instrument queued for ``SYST:ERR?``.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from engine.diagnostics import did_you_mean
from engine.extras import missing
from engine.outcome import StationError
from steps.common import CallResult, TxResult
from steps.common.radio import band as band_of

if TYPE_CHECKING:
    import pyvisa
    from pyvisa.resources import MessageBasedResource

SCPI_NAN = 9.91e37
_ERROR_REPLY = re.compile(r'\s*([+-]?\d+)\s*,\s*"(.*)"\s*')
_MAX_ERRORS = 32
"""How many queued errors one failed measurement reports at most (a queue holds about that many)."""


class ScpiInstrument:
    """One SCPI instrument at a VISA resource: the session, its lock, and reading its replies."""

    title: ClassVar[str] = "instrument"

    def __init__(self, resource: str, timeout_s: float = 5.0) -> None:
        self.resource = resource
        self.timeout_s = timeout_s
        self.lock = threading.Lock()
        """Held around every sequence of commands that must not interleave with another caller's."""
        self._manager: pyvisa.ResourceManager | None = None
        self._session: MessageBasedResource | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.resource!r})"

    @property
    def _where(self) -> str:
        return f"the {self.title} at {self.resource}"

    def _open(self) -> MessageBasedResource:
        if self._session is None:
            problem = missing(self._where, "pyvisa", "pyvisa_py")
            if problem is not None:
                raise StationError(problem)
            import pyvisa
            from pyvisa.resources import MessageBasedResource

            try:
                if self._manager is None:
                    self._manager = pyvisa.ResourceManager("@py")
                session = self._manager.open_resource(
                    self.resource,
                    read_termination="\n",
                    write_termination="\n",
                    timeout=round(self.timeout_s * 1000),
                    open_timeout=round(self.timeout_s * 1000),
                    encoding="utf-8",
                )
            except Exception as exc:  # pyvisa-py reports a failed connect as a bare Exception
                raise StationError(f"{self._where} does not answer: {exc}") from exc
            if not isinstance(session, MessageBasedResource):
                session.close()
                raise StationError(f"{self._where} is not a message-based (SCPI) resource")
            self._session = session
        return self._session

    def _drop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(Exception):
                session.close()

    def _io(self, command: str, query: bool) -> str:
        """Send one command (and read its reply); the caller holds ``lock``."""
        session = self._open()
        import pyvisa  # loaded by _open
        from pyvisa import constants

        try:
            if query:
                return session.query(command)
            session.write(command)
            return ""
        except pyvisa.VisaIOError as exc:
            self._drop()
            if exc.error_code == constants.StatusCode.error_timeout:
                raise StationError(f"{self._where} did not answer '{command}' within {self.timeout_s:g} s") from exc
            raise StationError(f"{self._where} failed on '{command}': {exc}") from exc
        except UnicodeDecodeError as exc:
            self._drop()
            raise StationError(f"{self._where} answered '{command}' with bytes that are not text: {exc}") from exc
        except (OSError, pyvisa.Error, ValueError) as exc:  # ValueError: select() refusing a descriptor above 1023
            self._drop()
            raise StationError(f"{self._where} does not answer: {exc}") from exc

    def write(self, command: str) -> None:
        self._io(command, query=False)

    def query(self, command: str) -> str:
        return self._io(command, query=True).strip()

    def measure(self, command: str, count: int) -> list[float]:
        """The ``count`` comma-separated numbers a query answers; StationError when the instrument
        could not measure (NaN), with what it queued, or when the reply is not such numbers."""
        reply = self.query(command)
        try:
            values = [float(field) for field in reply.split(",")]
        except ValueError:
            values = []
        if any(math.isnan(v) or abs(v) >= SCPI_NAN * 0.999 for v in values):
            raise StationError(f"{self._where} could not measure '{command}': {self.errors()}")
        if len(values) != count:
            expected = "a number" if count == 1 else f"{count} comma-separated numbers"
            raise StationError(f"{self._where} answered '{command}' with {reply!r}, not {expected}")
        return values

    def settled(self) -> None:
        """Wait until the instrument has carried out the commands sent so far (``*OPC?``)."""
        reply = self.query("*OPC?")
        if reply != "1":
            raise StationError(f"{self._where} answered '*OPC?' with {reply!r}, not 1")

    def errors(self) -> str:
        """Empty the instrument's error queue; what it held, or 'no error was queued'."""
        found: list[str] = []
        for _ in range(_MAX_ERRORS):
            reply = self.query("SYST:ERR?")
            match = _ERROR_REPLY.fullmatch(reply)
            if match is None:
                found.append(f"(unreadable error reply {reply!r})")
                break
            code, message = int(match[1]), match[2].replace('""', '"')
            if code == 0:
                break
            found.append(f"{message} (error {code})")
        return "; ".join(found) or "no error was queued"

    def identify(self) -> str:
        """What the instrument says it is (``*IDN?``)."""
        with self.lock:
            return self.query("*IDN?")

    def close(self) -> None:
        """Close the session; the next command opens a new one."""
        with self.lock:
            self._drop()
            manager, self._manager = self._manager, None
            if manager is not None:
                with contextlib.suppress(Exception):
                    manager.close()


class ScpiRfTester(ScpiInstrument):
    """The radio tester (``steps.common.RfTester``); ``unit.rf_port`` is its switch port."""

    title = "radio tester"

    def _tune(self, unit: Any, band: str, channel: int) -> None:
        self.write(f"ROUT:PORT {int(unit.rf_port)}")
        self.write(f"CONF:BAND {band},{channel}")

    def measure_tx(self, unit: Any, band: str, channel: int) -> TxResult:
        with self.lock:
            self._tune(unit, band, channel)
            power, evm, freq = self.measure("MEAS:TX?", 3)
        return TxResult(power_dbm=power, evm_percent=evm, freq_error_ppm=freq)

    def measure_rssi(self, unit: Any, band: str, channel: int) -> tuple[float, float]:
        """Generate the band's reference level at the unit; returns (level, RSSI the unit reports).

        The unit reports over its own link (``unit.rssi()``) while the generator is on; the
        generator is switched off afterwards in every case.
        """
        level = band_of(band).rx_level_dbm
        if level is None:
            raise StationError(f"{band} is tested with a call, not with an RSSI check")
        with self.lock:
            self._tune(unit, band, channel)
            self.write(f"SOUR:POW {level:g}")
            self.write("OUTP ON")
            try:
                self.settled()
                reported = float(unit.rssi())
            except BaseException:
                with contextlib.suppress(StationError):  # the first error is the one to report
                    self._generator_off()
                raise
            self._generator_off()
        return level, reported

    def _generator_off(self) -> None:
        self.write("OUTP OFF")
        self.settled()

    def call(self, unit: Any, band: str, channel: int) -> CallResult:
        with self.lock:
            self._tune(unit, band, channel)
            (connected,) = self.measure("CALL:SETUP?", 1)
            if connected not in (0.0, 1.0):
                raise StationError(f"{self._where} answered 'CALL:SETUP?' with {connected:g}, not 1 or 0")
            if not connected:
                return CallResult(False, None)
            (bler,) = self.measure("MEAS:BLER?", 1)
        return CallResult(True, bler)


class ScpiMeter(ScpiInstrument):
    """The fixture meter (``steps.common.Meter``); ``unit.meter_port`` is its switch port."""

    title = "fixture meter"
    QUANTITIES: ClassVar[dict[str, tuple[str, float]]] = {"standby_current_ma": ("MEAS:CURR:DC?", 1000.0)}
    """Quantity -> the query that measures it and the factor to the quantity's units."""

    def read(self, unit: Any, quantity: str) -> float:
        if quantity not in self.QUANTITIES:
            raise StationError(
                f"the fixture meter cannot measure '{quantity}'{did_you_mean(quantity, self.QUANTITIES)}; "
                f"it measures {', '.join(self.QUANTITIES)}"
            )
        command, scale = self.QUANTITIES[quantity]
        with self.lock:
            self.write(f"ROUT:PORT {int(unit.meter_port)}")
            (value,) = self.measure(command, 1)
        return round(value * scale, 9)
