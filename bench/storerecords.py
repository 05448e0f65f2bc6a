"""The records bench/store.py writes: a phone line's stage attempts, as the runner makes them."""

from __future__ import annotations

import hashlib

from engine.context import MeasurementRecord
from engine.outcome import Outcome, Verdict
from engine.record import Attempt, RecipeRef, UnitRecord

RECIPE = RecipeRef("phone-wim", 7, hashlib.sha256(b"bench/store.py recipe").hexdigest())
PRODUCT = "phone"
# (step type, measurement, units, low, high, typical value): the kinds of stage a phone line runs.
KINDS: tuple[tuple[str, str, str | None, float | None, float | None, float], ...] = (
    ("device.connect", "enumeration_s", "s", 0.0, 10.0, 1.84),
    ("flash.gang", "image_sha256_ok", None, 1.0, 1.0, 1.0),
    ("boot.wait", "boot_s", "s", 0.0, 90.0, 31.2),
    ("device.record_id", "chip_id_len", None, 16.0, 16.0, 16.0),
    ("uart.functional", "uart_loopback_errors", None, 0.0, 0.0, 0.0),
    ("rf.calibrate", "tx_power_dbm", "dBm", 21.0, 24.0, 22.71),
    ("rf.measure", "evm_db", "dB", None, -25.0, -31.4),
    ("rf.verify_config", "band_count", None, 5.0, 5.0, 5.0),
    ("device.calibrate_sensors", "accel_offset_mg", "mg", -50.0, 50.0, 7.3),
    ("provision.identity", "imei_luhn_ok", None, 1.0, 1.0, 1.0),
)


def unit_attempts(serial: str, *, stages: int, lot: str, station: str, slot: int, t0: float) -> list[Attempt]:
    """A unit's ``stages`` passing attempts, one measurement each, one after the other from ``t0``."""
    out: list[Attempt] = []
    at = t0
    for i in range(stages):
        step, name, units, low, high, value = KINDS[i % len(KINDS)]
        took = 0.5 + (i % 7) * 0.37
        measured = MeasurementRecord(name, value + (i % 3) * 0.01, Verdict.PASS, units, low, high)
        stage = f"s{i:02d}_{step.split('.')[1]}"
        device = f"USB-{serial[-6:]}-{slot}"
        out.append(
            Attempt(serial, stage, step, 1, Outcome.PASS, at, at + took, RECIPE, lot, station, slot, "operator-ana",
                    (measured,), None, device)
        )  # fmt: skip
        at += took + 0.05
    return out


def admit(record: UnitRecord, lot_hold: str | None) -> str | None:
    """The route decision for a fresh unit: it may run unless its lot is on hold."""
    return None if lot_hold is None else f"lot on hold: {lot_hold}"


def many_attempts(records: int, stages: int, tag: str) -> list[Attempt]:
    """``records`` attempts of units of ``stages`` stages each, serials starting with ``tag``."""
    attempts: list[Attempt] = []
    for u in range(-(-records // stages)):
        serial = f"{tag}U{u:06d}"
        attempts += unit_attempts(serial, stages=stages, lot="LOT-SQ", station="st-01", slot=u % 4, t0=1.7e9 + u * 60)
    return attempts[:records]
