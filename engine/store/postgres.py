"""PostgreSQL through psycopg 3: one database for the stations of a whole line.

Ordinary transactions commit with ``synchronous_commit = off`` (the server has them even if the
station dies; a crash of the server may lose the last ones); durable ones turn it on for their
transaction. Decisions lock their rows with ``SELECT … FOR UPDATE``. A claim's holder is the
server's own name for the connection (backend pid and start time), so a station that died is seen
as gone by every other station: its connection is no longer in ``pg_stat_activity``. A process that
dies (killed, or a zombie not yet reaped) has its sockets closed by the kernel, and the server ends
its backend once the statement it was running, if any, is done: what that statement commits is kept,
and until then the holder still counts as alive. A station whose machine vanished sends no close at
all: TCP keepalives (below) end its backend within about 25 s.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from engine.store.query import Dialect

_MIGRATION_LOCK = 0x666C6F77  # "flow": the advisory lock held while migrating
_KEEPALIVE_SERVER = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 5, "tcp_keepalives_count": 3}
"""TCP keepalive on the server's side of a station's connection: silent for 10 s, then 3 probes 5 s apart.

The station asks the same of its own side (``connect``), so a server that vanished fails its next call."""


class PostgresBackend:
    types: ClassVar[dict[str, str]] = {
        "id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "seq": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "real": "DOUBLE PRECISION",
        "big": "BIGINT",
        "blob": "BYTEA",
        "same": "IS NOT DISTINCT FROM",
    }
    figures: ClassVar[dict[str, str]] = {
        # a value written as NaN or an infinity (as Python's json writes them) read as null
        "each": "jsonb_array_elements((CASE WHEN a.measurements ~ '(NaN|Infinity)' "
        "THEN regexp_replace(a.measurements, '([,:])(-Infinity|Infinity|NaN)', '\\1null', 'g') "
        "ELSE a.measurements END)::jsonb) WITH ORDINALITY AS j(value, key)",
        "name": "j.value ->> 0",
        "verdict": "j.value ->> 2",
        "units": "j.value ->> 3",
        **{
            key: f"CASE WHEN jsonb_typeof(j.value -> {i}) = 'number' THEN (j.value ->> {i})::float8 END"
            for key, i in (("value", 1), ("low", 4), ("high", 5))
        },
        "whole": "CAST(floor({}) AS BIGINT)",
    }
    for_update = " FOR UPDATE"
    one_writer = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.shown = re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)
        import psycopg  # the postgresql extra: open_store asks for it first

        self.sql = Dialect(psycopg.paramstyle)

    def connect(self) -> Any:
        import psycopg

        conn = psycopg.connect(
            self.url, autocommit=True, connect_timeout=10, keepalives=1, keepalives_idle=10, keepalives_interval=5,
            keepalives_count=3,
        )  # fmt: skip
        conn.execute("SET synchronous_commit TO off")
        # The server ends the backend of a station it cannot reach any more (a power cut, a pulled
        # cable: no FIN ever arrives) after these, instead of the system's two hours; until then the
        # station's claims count as held.
        for name, value in _KEEPALIVE_SERVER.items():
            conn.execute(f"SET {name} TO {value}")
        return conn

    def begin(self, conn: Any, *, write: bool, durable: bool) -> None:
        if not write:
            # Reads run one statement at a time, each its own transaction: under READ COMMITTED a
            # transaction gives each statement its own snapshot all the same, and costs two round trips.
            return
        conn.execute("BEGIN")
        if durable:
            conn.execute("SET LOCAL synchronous_commit TO on")

    def end(self, conn: Any, *, write: bool, commit: bool, durable: bool) -> None:
        if write:
            conn.execute("COMMIT" if commit else "ROLLBACK")

    def migration_lock(self, conn: Any) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))

    def holder(self, conn: Any) -> str:
        pid, started = conn.execute(
            "SELECT pid, extract(epoch FROM backend_start)::text FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        ).fetchone()
        return f"pg:{pid}:{started}"

    def alive(self, conn: Any, holder: str) -> bool:
        _, pid, started = [*holder.split(":", 2), "", ""][:3]
        if not pid.isdigit():
            return True
        row = conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND extract(epoch FROM backend_start)::text = %s",
            (int(pid), started),
        ).fetchone()
        return row is not None

    def closed(self) -> None:
        """Nothing to forget: the server drops the connection's identity itself."""
