"""Each attempt's measurements as rows of their own (engine.store.measured), on SQLite and on PostgreSQL.

Reading the line's figures first unnests what was written since they were last read: every
measurement once, with its verdict, a value that is not a number (text, a truth value, NaN, an
infinity) as NULL, an attempt without measurements with none, however many chunks it takes and
however often it is asked.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import storekit
from storekit import attempt, measurement

from engine.outcome import Outcome, Verdict
from engine.record import Attempt
from engine.store import measured, open_store
from engine.store.figures import Window
from engine.store.migrations import MIGRATIONS
from engine.store.postgres import PostgresBackend
from engine.store.sqlite import SqliteBackend
from engine.store.sqlstore import SqlStore

store_url = storekit.store_url

ROWS = "SELECT a.serial, m.stage, m.name, m.verdict, m.x FROM measured m JOIN attempt_records a ON a.id = m.attempt"
EXPECTED = [
    ("SN1", "boot", "boot_s", "PASS", 31.25),
    ("SN1", "boot", "idle_ma", "FAIL", 52.0),
    ("SN1", "boot", "banner", "PASS", None),
    ("SN1", "boot", "fused", "PASS", None),
    ("SN1", "boot", "noise", "FAIL", None),
    ("SN1", "boot", "over", "FAIL", None),
    ("SN2", "rf", "tx_dbm", "PASS", -3.5),
]


def _attempts() -> list[Attempt]:
    boot = (
        measurement("boot_s", 31.25, units="s", low=0.0, high=90.0),
        measurement("idle_ma", 52, Verdict.FAIL, units="mA", high=45.0),
        measurement("banner", "floorflow 1.0,NaN"),
        measurement("fused", True),
        measurement("noise", math.nan, Verdict.FAIL),
        measurement("over", -math.inf, Verdict.FAIL, low=-math.inf),
    )
    return [
        attempt("SN1", "boot", Outcome.FAIL, measurements=boot),
        attempt("SN1", "flash"),  # no measurements: no rows
        attempt("SN2", "rf", measurements=(measurement("tx_dbm", -3.5, units="dBm", band="lte-b3"),)),
    ]


def _rows(store: SqlStore) -> list[tuple[Any, ...]]:
    found = store._worker.call(lambda tx: tx.rows(ROWS + " ORDER BY m.attempt, m.pos"))
    return list(found)


def test_reading_the_figures_unnests_each_measurement_once(store_url: str) -> None:
    with open_store(store_url) as store:
        for a in _attempts():
            store.add(a)
        store.flush()
        assert _rows(store) == []  # a station writes no rows of its own
        store.figures(Window())
        assert _rows(store) == EXPECTED
        store.figures(Window())  # nothing new: nothing written again
        assert _rows(store) == EXPECTED
        store.add(attempt("SN3", "rf", measurements=(measurement("tx_dbm", 1.5),)))
        store.flush()
        store.figures(Window())
        assert _rows(store) == [*EXPECTED, ("SN3", "rf", "tx_dbm", "PASS", 1.5)]


def test_a_backlog_is_unnested_in_chunks_each_attempt_once(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """More attempts than one chunk: each has its row, once, and the chunks stop when nothing is left."""
    monkeypatch.setattr(measured, "CHUNK", 7)
    with open_store(store_url) as store:
        for n in range(30):
            store.add(attempt(f"SN{n}", "boot", measurements=(measurement("boot_s", float(n)),)))
            store.add(attempt(f"SN{n}", "flash"))
        store.flush()
        calls: list[int] = []

        def call(work: Any) -> int:
            calls.append(1)
            return store._worker.call(work)

        assert measured.catch_up(call) == 30
        found = store._worker.call(lambda tx: tx.rows("SELECT x FROM measured ORDER BY x"))
        assert measured.catch_up(store._worker.call) == 0
    assert [x for (x,) in found] == [float(n) for n in range(30)]
    assert len(calls) == (6 if store.backend.one_writer else 2)  # 5 chunks of at most 7, then none left


def test_a_row_already_there_is_left_as_it_is(store_url: str) -> None:
    """Two readers catching up at once (on PostgreSQL each may miss the other's rows not yet committed): a row
    already written is not written again, nor does writing it again fail."""
    every = measured._INSERT.format(attempts="SELECT id, stage, measurements FROM attempts", **_figures(store_url))
    with open_store(store_url) as store:
        for a in _attempts():
            store.add(a)
        store.figures(Window())
        assert store._worker.call(lambda tx: tx.run(every)) == 0
        assert _rows(store) == EXPECTED


def _figures(url: str) -> dict[str, str]:
    return (SqliteBackend if url.startswith("sqlite") else PostgresBackend).figures


def test_a_store_of_version_4_gets_the_table_empty_and_fills_it_when_read(store_url: str) -> None:
    with open_store(store_url, MIGRATIONS[:4]) as old:
        for a in _attempts():
            old.add(a)
        assert old.schema_version() == 4
    with open_store(store_url) as store:
        assert _rows(store) == []
        store.figures(Window())
        assert _rows(store) == EXPECTED
