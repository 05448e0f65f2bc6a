"""Simulated SCPI instruments on loopback: the radio tester and the fixture meter, as TCP servers.

They speak docs/hardware.md ("SCPI"), a newline-terminated command per line, so the host adapters
in ``steps.hardware.instruments`` run against them through pyvisa unchanged. Each switch port is
cabled to what ``unit_at(port)`` returns: the simulated unit there, or None for an empty port.

The switch, the band, the generator and the error queue belong to the server, not to a connection,
and every command runs under the server's lock: there is one switch in the rack, and two sessions
that both move it see each other's settings, as they would on the real instrument. The host side
serialises whole select-configure-measure sequences with its own lock.

A measurement the instrument cannot make answers 9.91E37 (SCPI's NaN) and queues
``<code>,"<description>;<detail>"`` for ``SYST:ERR?``.
"""

from __future__ import annotations

import random
import socket
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from engine.outcome import StationError, StepFailed
from steps.common.radio import band as band_of
from steps.sim.device import SimDevice
from steps.sim.loopback import LoopbackServer

SCPI_NAN = "9.91E37"
_QUEUE_SIZE = 32

UnitAt = Callable[[int], SimDevice | None]
Handler = Callable[[str], str | None]


class ScpiError(Exception):
    """A command the instrument cannot carry out: queued for SYST:ERR?, queries answer NaN."""

    def __init__(self, code: int, description: str, detail: str = "") -> None:
        super().__init__(f"{description};{detail}" if detail else description)
        self.code = code


