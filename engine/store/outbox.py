"""The line events' outbox: each event written in the transaction of the record it describes, read back in order.

A store told the line (``SqlStore.tell_line``) writes, with each record, the event that says it
(``engine.messages``): with an attempt's row its attempt-ended, with a claim unit-started, with a
finish unit-finished, with a lot's first hold lot-held, with a quarantine unit-quarantined, with a
supervisor's release unit-released. Each row gets its ``UniqueID`` and topic when it is written. An
attempt-ended keeps only its attempt's id (``attempt``; its payload column is empty): its payload is
built from the attempt's row each time it is read, so a step pays for no JSON, and the publisher, in
its own process, does. Every other event's payload is built once, as it is written, and kept. Either
way every read gives the same bytes under the same id. A publisher (``engine.linebus``) reads the
rows in ``seq`` order from the first one not yet published and marks those the broker acknowledged;
the marks are written behind, so after a crash a few rows are published again, under the same ids.
Stations sharing a store keep their rows apart by ``source`` (``LINE/STATION``): a store told the
line reads and marks only its own, one not told reads every source's. Only the store's worker
thread calls these, inside its transactions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import cache
from itertools import chain
from typing import Any

from engine.messages import Kind, Message, Source, attempt_ended
from engine.record import Attempt
from engine.store.rows import ATTEMPT_COLUMNS, VISIT_COLUMNS, attempt_of
from engine.store.worker import Tx

_COLUMNS = "unique_id, source, topic, kind, serial, payload, created, attempt"
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?)"
ROWS_PER_INSERT = 64
"""Events written by one INSERT statement (as ``engine.store.rows`` writes attempts)."""
INSERT_ONE = f"INSERT INTO line_events ({_COLUMNS}) VALUES {_ROW}"
INSERT_MANY = f"INSERT INTO line_events ({_COLUMNS}) VALUES " + ", ".join([_ROW] * ROWS_PER_INSERT)
_READ = (
    "SELECT e.seq, e.unique_id, e.topic, e.payload, e.kind, e.serial, e.source, "
    + ", ".join(("v." if c in VISIT_COLUMNS.split(", ") else "a.") + c for c in ATTEMPT_COLUMNS.split(", "))
    # The tables, not the attempt_records view: SQLite would build the whole view for a LEFT JOIN on it.
    + " FROM line_events e LEFT JOIN attempts a ON a.id = e.attempt LEFT JOIN visits v ON v.id = a.visit"
)
PAGE = 1000
"""Events read at a time by a replay (``SqlStore.outbox_since``)."""
_ENDED = Kind.ATTEMPT_ENDED._value_
_BUILT_WHEN_READ = b""
"""The payload column of an attempt-ended: its payload is built from its attempt's row."""


def put(tx: Tx, source: Source, messages: Sequence[Message]) -> None:
    """Write the messages to the outbox, in their order, in the transaction ``tx`` (the record's)."""
    now = time.time()
    name = source.name
    _insert(tx, [(m.unique_id, name, m.topic, m.kind._value_, m.serial, m.payload, now, None) for m in messages])


def put_attempts(tx: Tx, source: Source, ids: Sequence[int], unique: str) -> None:
    """Write the attempt-ended events of the attempts ``ids`` (just written, in their order), in the attempts'
    transaction: each keeps its attempt's id, and its UniqueID is ``unique`` followed by that id."""
    said = (unique, source.name, _ENDED, _BUILT_WHEN_READ, time.time())
    if isinstance(ids, range):  # consecutive: one statement says them all
        tx.run(_PUT_ATTEMPTS + "BETWEEN ? AND ? ORDER BY id", (*said, ids.start, ids.stop - 1))
    else:
        for start in range(0, len(ids), ROWS_PER_INSERT):
            chunk = ids[start : start + ROWS_PER_INSERT]
            tx.run(_put_attempts(len(chunk)), (*said, *chunk))
    tx.told += len(ids)


_PUT_ATTEMPTS = (
    f"INSERT INTO line_events ({_COLUMNS}) "
    "SELECT CAST(? AS TEXT) || id, ?, '', ?, NULL, ?, ?, id FROM attempts WHERE id "
)
"""Attempts' events written in SQL: nothing is built row by row in Python."""


