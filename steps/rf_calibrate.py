"""``rf.calibrate``: tune the radio on a band's channels and store the trim values.

On the Azure Sphere line the MT3620 radio is tuned per unit with the RF tools, and the resulting
trim values are written to the chip's e-fuses unless the stage only computes them.

Per channel: the bare radio (no trim) is measured, the power and frequency trims that bring it to
the band's target are computed, applied (and written when ``write_trim``), and the channel is
measured again. The stage's measurements are those of the trimmed radio: ``tx_power_dbm`` (a
cellular band: ``max_tx_power_dbm``), ``tx_evm_percent``, ``freq_error_ppm``, plus the trims
``trim_db`` and ``trim_ppm``, each tagged with band and channel. A radio too far off for the trim
to correct fails the stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.step import Duration, Effects, StepType, Typical, param
from steps.common.radio import (
    FREQ_TRIM_RANGE_PPM,
    FREQ_TRIM_STEP_PPM,
    RF_TEST_MODE,
    TRIM_RANGE_DB,
    TRIM_STEP_DB,
    BandName,
)
from steps.common.rfsession import on_channel, open_radio, record_tx


@dataclass(frozen=True)
class Params:
    # param() returns a dataclass field; ruff cannot see that BandName, a Literal, is immutable.
    band: BandName = param("Radio band to calibrate, for instance wifi-2g4.")  # noqa: RUF009
    channels: tuple[int, ...] = param("Channel numbers of the band to calibrate on.")
    write_trim: bool = param("Write the computed trim values to the unit.", default=True)


class RfCalibrate(StepType):
    name = "rf.calibrate"
    summary = "Calibrate the radio on the given channels and write the trim values."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"band": "wifi-2g4", "channels": (1, 6, 11)}
    typical = Typical(Duration.lognormal(90, 15), fail=0.03)

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(needs_capabilities=(RF_TEST_MODE,))

    def run(self, ctx: StepContext) -> None:
        p = ctx.params
        spec, device, tester = open_radio(ctx, p.band, p.channels)
        for channel in p.channels:
            with on_channel(ctx, device, p.band, channel) as tags:
                device.write_trim(p.band, channel, 0.0, 0.0, persist=False)  # measure the bare radio
                bare = tester.measure_tx(device, p.band, channel)
                power_trim = _step(spec.target_dbm - bare.power_dbm, TRIM_STEP_DB)
                freq_trim = _step(-bare.freq_error_ppm, FREQ_TRIM_STEP_PPM)
                if abs(power_trim) > TRIM_RANGE_DB:
                    raise StepFailed(
                        f"{p.band} channel {channel} transmits {bare.power_dbm:g} dBm: reaching the "
                        f"{spec.target_dbm:g} dBm target needs {power_trim:+g} dB, "
                        f"beyond the ±{TRIM_RANGE_DB:g} dB trim"
                    )
                if abs(freq_trim) > FREQ_TRIM_RANGE_PPM:
                    raise StepFailed(
                        f"{p.band} channel {channel} is {bare.freq_error_ppm:+g} ppm off frequency, "
                        f"beyond the ±{FREQ_TRIM_RANGE_PPM:g} ppm trim"
                    )
                device.write_trim(p.band, channel, power_trim, freq_trim, persist=p.write_trim)
                tx = tester.measure_tx(device, p.band, channel)
            ctx.measure("trim_db", power_trim, "dB", **tags)
            ctx.measure("trim_ppm", freq_trim, "ppm", **tags)
            record_tx(ctx, spec, tx, tags)


def _step(value: float, step: float) -> float:
    """``value`` rounded to the trim's resolution."""
    return round(round(value / step) * step, 6)
