"""Records to rows and back: attempts with their measurements and visits, and a unit's whole record.

An attempt's row holds what changes from one attempt to the next; what stays the same while a unit
is at a station (serial, recipe, lot, station, slot, operator, device) is its visit's row, written
once. The ``attempt_records`` view joins them back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

from engine.context import MeasurementRecord
from engine.outcome import Outcome, Verdict
from engine.record import Attempt, Decision, Identity, ImageOnUnit, RecipeRef, UnitRecord
from engine.store.worker import Tx

ATTEMPT_COLUMNS = (
    "serial, stage, step, attempt, outcome, started, ended, recipe, recipe_version, recipe_hash, "
    "lot, station, slot, operator, measurements, error, device_id"
)
"""The columns of ``attempt_records``, in the order of ``Attempt``'s fields."""
SELECT_ATTEMPTS = f"SELECT {ATTEMPT_COLUMNS} FROM attempt_records WHERE serial = ? ORDER BY id"
VISIT_COLUMNS = "serial, recipe, recipe_version, recipe_hash, lot, station, slot, operator, device_id"
INSERT_VISIT = f"INSERT INTO visits ({VISIT_COLUMNS}) VALUES ({', '.join('?' * 9)}) RETURNING id"
_COLUMNS = "visit, stage, step, attempt, outcome, started, ended, measurements, error"
_ROW = "(" + ", ".join("?" * 9) + ")"
INSERT_ATTEMPT = f"INSERT INTO attempts ({_COLUMNS}) VALUES {_ROW}"
ROWS_PER_INSERT = 64
"""Attempts written by one INSERT statement: one statement of many rows costs far less than many of one."""
INSERT_ATTEMPTS = f"INSERT INTO attempts ({_COLUMNS}) VALUES " + ", ".join([_ROW] * ROWS_PER_INSERT)
PIECES_KEPT = 4096
"""Measurement texts remembered (by name, verdict, units and limits) before they are all forgotten."""
VISITS_KEPT = 4096
"""Visit ids the writer remembers; past that it forgets them all (a forgotten visit is written again)."""
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


class AttemptWriter:
    """Writes attempts, each under its visit: a visit's row is written once and its id remembered.

    Used only in the store's transactions (one thread). A visit written in a transaction that then
    rolls back is forgotten with it.
    """

    def __init__(self) -> None:
        self._visits: dict[tuple[Any, ...], int] = {}

    def __call__(self, tx: Tx, attempts: Sequence[Attempt]) -> None:
        visits = self._visits
        rows = []
        for a in attempts:
            r = a.recipe
            key = (a.serial, r.recipe, r.version, r.content_hash, a.lot, a.station, a.slot, a.operator, a.device_id)
            visit = visits.get(key)
            if visit is None:
                visit = self._visit(tx, key)
            measured = measurements_json(a.measurements) if a.measurements else "[]"
            rows.append((visit, a.stage, a.step, a.attempt, a.outcome.value, a.started, a.ended, measured, a.error))
        whole = len(rows) - len(rows) % ROWS_PER_INSERT
        for start in range(0, whole, ROWS_PER_INSERT):
            tx.run(INSERT_ATTEMPTS, list(chain.from_iterable(rows[start : start + ROWS_PER_INSERT])))
        tx.many(INSERT_ATTEMPT, rows[whole:])
        images = image_rows(attempts)
        if images:
            tx.many("INSERT INTO images (serial, image, sha256, stage, written) VALUES (?, ?, ?, ?, ?)", images)

    def _visit(self, tx: Tx, key: tuple[Any, ...]) -> int:
        if len(self._visits) >= VISITS_KEPT:
            self._visits.clear()
        found = tx.row(INSERT_VISIT, key)
        assert found is not None
        self._visits[key] = visit = int(found[0])
        tx.undo.append(lambda: self._forget(key))
        return visit

    def _forget(self, key: tuple[Any, ...]) -> None:
        self._visits.pop(key, None)


_PIECES: dict[tuple[Any, ...], tuple[str, str]] = {}
"""The JSON around a measured number, by its name, verdict, units and limits: it repeats with every unit."""


def measurements_json(measurements: Sequence[MeasurementRecord]) -> str:
    """The measurements column: ``[[name, value, verdict, units, low, high(, tags)], …]`` in compact JSON.

    A finite number without tags is written into the text its stage's earlier values left around it:
    the same text as encoding it whole, for half the work.
    """
    parts = []
    for m in measurements:
        value = m.value
        kind = type(value)
        if m.tags or not (kind is int or (kind is float and math.isfinite(value))):
            parts.append(_encode(_measurement(m)))
            continue
        key = (m.name, m.verdict, m.units, m.low, m.high, type(m.low), type(m.high))  # 0 == 0.0, "0" != "0.0"
        pieces = _PIECES.get(key)
        if pieces is None:
            if len(_PIECES) >= PIECES_KEPT:
                _PIECES.clear()
            pieces = _PIECES[key] = (
                _encode([m.name])[:-1] + ",",
                "," + _encode([m.verdict.value, m.units, m.low, m.high])[1:],
            )
        parts.append(pieces[0] + repr(value) + pieces[1])
    return "[" + ",".join(parts) + "]"


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
