"""Durable records: ``open_store(url)`` opens a SQLite file (the default) or a PostgreSQL database.

``sqlite:///PATH`` is a file (relative to the working directory; ``sqlite:////abs/path`` is
absolute), ``sqlite://`` a database in memory (a dry run's), ``postgresql://…`` a server. The schema
is migrated in place on opening (``migrations``). ``sqlstore.SqlStore`` is the one store over both
databases (``sqlite``, ``postgres`` and ``backend`` say what differs, ``query`` gives each driver its
parameter style); its one connection belongs to a thread (``worker``). Claims (``claims``), what a
dead station left (``recovery``), people's decisions (``decisions``), reading records back
(``reading``, ``rows``) and the line events' outbox (``outbox``) are its parts; ``history`` is the
view the runner writes through. This room imports only the engine's core.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from engine.extras import missing
from engine.store.migrations import MIGRATIONS, Migration
from engine.store.sqlstore import DECISIONS, SqlStore
from engine.store.worker import StoreError

DEFAULT_STORE = "sqlite:///floorflow.db"
MEMORY = "sqlite://"
ENVIRONMENT = "FLOORFLOW_STORE"
"""The environment variable naming the store when ``--store`` is not given."""


def default_url() -> str:
    return os.environ.get(ENVIRONMENT) or DEFAULT_STORE


def open_store(url: str, migrations: Sequence[Migration] = MIGRATIONS) -> SqlStore:
    """Open (creating and migrating as needed) the store at ``url``; StoreError says why it cannot be."""
    if url.startswith("sqlite:"):
        from engine.store.sqlite import SqliteBackend

        rest = url[len("sqlite:") :]
        if rest in ("", "//", "///:memory:"):
            return SqlStore(SqliteBackend(":memory:"), migrations)
        if not rest.startswith("///"):
            raise StoreError(f"{url}: a SQLite store is sqlite:///PATH (sqlite:////PATH for an absolute path)")
        return SqlStore(SqliteBackend(rest[3:]), migrations)
    if url.startswith(("postgresql://", "postgres://")):
        absent = missing(f"{url}: a PostgreSQL store", "psycopg")
        if absent is not None:
            raise StoreError(absent)
        from engine.store.postgres import PostgresBackend

        return SqlStore(PostgresBackend(url), migrations)
    raise StoreError(f"{url}: not a store address: give sqlite:///PATH or postgresql://HOST/DATABASE")


__all__ = ["DECISIONS", "DEFAULT_STORE", "MEMORY", "SqlStore", "StoreError", "default_url", "open_store"]
