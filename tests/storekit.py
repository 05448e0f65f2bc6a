"""Shared fixtures and helpers of the store tests (``engine.store``), on SQLite and on PostgreSQL.

``store_url`` gives each test a store of its own, once per backend: a SQLite file in the test's
``tmp_path``, or a fresh PostgreSQL schema (``search_path`` set in the URL) dropped after the test.
PostgreSQL is ``$FLOORFLOW_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1/test``);
when it cannot be reached the PostgreSQL tests are skipped with the reason, or fail when
``FLOORFLOW_REQUIRE_POSTGRES=1`` (CI), so CI cannot go green by skipping them.

Import the fixture into a test module as ``store_url = storekit.store_url`` (``tests`` is not a
package, and an imported fixture name would read as an unused import to ruff).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import pytest

from engine.context import MeasurementRecord
from engine.outcome import Outcome, Verdict
from engine.record import Attempt, RecipeRef, UnitRecord
from engine.store import SqlStore, open_store

POSTGRES_URL = os.environ.get("FLOORFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test")
REQUIRE_POSTGRES = "FLOORFLOW_REQUIRE_POSTGRES"
BACKENDS = ("sqlite", "postgresql")

RECIPE = RecipeRef("lab-recipe", 3, "0123456789abcdef-lab")
"""The recipe the helper attempts name."""

_unreachable: list[str] = []
"""Why PostgreSQL could not be reached (remembered: one attempt per test session)."""


# -- the fixture --------------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store's URL: a SQLite file in tmp_path, or a PostgreSQL schema of the test's own."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "store.db")
        return
    with postgres_schema() as url:
        yield url


def sqlite_url(path: Path) -> str:
    """``sqlite:///`` + the absolute path (so four slashes)."""
    return f"sqlite:///{path.resolve()}"


def postgres_unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when PostgreSQL is required."""
    if os.environ.get(REQUIRE_POSTGRES) == "1":
        pytest.fail(f"{REQUIRE_POSTGRES}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _admin_connection() -> Any:
    if _unreachable:
        postgres_unavailable(_unreachable[0])
    try:
        import psycopg
    except ImportError:
        _unreachable.append("psycopg is not installed: pip install 'psycopg[binary]'")
        postgres_unavailable(_unreachable[0])
    try:
        return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        _unreachable.append(f"PostgreSQL at {POSTGRES_URL} is unreachable: {str(exc).strip()}")
        postgres_unavailable(_unreachable[0])


def with_search_path(url: str, schema: str) -> str:
    options = quote(f"-csearch_path={schema}", safe="-")
    return f"{url}{'&' if '?' in url else '?'}options={options}"


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A new schema on the test server, as a store URL; dropped (with everything in it) afterwards."""
    admin = _admin_connection()
    schema = f"floorflow_test_{os.getpid()}_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield with_search_path(POSTGRES_URL, schema)
        finally:
            admin.execute("SET lock_timeout = '20s'")
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def until_gone(holder: str, timeout: float = 10.0) -> None:
    """Wait until a closed store's holder is dead for every other store.

    SQLite: at once (an in-process holder dies when its store closes). PostgreSQL: the server ends a
    closed connection's backend a moment after the client hangs up, and until then the holder is
    still in ``pg_stat_activity``, so still alive.
    """
    if not holder.startswith("pg:"):
        return
    pid = int(holder.split(":")[1])
    admin = _admin_connection()
    with admin:
        deadline = time.monotonic() + timeout
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is not None:
            assert time.monotonic() < deadline, f"the backend {pid} of a closed store is still running"
            time.sleep(0.01)


# -- records -------------------------------------------------------------------------------------------


def measurement(
    name: str,
    value: Any,
    verdict: Verdict = Verdict.PASS,
    units: str | None = None,
    low: float | None = None,
    high: float | None = None,
    **tags: Any,
) -> MeasurementRecord:
    return (
        MeasurementRecord(name, value, verdict, units, low, high, tags)
        if tags
        else MeasurementRecord(name, value, verdict, units, low, high)
    )


def attempt(
    serial: str,
    stage: str,
    outcome: Outcome = Outcome.PASS,
    *,
    number: int = 1,
    started: float | None = None,
    duration: float = 0.25,
    step: str = "lab.measure",
    lot: str | None = None,
    station: str | None = "bench",
    slot: int = 1,
    operator: str | None = "tester",
    measurements: tuple[MeasurementRecord, ...] = (),
    error: str | None = None,
    device_id: str | None = None,
    recipe: RecipeRef = RECIPE,
) -> Attempt:
    begun = time.time() if started is None else started
    return Attempt(
        serial, stage, step, number, outcome, begun, begun + duration, recipe, lot, station, slot, operator,
        measurements, error, device_id,
    )  # fmt: skip


def admit(record: UnitRecord, lot_hold: str | None) -> str | None:
    """A route interlock's decision that lets every unit run."""
    return None


def claim(store: SqlStore, serial: str, *, station: str = "bench", lot: str | None = None) -> str | None:
    """Claim the unit with no rule of its own: the refusal, or None when claimed."""
    _, refused = store.claim(serial, station=station, lot=lot, product="lab-product", decide=admit)
    return refused


def left_by_dead_station(url: str, serial: str, *, stage: str | None = None, station: str = "dead-station") -> str:
    """A station claims the unit (and journals an irreversible ``stage`` on it), then stops without finishing.

    Returns the dead station's holder, once every other store sees it as dead.
    """
    store = open_store(url)
    try:
        assert claim(store, serial, station=station) is None
        if stage is not None:
            store.intend(attempt(serial, stage, Outcome.ERROR, step="lab.burn", station=station, slot=2, duration=0))
    finally:
        store.close()
    until_gone(store.holder)
    return store.holder
