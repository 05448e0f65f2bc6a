"""Radio bands as the RF step types and the simulated tester know them.

A band is ``wifi-2g4``, ``wifi-5g``, ``bluetooth`` or a cellular band ``lte-b<N>``, N from 1 to 99 (channels are
EARFCNs). Cellular bands are tested the way a call box does it: a call is set up, the unit
transmits at its maximum power (hence ``max_tx_power_dbm``) and the downlink block error rate is
measured; Wi-Fi and Bluetooth report transmit power and the RSSI of a generated reference level.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from engine.diagnostics import did_you_mean
from engine.outcome import StationError

RF_TEST_MODE = "rf-test-mode"
"""The unit's capability the RF step types use: Azure Sphere locks it from Module1Complete on."""
_CELLULAR = re.compile(r"lte-b[1-9]\d?")
LTE_BANDS = tuple(f"lte-b{number}" for number in range(1, 100))
"""The cellular bands a call box is driven on: E-UTRA operating bands 1 to 99."""
BAND_NAMES = ("wifi-2g4", "wifi-5g", "bluetooth", *LTE_BANDS)
"""Every band the RF step types take: their ``band`` parameter is one of these (the schema's enum)."""

if TYPE_CHECKING:
    BandName = str
else:
    BandName = Literal[BAND_NAMES]
    """A band parameter: the recipe checker refuses a name not in BAND_NAMES, with a did-you-mean."""


@dataclass(frozen=True)
class Band:
    name: str
    channels: range
    target_dbm: float
    """Transmit power the calibration aims at (cellular: the power class maximum)."""
    rx_level_dbm: float | None
    """Reference level the tester generates for the RSSI check; None for cellular bands."""

    @property
    def cellular(self) -> bool:
        return self.rx_level_dbm is None

    @property
    def tx_power_name(self) -> str:
        return "max_tx_power_dbm" if self.cellular else "tx_power_dbm"


_BANDS = {
    "wifi-2g4": Band("wifi-2g4", range(1, 15), 16.0, -60.0),
    "wifi-5g": Band("wifi-5g", range(36, 178), 15.0, -60.0),
    "bluetooth": Band("bluetooth", range(0, 79), 4.0, -70.0),
}
LTE_POWER_CLASS_3_DBM = 23.0
TRIM_STEP_DB = 0.25
"""Resolution of a power trim value."""
TRIM_RANGE_DB = 3.0
"""Largest power correction a trim can make, either way."""
FREQ_TRIM_STEP_PPM = 0.01
FREQ_TRIM_RANGE_PPM = 10.0


def band(name: str, channel: int | None = None) -> Band:
    """The band called ``name``; StationError when the tester has no profile for it or the channel."""
    found = _BANDS.get(name)
    if found is None and _CELLULAR.fullmatch(name) is not None:
        found = Band(name, range(0, 65536), LTE_POWER_CLASS_3_DBM, None)
    if found is None:
        known = [*_BANDS, "lte-b1..lte-b99"]
        raise StationError(
            f"the radio tester has no profile for band '{name}'{did_you_mean(name, _BANDS)}; "
            f"it knows {', '.join(known)}"
        )
    if channel is not None and channel not in found.channels:
        span = f"{found.channels.start}..{found.channels.stop - 1}"
        raise StationError(f"channel {channel} is not a channel of band {name} ({span})")
    return found


def units_of(name: str) -> str | None:
    """Units of a measurement, from its name's suffix."""
    for suffix, units in (("_dbm", "dBm"), ("_percent", "%"), ("_ppm", "ppm"), ("_db", "dB")):
        if name.endswith(suffix):
            return units
    return None
