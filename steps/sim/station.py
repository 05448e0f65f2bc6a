"""The simulated station instruments: radio tester, fixture meter, label printer, image store.

The tester and the meter measure a simulated unit (a SimDevice): they read what the unit really
emits or draws and add their own seeded noise, one stream per serial and stage, so runs repeat.
Each instrument can be taken offline by the sim config, and then raises StationError.
"""

from __future__ import annotations

import random
import threading
from typing import Any, ClassVar

from engine.diagnostics import did_you_mean
from engine.flow import Image
from engine.outcome import StationError
from steps.common import CallResult, TxResult
from steps.common.radio import band as band_of
from steps.sim.device import SimDevice
from steps.sim.model import image_digest


class _Instrument:
    title = "instrument"

    def __init__(self) -> None:
        self.offline = False

    def _ready(self) -> None:
        if self.offline:
            raise StationError(f"the {self.title} is offline")

    def _unit(self, unit: Any) -> SimDevice:
        self._ready()
        if not isinstance(unit, SimDevice):
            raise StationError(f"the simulated {self.title} can only measure simulated units")
        return unit


class SimRfTester(_Instrument):
    title = "radio tester"

    def _tuned(self, unit: Any, band: str, channel: int) -> tuple[SimDevice, Any]:
        sim = self._unit(unit)
        on_band, on_channel, emission = sim.emission()
        if (on_band, on_channel) != (band, channel):
            raise StationError(f"the tester is set to {band} channel {channel}, the unit is on {on_band} {on_channel}")
        return sim, emission

    def measure_tx(self, unit: Any, band: str, channel: int) -> TxResult:
        sim, emission = self._tuned(unit, band, channel)
        spec, rng = band_of(band), sim.rng()
        power = round(emission.power_dbm + rng.gauss(0.0, 0.05), 2)
        freq = round(emission.freq_error_ppm + rng.gauss(0.0, 0.003 if spec.cellular else 0.05), 3)
        evm = round(max(0.1, emission.evm_percent + rng.gauss(0.0, 0.1)), 2)
        return TxResult(
            power_dbm=sim.reading(spec.tx_power_name, power),
            evm_percent=sim.reading("tx_evm_percent", evm),
            freq_error_ppm=sim.reading("freq_error_ppm", freq),
        )

    def measure_rssi(self, unit: Any, band: str, channel: int) -> tuple[float, float]:
        sim, _ = self._tuned(unit, band, channel)
        spec = band_of(band)
        if spec.rx_level_dbm is None:
            raise StationError(f"{band} is tested with a call, not with an RSSI check")
        reported = float(round(spec.rx_level_dbm + sim.radio.rssi_error_db(spec) + sim.rng().gauss(0.0, 0.3)))
        return spec.rx_level_dbm, sim.reading("rx_rssi_dbm", reported)

    def call(self, unit: Any, band: str, channel: int) -> CallResult:
        sim, _ = self._tuned(unit, band, channel)
        spec = band_of(band)
        if not spec.cellular:
            raise StationError(f"the call box cannot set up a call on {band}")
        connected = sim.reading("call_connected", True)
        if connected is not True:
            return CallResult(False, None)
        bler = round(max(0.0, sim.radio.bler_percent(spec) + sim.rng().gauss(0.0, 0.05)), 2)
        return CallResult(True, sim.reading("rx_bler_percent", bler))


class SimMeter(_Instrument):
    """The fixture's meters; each quantity is a range a healthy unit reads within."""

    title = "fixture meter"
    QUANTITIES: ClassVar[dict[str, tuple[float, float]]] = {"standby_current_ma": (3.0, 5.5)}

    def read(self, unit: Any, quantity: str) -> float:
        sim = self._unit(unit)
        if quantity not in self.QUANTITIES:
            raise StationError(
                f"the fixture meter cannot measure '{quantity}'{did_you_mean(quantity, self.QUANTITIES)}; "
                f"it measures {', '.join(self.QUANTITIES)}"
            )
        low, high = self.QUANTITIES[quantity]
        true = random.Random(f"{sim.serial}/meter/{quantity}").uniform(low, high)
        return float(sim.reading(quantity, round(true + sim.rng().gauss(0.0, 0.05), 2)))


class SimLabelPrinter(_Instrument):
    """Keeps every label it is sent, per unit serial."""

    title = "label printer"

    def __init__(self) -> None:
        super().__init__()
        self._labels: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def print_label(self, serial: str, zpl: str) -> None:
        self._ready()
        text = zpl.strip()
        if not (text.startswith("^XA") and text.endswith("^XZ")):
            raise StationError("the label printer was sent something that is not a ZPL label (^XA ... ^XZ)")
        with self._lock:
            self._labels.setdefault(serial, []).append(zpl)

    def labels(self, serial: str) -> list[str]:
        with self._lock:
            return list(self._labels.get(serial, ()))


class SimImageStore(_Instrument):
    title = "image store"

    def digest(self, image: Image) -> str:
        self._ready()
        return image_digest(image)
