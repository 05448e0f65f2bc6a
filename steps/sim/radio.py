"""One simulated unit's radio: what it really transmits, before the tester adds its own noise.

Each unit's imperfections are drawn once from its serial, so they are the same in every stage and
every run: a power offset per band and channel (small for the pre-calibrated Wi-Fi/Bluetooth
modules, larger for a cellular power amplifier), one crystal offset in ppm, an EVM floor and an
RSSI error per band. Trim values correct power per channel and frequency per band; a channel
without its own power trim uses the nearest calibrated channel's, as the radio's table would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from steps.common.radio import Band


def _clipped(rng: random.Random, sigma: float, limit: float) -> float:
    return max(-limit, min(limit, rng.gauss(0.0, sigma)))


@dataclass(frozen=True)
class Emission:
    power_dbm: float
    freq_error_ppm: float
    evm_percent: float


class UnitRadio:
    """Not thread-safe on its own: the owning SimDevice holds its lock around every call."""

    def __init__(self, serial: str) -> None:
        self.serial = serial
        self.crystal_ppm = _clipped(random.Random(f"{serial}/crystal"), 1.5, 4.0)
        self.trims: dict[tuple[str, int], float] = {}
        self.freq_trims: dict[str, float] = {}
        self.volatile: dict[tuple[str, int], tuple[float, float]] = {}
        """Trim applied in RF test mode only, over the stored one, until the test mode ends."""

    def _offset_db(self, band: Band, channel: int) -> float:
        rng = random.Random(f"{self.serial}/power/{band.name}/{channel}")
        return _clipped(rng, 0.8, 2.0) if band.cellular else _clipped(rng, 0.25, 0.6)

    def _power_trim(self, band: Band, channel: int) -> float:
        calibrated = [ch for (b, ch) in self.trims if b == band.name]
        if not calibrated:
            return 0.0
        nearest = min(calibrated, key=lambda ch: (abs(ch - channel), ch))
        return self.trims[band.name, nearest]

    def emission(self, band: Band, channel: int) -> Emission:
        power_trim, freq_trim = self.volatile.get(
            (band.name, channel), (self._power_trim(band, channel), self.freq_trims.get(band.name, 0.0))
        )
        floor = random.Random(f"{self.serial}/evm/{band.name}").uniform(1.5, 3.0)
        return Emission(
            power_dbm=band.target_dbm + self._offset_db(band, channel) + power_trim,
            freq_error_ppm=self.crystal_ppm + freq_trim,
            evm_percent=floor + (1.0 if band.cellular else 0.0),
        )

    def rssi_error_db(self, band: Band) -> float:
        return _clipped(random.Random(f"{self.serial}/rssi/{band.name}"), 0.6, 1.5)

    def bler_percent(self, band: Band) -> float:
        return random.Random(f"{self.serial}/bler/{band.name}").uniform(0.0, 1.0)

    def set_trim(self, band: str, channel: int, power_db: float, freq_ppm: float, persist: bool) -> None:
        self.volatile[band, channel] = (power_db, freq_ppm)
        if persist:
            self.trims[band, channel] = power_db
            self.freq_trims[band] = freq_ppm

    def end_test_mode(self) -> None:
        self.volatile.clear()
