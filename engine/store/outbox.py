"""The line events' outbox: each event written in the transaction of the record it describes, read back in order.

A store told the line (``SqlStore.tell_line``) writes, with each record, the message that says it
(``engine.messages``): with an attempt's row its attempt-ended, with a claim unit-started, with a
finish unit-finished, with a lot's first hold lot-held, with a quarantine unit-quarantined, with a
supervisor's release unit-released. The message is built once, in the store's thread, and kept as
built: every read gives the same bytes under the same id. A publisher (``engine.linebus``) reads
the rows in ``seq`` order from the first one not yet published and marks those the broker
acknowledged; the marks are written behind, so after a crash a few rows are published again, under
the same ids. Stations sharing a store keep their rows apart by ``source`` (``LINE/STATION``): a
store told the line reads and marks only its own, one not told reads every source's. Only the
store's worker thread calls these, inside its transactions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

from engine.messages import Kind, Message, Source
from engine.record import Attempt
from engine.store.worker import Tx

_COLUMNS = "unique_id, source, topic, kind, serial, payload, created"
_ROW = "(?, ?, ?, ?, ?, ?, ?)"
ROWS_PER_INSERT = 64
"""Messages written by one INSERT statement (as ``engine.store.rows`` writes attempts)."""
INSERT_ONE = f"INSERT INTO line_events ({_COLUMNS}) VALUES {_ROW}"
INSERT_MANY = f"INSERT INTO line_events ({_COLUMNS}) VALUES " + ", ".join([_ROW] * ROWS_PER_INSERT)
_READ = "SELECT seq, unique_id, topic, payload, kind, serial FROM line_events"
PAGE = 1000
"""Events read at a time by a replay (``SqlStore.outbox_since``)."""


def put(tx: Tx, source: Source, messages: Sequence[Message]) -> None:
    """Write the messages to the outbox, in their order, in the transaction ``tx`` (the record's)."""
    now = time.time()
    name = source.name
    rows = [(m.unique_id, name, m.topic, m.kind._value_, m.serial, m.payload, now) for m in messages]
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


def _mine(source: str | None) -> tuple[str, tuple[Any, ...]]:
    """The condition keeping to one source's rows (none: every source's)."""
    return ("", ()) if source is None else (" AND source = ?", (source,))


def _message(row: Sequence[Any]) -> tuple[int, Message]:
    seq, unique_id, topic, payload, kind, serial = row
    return int(seq), Message(unique_id, topic, bytes(payload), Kind(kind), serial)


def after(tx: Tx, source: str | None, seq: int, limit: int) -> list[tuple[int, Message]]:
    """The first ``limit`` rows after ``seq``, published or not, in seq order."""
    where, params = _mine(source)
    found = tx.rows(f"{_READ} WHERE seq > ?{where} ORDER BY seq LIMIT ?", (seq, *params, limit))
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
    where, params = _mine(source)
    found = tx.rows(f"{_READ} WHERE created >= ? AND seq > ?{where} ORDER BY seq LIMIT ?", (when, seq, *params, limit))
    return [_message(row) for row in found]
