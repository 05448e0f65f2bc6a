"""``rf.measure``: measure the radio's transmit performance on a band's channels.

On the Azure Sphere line the MT3620 radio is driven through the RF tools (in RF test mode, before
Module1Complete) while the tester measures each channel; results feed the stage's measurements.

Per channel, tagged with band and channel: ``tx_power_dbm``, ``tx_evm_percent``,
``freq_error_ppm`` and ``rx_rssi_dbm`` (the RSSI the unit reports for the tester's reference
level). A cellular band is tested through a call: ``call_connected``, then ``max_tx_power_dbm``
(the unit transmits at full power), ``tx_evm_percent``, ``freq_error_ppm`` and ``rx_bler_percent``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.step import Duration, Effects, StepType, Typical, param
from steps.common.radio import RF_TEST_MODE, BandName
from steps.common.rfsession import on_channel, open_radio, record_tx


@dataclass(frozen=True)
class Params:
    # param() returns a dataclass field; ruff cannot see that BandName, a Literal, is immutable.
    band: BandName = param("Radio band to measure, for instance wifi-2g4.")  # noqa: RUF009
    channels: tuple[int, ...] = param("Channel numbers of the band to measure.")


class RfMeasure(StepType):
    name = "rf.measure"
    summary = "Measure the radio's RF performance on the given channels of a band."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"band": "wifi-2g4", "channels": (1, 6, 11)}
    typical = Typical(Duration.triangular(15, 25, 45), fail=0.02)

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(needs_capabilities=(RF_TEST_MODE,))

    def run(self, ctx: StepContext) -> None:
        p = ctx.params
        spec, device, tester = open_radio(ctx, p.band, p.channels)
        for channel in p.channels:
            with on_channel(ctx, device, p.band, channel) as tags:
                if spec.cellular:
                    call = tester.call(device, p.band, channel)
                    ctx.measure("call_connected", call.connected, **tags)
                    if not call.connected:
                        raise StepFailed(f"no call could be set up with the unit on {p.band} channel {channel}")
                record_tx(ctx, spec, tester.measure_tx(device, p.band, channel), tags)
                if spec.cellular:
                    ctx.measure("rx_bler_percent", call.bler_percent, "%", **tags)
                else:
                    level, rssi = tester.measure_rssi(device, p.band, channel)
                    ctx.measure("rx_rssi_dbm", rssi, "dBm", level_dbm=level, **tags)