def _parse(text: str, kind: Callable[[str], Any], what: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise ScpiError(-104, "Data type error", f"'{text}' is not {what}") from None


def _reply(value: Any) -> str:
    """A reading as the instrument prints it; a value that is not a number goes out as it is."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(float(value))
    return str(value)


class SimScpiServer(LoopbackServer):
    """What every simulated SCPI instrument does: the switch, the error queue, IEEE 488.2 basics.

    ``failure_rate`` is the fraction of measurement queries (seeded) that fail as stale data.
    """

    identity = "floorflow,SIM-SCPI,0,1.0"
    measurements: frozenset[str] = frozenset()
    """Queries that take a measurement: the ones ``failure_rate`` can spoil."""
    empty_port = "nothing is connected to port {port}"

    def __init__(self, unit_at: UnitAt, failure_rate: float = 0.0, seed: int = 0) -> None:
        self.unit_at = unit_at
        self.failure_rate = failure_rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._errors: deque[tuple[int, str]] = deque()
        self.selected_port: int | None = None
        self._handlers: Mapping[str, Handler] = {
            "*IDN?": lambda _: self.identity,
            "*RST": self._reset,
            "*CLS": lambda _: self._errors.clear(),
            "*OPC?": lambda _: "1",  # commands run in order, each one done before the next is read
            "SYST:ERR?": self._next_error,
            "ROUT:PORT": self._route,
            **self.commands(),
        }
        super().__init__(type(self).__name__)

    @property
    def resource(self) -> str:
        return f"TCPIP0::127.0.0.1::{self.port}::SOCKET"

    def commands(self) -> Mapping[str, Handler]:
        """The instrument's own commands by upper-case header; a query's header ends in '?'."""
        return {}

    def handle(self, connection: socket.socket) -> None:
        with connection.makefile("rb") as lines:
            for raw in lines:
                answer = self.execute(raw.decode("utf-8", "replace").strip())
                if answer is not None:
                    connection.sendall(f"{answer}\n".encode())

    def execute(self, line: str) -> str | None:
        """Run one command line; returns the reply line of a query (None: no reply)."""
        if not line:
            return None
        header, _, argument = line.partition(" ")
        header = header.upper()
        query = header.endswith("?")
        with self._lock:
            handler = self._handlers.get(header)
            try:
                if handler is None:
                    raise ScpiError(-113, "Undefined header", header)
                if header in self.measurements and self._random.random() < self.failure_rate:
                    raise ScpiError(-230, "Data corrupt or stale")
                return handler(argument.strip())
            except ScpiError as exc:
                self._queue(exc.code, str(exc))
            except (StationError, StepFailed) as exc:  # what the simulated unit said
                self._queue(-200, f"Execution error;{exc}")
            except Exception as exc:  # the simulator itself: still an error to read, never a dead session
                self._queue(-300, f"Device-specific error;{type(exc).__name__}: {exc}")
            # An unknown query gets no reply, as on a real instrument: the host times out.
            return SCPI_NAN if query and handler is not None else None

    def _queue(self, code: int, message: str) -> None:
        if len(self._errors) < _QUEUE_SIZE - 1:
            self._errors.append((code, message))
        elif len(self._errors) == _QUEUE_SIZE - 1:
            self._errors.append((-350, "Queue overflow"))

    def _next_error(self, _: str) -> str:
        code, message = self._errors.popleft() if self._errors else (0, "No error")
        return f'{code},"{message.replace(chr(34), chr(34) * 2)}"'

    def _reset(self, _: str) -> None:
        self.selected_port = None
        self.reset()

    def reset(self) -> None:
        """*RST: the instrument's own settings back to their defaults."""

    def _route(self, argument: str) -> None:
        port: int = _parse(argument, int, "a port number")
        if port < 1:
            raise ScpiError(-224, "Illegal parameter value", f"there is no port {port}")
        self.selected_port = port
        self.switched()

    def switched(self) -> None:
        """Called after ROUT:PORT moved the switch."""

    def selected_unit(self) -> SimDevice:
        """The unit cabled to the selected port; ScpiError when no port is selected or it is empty."""
        if self.selected_port is None:
            raise ScpiError(-221, "Settings conflict", "no port is selected (ROUT:PORT)")
        unit = self.unit_at(self.selected_port)
        if unit is None:
            raise ScpiError(-200, "Execution error", self.empty_port.format(port=self.selected_port))
        return unit


class SimRfTesterServer(SimScpiServer):
    """The radio tester: TX analysis, a generator for the RSSI check, a call box for cellular bands.

    ``noise`` scales the tester's own measurement noise (0: the unit's emission exactly, rounded).
    """

    identity = "floorflow,SIM-RFT,0,1.0"
    measurements = frozenset({"MEAS:TX?", "CALL:SETUP?", "MEAS:BLER?"})
    empty_port = "no signal on port {port}"
    default_level_dbm = -100.0

    def __init__(self, unit_at: UnitAt, noise: float = 1.0, failure_rate: float = 0.0, seed: int = 0) -> None:
        self.noise = noise
        self.band: tuple[str, int] | None = None
        self.level_dbm = self.default_level_dbm
        self.output_on = False
        self._fed: SimDevice | None = None
        """The unit whose receiver the generator feeds now."""
        self._call_up = False
        """A call is up on the selected port and band (moving either drops it)."""
        super().__init__(unit_at, failure_rate, seed)

    def commands(self) -> Mapping[str, Handler]:
        return {
            "CONF:BAND": self._configure,
            "MEAS:TX?": self._measure_tx,
            "SOUR:POW": self._source_power,
            "OUTP": self._output,
            "CALL:SETUP?": self._call_setup,
            "MEAS:BLER?": self._measure_bler,
        }

    def reset(self) -> None:
        self.band, self.level_dbm, self.output_on, self._call_up = None, self.default_level_dbm, False, False
        self._feed()

    def switched(self) -> None:
        self._call_up = False
        self._feed()

    def _feed(self) -> None:
        """Put the generator's level on the selected port's unit, and take it off the one before."""
        port = self.selected_port
        target = self.unit_at(port) if self.output_on and port is not None else None
        if self._fed is not None and self._fed is not target:
            self._fed.rx_input_dbm = None
        if target is not None:
            target.rx_input_dbm = self.level_dbm
        self._fed = target

    def _configure(self, argument: str) -> None:
        name, comma, channel = argument.partition(",")
        if not comma:
            raise ScpiError(-109, "Missing parameter", "CONF:BAND <band>,<channel>")
        number: int = _parse(channel, int, "a channel number")
        try:
            band_of(name.strip(), number)
        except StationError as exc:
            raise ScpiError(-224, "Illegal parameter value", str(exc)) from None
        self.band, self._call_up = (name.strip(), number), False

    def _tuned(self) -> tuple[SimDevice, Any]:
        """The selected unit and what it emits, which must be on the configured band and channel."""
        unit = self.selected_unit()
        if self.band is None:
            raise ScpiError(-221, "Settings conflict", "no band is configured (CONF:BAND)")
        on_band, on_channel, emission = unit.emission()
        band, channel = self.band
        if (on_band, on_channel) != (band, channel):
            detail = f"the tester is set to {band} channel {channel}, the unit is on {on_band} {on_channel}"
            raise ScpiError(-221, "Settings conflict", detail)
        return unit, emission

    def _measure_tx(self, _: str) -> str:
        unit, emission = self._tuned()
        assert self.band is not None
        spec, rng, noise = band_of(self.band[0]), unit.rng(), self.noise
        power = round(emission.power_dbm + rng.gauss(0.0, 0.05 * noise), 2)
        freq = round(emission.freq_error_ppm + rng.gauss(0.0, (0.003 if spec.cellular else 0.05) * noise), 3)
        evm = round(max(0.1, emission.evm_percent + rng.gauss(0.0, 0.1 * noise)), 2)
        readings = (
            unit.reading(spec.tx_power_name, power),
            unit.reading("tx_evm_percent", evm),
            unit.reading("freq_error_ppm", freq),
        )
        return ",".join(_reply(value) for value in readings)

    def _source_power(self, argument: str) -> None:
        self.level_dbm = _parse(argument, float, "a number")
        self._feed()

    def _output(self, argument: str) -> None:
        state = argument.upper()
        if state not in ("ON", "OFF", "1", "0"):
            raise ScpiError(-224, "Illegal parameter value", f"OUTP takes ON or OFF, not '{argument}'")
        self.output_on = state in ("ON", "1")
        self._feed()

    def _call_setup(self, _: str) -> str:
        unit, _emission = self._tuned()
        assert self.band is not None
        if not band_of(self.band[0]).cellular:
            raise ScpiError(-221, "Settings conflict", f"the call box cannot set up a call on {self.band[0]}")
        self._call_up = unit.reading("call_connected", True) is True
        return "1" if self._call_up else "0"

    def _measure_bler(self, _: str) -> str:
        unit, _emission = self._tuned()
        if not self._call_up or self.band is None:
            raise ScpiError(-221, "Settings conflict", "no call is connected (CALL:SETUP?)")
        spec = band_of(self.band[0])
        bler = round(max(0.0, unit.radio.bler_percent(spec) + unit.rng().gauss(0.0, 0.05 * self.noise)), 2)
        return _reply(unit.reading("rx_bler_percent", bler))


class SimMeterServer(SimScpiServer):
    """The fixture meter: the current each port's unit draws, in amperes (the sim's own model in mA)."""

    identity = "floorflow,SIM-METER,0,1.0"
    measurements = frozenset({"MEAS:CURR:DC?"})

    def __init__(self, unit_at: UnitAt, seed: int = 0, failure_rate: float = 0.0) -> None:
        super().__init__(unit_at, failure_rate, seed)

    def commands(self) -> Mapping[str, Handler]:
        return {"MEAS:CURR:DC?": self._measure_current}

    def _measure_current(self, _: str) -> str:
        unit = self.selected_unit()
        drawn = unit.standby_current_ma() + unit.rng().gauss(0.0, 0.05)
        return _reply(float(unit.reading("standby_current_ma", round(drawn, 2))) / 1000.0)
