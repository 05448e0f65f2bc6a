"""Records to rows and back: attempts with their measurements and visits, and a unit's whole record.

An attempt's row holds what changes from one attempt to the next; what stays the same while a unit
is at a station (serial, recipe, lot, station, slot, operator, device) is its visit's row, written
once. The ``attempt_records`` view joins them back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache
from itertools import chain
from typing import Any

import orjson

from engine.context import MeasurementRecord
from engine.messages import Source, new_id
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
Told = Callable[[Tx, Source, Sequence[int], str], None]
"""What writes the line events of attempts just written, given their ids and the prefix of their UniqueIDs
(``engine.store.outbox.put_attempts``)."""
VISITS_KEPT = 4096
"""Visit ids the writer remembers; past that it forgets them all (a forgotten visit is written again)."""
UNIT_COLUMNS = "serial, lot, status, reason, product, lifecycle"


class AttemptWriter:
    """Writes attempts, each under its visit: a visit's row is written once and its id remembered.

    Used only in the store's transactions (one thread). A visit written in a transaction that then
    rolls back is forgotten with it. Once the store tells the line (``source`` set), the attempts'
    ids are read back as they are written and ``told`` writes their events in the same transaction.
    """

    def __init__(self, told: Told) -> None:
        self._visits: dict[tuple[Any, ...], int] = {}
        self.told = told
        self.source: Source | None = None
        """Who tells the line of what is written (None: nobody, and no event is written)."""
        self.unique = new_id() + "-a"
        """The UniqueIDs of this writer's attempt-ended events: this, then the attempt's id (unique in its store)."""

    def __call__(self, tx: Tx, attempts: Sequence[Attempt]) -> None:
        visits = self._visits
        rows = []
        tagged: list[Attempt] = []  # those whose measurements orjson did not write: only they can leave images
        for a in attempts:
            r = a.recipe
            key = (a.serial, r.recipe, r.version, r.content_hash, a.lot, a.station, a.slot, a.operator, a.device_id)
            visit = visits.get(key)
            if visit is None:
                visit = self._visit(tx, key)
            measured: str | None = "[]"
            if a.measurements:
                measured = _orjson_measurements(a.measurements)
                if measured is None:
                    measured = _plain_json(a.measurements)
                    tagged.append(a)
            # _value_ (the enum's documented raw value) is an attribute; .value is a property, several times dearer
            rows.append((visit, a.stage, a.step, a.attempt, a.outcome._value_, a.started, a.ended, measured, a.error))
        source = self.source
        if source is None:
            whole = len(rows) - len(rows) % ROWS_PER_INSERT
            for start in range(0, whole, ROWS_PER_INSERT):
                tx.run(INSERT_ATTEMPTS, list(chain.from_iterable(rows[start : start + ROWS_PER_INSERT])))
            tx.many(INSERT_ATTEMPT, rows[whole:])
        else:
            self.told(tx, source, _inserted(tx, rows), self.unique)
        images = image_rows(tagged) if tagged else None
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


def _inserted(tx: Tx, rows: list[tuple[Any, ...]]) -> Sequence[int]:
    """Insert the attempts' rows; their ids, in the rows' order: a ``range`` where the database has one writer
    (its rows' ids are consecutive), else as each statement returns them (ascending in the rows' order)."""
    ids: list[int] = []
    last = 0
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        values = list(chain.from_iterable(chunk))
        if tx.backend.one_writer:
            last = tx.inserted(_insert(len(chunk)), values)
        else:
            ids += sorted(row[0] for row in tx.rows(_insert(len(chunk)) + " RETURNING id", values))
    return range(last - len(rows) + 1, last + 1) if tx.backend.one_writer else ids


@cache
def _insert(count: int) -> str:
    return f"INSERT INTO attempts ({_COLUMNS}) VALUES " + ", ".join([_ROW] * count)


_ORJSON_WRITES = frozenset({str, int, bool, type(None)})
"""Value types orjson writes as the standard library does (a float only when finite; an int up to 64 bits)."""


def measurements_json(measurements: Sequence[MeasurementRecord]) -> str:
    """The measurements column: ``[[name, value, verdict, units, low, high(, tags)], …]`` in compact JSON.

    orjson writes it, in a third of the standard library's time; what orjson writes otherwise than
    ``json`` does (NaN and infinities as null, a float or int subclass as text, tags of any kind)
    is left to ``json``.
    """
    measured = _orjson_measurements(measurements)
    return _plain_json(measurements) if measured is None else measured


def _orjson_measurements(measurements: Sequence[MeasurementRecord]) -> str | None:
    """The measurements column as orjson writes it; None when that would not be what ``json`` writes (or when
    a measurement has tags)."""
    rows = []
    for m in measurements:
        value = m.value
        kind = type(value)
        if m.tags or not (kind in _ORJSON_WRITES or (kind is float and value - value == 0.0)):
            return None
        rows.append(m[:6])  # the verdict, an Enum, is written as its value
    try:
        return orjson.dumps(rows).decode()
    except orjson.JSONEncodeError:  # an int past 64 bits
        return None


def _plain_json(measurements: Sequence[MeasurementRecord]) -> str:
    return json.dumps([_measurement(m) for m in measurements], separators=(",", ":"), default=str)


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
