"""Records to rows and back: attempts with their measurements, and a unit's whole record."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from engine.context import MeasurementRecord
from engine.outcome import Outcome, Verdict
from engine.record import Attempt, Decision, Identity, ImageOnUnit, RecipeRef, UnitRecord

ATTEMPT_COLUMNS = (
    "serial, stage, step, attempt, outcome, started, ended, recipe, recipe_version, recipe_hash, "
    "lot, station, slot, operator, measurements, error, device_id"
)
_ROW = "(" + ", ".join("?" * 17) + ")"
INSERT_ATTEMPT = f"INSERT INTO attempts ({ATTEMPT_COLUMNS}) VALUES {_ROW}"
ROWS_PER_INSERT = 64
"""Attempts written by one INSERT statement: one statement of many rows costs far less than many of one."""
INSERT_ATTEMPTS = f"INSERT INTO attempts ({ATTEMPT_COLUMNS}) VALUES " + ", ".join([_ROW] * ROWS_PER_INSERT)
UNIT_COLUMNS = "serial, lot, status, reason, product, lifecycle"


def _compact_json() -> Callable[[Any], str]:
    """Compact JSON, with ``str()`` of anything JSON has no type for.

    ``JSONEncoder.encode`` makes its C encoder anew on every call, about half of what encoding one
    measurement costs: this makes it once, where the interpreter has one, and checks that it agrees.
    """
    plain = json.JSONEncoder(default=str, separators=(",", ":"), check_circular=False).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return plain
    try:
        chunks = make(None, str, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)

        def fast(value: Any) -> str:
            return "".join(chunks(value, 0))

        sample = [["v\u00b5", 1.25, None, True, {"image": b"x"}, float("nan")]]
        return fast if fast(sample) == plain(sample) else plain
    except TypeError:  # another interpreter's signature
        return plain


_encode = _compact_json()


def attempt_row(a: Attempt) -> tuple[Any, ...]:
    r = a.recipe
    measured = _encode([_measurement(m) for m in a.measurements]) if a.measurements else "[]"
    return (
        a.serial, a.stage, a.step, a.attempt, a.outcome.value, a.started, a.ended, r.recipe, r.version,
        r.content_hash, a.lot, a.station, a.slot, a.operator, measured, a.error, a.device_id,
    )  # fmt: skip


def _measurement(m: MeasurementRecord) -> list[Any]:
    out = [m.name, m.value, m.verdict.value, m.units, m.low, m.high]
    if m.tags:
        out.append(dict(m.tags))
    return out


def attempt_of(row: Sequence[Any]) -> Attempt:
    (serial, stage, step, number, outcome, started, ended, recipe, version, content_hash,
     lot, station, slot, operator, measured, error, device_id) = row  # fmt: skip
    return Attempt(
        serial,
        stage,
        step,
        number,
        Outcome(outcome),
        started,
        ended,
        RecipeRef(recipe, version, content_hash),
        lot,
        station,
        slot,
        operator,
        tuple(_measurement_of(m) for m in json.loads(measured)),
        error,
        device_id,
    )


def _measurement_of(m: list[Any]) -> MeasurementRecord:
    name, value, verdict, units, low, high = m[:6]
    return MeasurementRecord(name, value, Verdict(verdict), units, low, high, m[6] if len(m) > 6 else {})


def image_rows(attempts: Sequence[Attempt]) -> list[tuple[Any, ...]]:
    """The images the attempts that passed left on their units: their measurements tagged ``image``.

    A ``…sha256`` measurement so tagged is the hash the unit read back.
    """
    return [
        (a.serial, str(m.tags["image"]), str(m.value) if m.name.endswith("sha256") else None, a.stage, a.ended)
        for a in attempts
        if a.outcome is Outcome.PASS
        for m in a.measurements
        if "image" in m.tags
    ]


def unit_of(
    row: Sequence[Any] | None,
    serial: str,
    attempts: list[Attempt],
    identities: Sequence[Sequence[Any]] = (),
    images: Sequence[Sequence[Any]] = (),
    decisions: Sequence[Sequence[Any]] = (),
) -> UnitRecord:
    record = UnitRecord(serial, attempts=attempts)
    if row is not None:
        _, record.lot, record.status, record.reason, record.product, record.lifecycle = row
    if record.lot is None and attempts:
        record.lot = attempts[-1].lot
    record.identities = [Identity(kind, value, issued, bool(retired)) for kind, value, issued, retired in identities]
    record.images = [ImageOnUnit(image, sha, stage, written) for image, sha, stage, written in images]
    record.decisions = [Decision(at, by, action, subject, reason) for at, by, action, subject, reason in decisions]
    return record