@cache
def _put_attempts(count: int) -> str:
    return _PUT_ATTEMPTS + f"IN ({', '.join('?' * count)}) ORDER BY id"


def _insert(tx: Tx, rows: list[tuple[Any, ...]]) -> None:
    whole = len(rows) - len(rows) % ROWS_PER_INSERT
    for start in range(0, whole, ROWS_PER_INSERT):
        tx.run(INSERT_MANY, list(chain.from_iterable(rows[start : start + ROWS_PER_INSERT])))
    if whole == len(rows) - 1:
        tx.run(INSERT_ONE, rows[whole])
    else:
        tx.many(INSERT_ONE, rows[whole:])
    tx.told += len(rows)


def put_one(tx: Tx, source: Source, message: Message) -> None:
    put(tx, source, (message,))


class Behind:
    """Writes a batch the store wrote behind: runs of attempts (``engine.store.rows.AttemptWriter``, which adds
    their messages), and, in their place among them, the outbox's own writes (callables taking the Tx).

    ``mixed`` stays False until the first such write is queued: until then a batch is attempts only and
    goes to the attempt writer whole, unlooked at.
    """

    def __init__(self, attempts: Callable[[Tx, list[Any]], None]) -> None:
        self.attempts = attempts
        self.mixed = False

    def __call__(self, tx: Tx, batch: list[Any]) -> None:
        if not self.mixed:
            self.attempts(tx, batch)
            return
        start = 0
        for i, item in enumerate(batch):
            if type(item) is not Attempt:
                if i > start:
                    self.attempts(tx, batch[start:i])
                item(tx)
                start = i + 1
        if start < len(batch):
            self.attempts(tx, batch[start:])


# -- reading and marking --------------------------------------------------------------------------------


def _mine(source: str | None, column: str = "source") -> tuple[str, tuple[Any, ...]]:
    """The condition keeping to one source's rows (none: every source's)."""
    return ("", ()) if source is None else (f" AND {column} = ?", (source,))


def _message(row: Sequence[Any]) -> tuple[int, Message]:
    seq, unique_id, topic, payload, kind, serial, source = row[:7]
    if kind == _ENDED and row[7] is not None:
        return int(seq), attempt_ended(Source.named(source), attempt_of(row[7:]), unique_id)
    return int(seq), Message(unique_id, topic, bytes(payload), Kind(kind), serial)


def after(tx: Tx, source: str | None, seq: int, limit: int) -> list[tuple[int, Message]]:
    """The first ``limit`` rows after ``seq``, published or not, in seq order."""
    where, params = _mine(source, "e.source")
    found = tx.rows(f"{_READ} WHERE e.seq > ?{where} ORDER BY e.seq LIMIT ?", (seq, *params, limit))
    return [_message(row) for row in found]


def first_unpublished(tx: Tx, source: str | None) -> int:
    """The seq of the first row not yet published; once all are, one past the last; 0 when there is none."""
    where, params = _mine(source)
    found = tx.row(f"SELECT min(seq) FROM line_events WHERE published IS NULL{where}", params)
    if found is not None and found[0] is not None:
        return int(found[0])
    # The newest row of the source, walking seq down: max() under a condition would read every row.
    last = tx.row(f"SELECT seq FROM line_events WHERE seq > 0{where} ORDER BY seq DESC LIMIT 1", params)
    return 0 if last is None else int(last[0]) + 1


def mark_published(tx: Tx, source: str | None, up_to: int) -> None:
    where, params = _mine(source)
    tx.run(
        f"UPDATE line_events SET published = ? WHERE published IS NULL AND seq <= ?{where}",
        (time.time(), up_to, *params),
    )


def since(tx: Tx, source: str | None, when: float, seq: int, limit: int) -> list[tuple[int, Message]]:
    """The first ``limit`` rows after ``seq`` written at ``when`` or later, in seq order (read along seq: a
    replay reads the outbox once, and an index on the time would cost every write)."""
    where, params = _mine(source, "e.source")
    found = tx.rows(
        f"{_READ} WHERE e.created >= ? AND e.seq > ?{where} ORDER BY e.seq LIMIT ?", (when, seq, *params, limit)
    )
    return [_message(row) for row in found]
