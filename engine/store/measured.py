"""Each attempt's measurements as rows of their own (``measured``), unnested when the line's figures are read.

An attempt's row keeps its measurements as JSON, the record as it was made. The line's figures
(``engine.store.spreads``) sum a month of measured values at a time, and unnesting every attempt's
JSON for every report cost most of a report's time. So each report first unnests what was written
since the last one (``catch_up``), and the figures read the rows: a row a measurement, its
attempt, position, stage, name, verdict and value (NULL when the value is not a number: text, a
truth value, NaN). An index on stage, name and value keeps each measurement's values together.

A station pays nothing for this: the rows are written by whoever reads the figures, not with the
attempt. Where the database has one writer (SQLite) attempts are committed in the order of their
ids, so what is left to unnest is every attempt past the last one unnested, taken in chunks of
``CHUNK`` attempts, each its own short transaction (a station writing meanwhile waits for one
chunk at most). Elsewhere (PostgreSQL) a lower id may commit after a higher one, so it is every
attempt with measurements and no rows, in one transaction that locks no station out. A row is
never written twice: (attempt, position) is unique, and a second reader catching up at the same
moment leaves what the first wrote.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.store.worker import Tx

CHUNK = 50_000
"""Attempts unnested in one transaction where the database has one writer."""
_INSERT = "INSERT INTO measured (attempt, pos, stage, name, verdict, x) SELECT a.id, j.key, a.stage, {name}, " \
          "{verdict}, {value} FROM ({attempts}) a, {each} WHERE true ON CONFLICT (attempt, pos) DO NOTHING"  # fmt: skip
_IN_ORDER = (
    "SELECT id, stage, measurements FROM attempts WHERE measurements <> '[]' "
    "AND id > (SELECT coalesce(max(attempt), 0) FROM measured) ORDER BY id LIMIT {chunk}"
)
"""The next attempts to unnest where ids are committed in order: past the last one unnested."""
_ANY_ORDER = (
    "SELECT id, stage, measurements FROM attempts a WHERE measurements <> '[]' "
    "AND NOT EXISTS (SELECT 1 FROM measured m WHERE m.attempt = a.id)"
)
"""Every attempt left to unnest where a lower id may commit after a higher one."""


def unnest(tx: Tx) -> int:
    """Unnest the next attempts left (at most ``CHUNK`` where ids commit in order, else all); the rows written."""
    f = tx.backend.figures
    attempts = _IN_ORDER.format(chunk=CHUNK) if tx.backend.one_writer else _ANY_ORDER
    return tx.run(_INSERT.format(attempts=attempts, **f))


def catch_up(call: Callable[[Callable[[Tx], int]], int]) -> int:
    """Unnest every attempt left, each chunk in a transaction of its own run by ``call``; the rows written."""
    written = 0
    while True:
        rows = call(unnest)
        written += rows
        if rows == 0:
            return written
