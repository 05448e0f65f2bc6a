"""What the RF step types share: checking the channels, putting the radio on one, recording TX."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from engine.context import StepContext
from steps.common import RfTester, TxResult, UnitDevice, open_device, resource, stop_if_cancelled
from steps.common.radio import Band, band


def open_radio(ctx: StepContext, band_name: str, channels: Sequence[int]) -> tuple[Band, UnitDevice, RfTester]:
    """The band (every channel checked against it first), the unit's device and the station's tester."""
    spec = band(band_name)
    for channel in channels:
        band(band_name, channel)
    return spec, open_device(ctx), resource(ctx, "rf_tester")


@contextmanager
def on_channel(ctx: StepContext, device: UnitDevice, band_name: str, channel: int) -> Iterator[dict[str, Any]]:
    """The radio in test mode on one channel for the block; yields the measurement tags."""
    stop_if_cancelled(ctx)
    device.rf_start(band_name, channel)
    try:
        yield {"band": band_name, "channel": channel}
    finally:
        device.rf_stop()


def record_tx(ctx: StepContext, spec: Band, tx: TxResult, tags: Mapping[str, Any]) -> None:
    """Transmit power (named as the band names it), EVM and frequency error of one channel."""
    ctx.measure(spec.tx_power_name, tx.power_dbm, "dBm", **tags)
    ctx.measure("tx_evm_percent", tx.evm_percent, "%", **tags)
    ctx.measure("freq_error_ppm", tx.freq_error_ppm, "ppm", **tags)
