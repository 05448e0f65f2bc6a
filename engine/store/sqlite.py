"""SQLite: one file in WAL mode, the embedded default, shared by the stations of one machine.

Ordinary transactions commit with ``synchronous=NORMAL`` (they survive a crash of the process; a
power cut may lose the last ones); durable ones (irreversible intents and outcomes, identities,
decisions) with ``synchronous=FULL``. A write transaction is ``BEGIN IMMEDIATE``: it takes the
database's write lock before it reads, so the read-decide-write of a route interlock is one step for
every process on the file. A claim's holder is host, process id, the process's start time and a
token per open store, so a claim left by a killed process is known for what it is, also while it
is a zombie its parent has not reaped yet.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
from pathlib import Path
from typing import Any, ClassVar

from engine.store.query import Dialect

_HOST = socket.gethostname()
LIVE_TOKENS: set[str] = set()
"""Tokens of the stores open in this process."""


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state first); [] where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' where /proc cannot tell)."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


_GONE = ("Z", "X")
"""Process states of a process that has ended: a zombie (not yet reaped by its parent), or dead."""


def _as_null(text: str) -> str:
    for token in ("-Infinity", "Infinity", "NaN"):  # -Infinity first: it holds Infinity
        for before in (",", ":"):
            text = f"replace({text}, '{before}{token}', '{before}null')"
    return text


_READABLE = f"CASE WHEN json_valid(a.measurements) THEN a.measurements ELSE {_as_null('a.measurements')} END"
"""Attempt ``a``'s measurements as JSON SQLite reads: a value written as NaN or an infinity (as Python's ``json``
writes them) read as null."""


class SqliteBackend:
    types: ClassVar[dict[str, str]] = {
        "id": "INTEGER PRIMARY KEY",
        "seq": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "real": "REAL",
        "big": "INTEGER",
        "blob": "BLOB",
        "same": "IS",
    }
    figures: ClassVar[dict[str, str]] = {
        "each": f"json_each({_READABLE}) AS j",
        "name": "json_extract(j.value, '$[0]')",
        "verdict": "json_extract(j.value, '$[2]')",
        "units": "json_extract(j.value, '$[3]')",
        **{
            key: f"CASE WHEN json_type(j.value, '$[{i}]') IN ('integer', 'real') "
            f"THEN json_extract(j.value, '$[{i}]') END"
            for key, i in (("value", 1), ("low", 4), ("high", 5))
        },
        "whole": "CAST({} AS INTEGER)",
    }
    for_update = ""
    one_writer = True

    def __init__(self, path: str) -> None:
        self.path = path
        self.memory = path in ("", ":memory:")
        self.shown = "sqlite://" if self.memory else f"sqlite:///{path}"
        self.token = secrets.token_hex(4)
        self.sql = Dialect(sqlite3.paramstyle)

    def connect(self) -> sqlite3.Connection:
        if not self.memory:
            parent = Path(self.path).parent
            if not parent.is_dir():
                raise FileNotFoundError(f"{parent}: no such directory")
        conn = sqlite3.connect(
            ":memory:" if self.memory else self.path, isolation_level=None, check_same_thread=False, timeout=60
        )
        if not self.memory:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise sqlite3.OperationalError(f"the database cannot use WAL mode (it is in {mode} mode)")
        conn.execute("PRAGMA synchronous=NORMAL")
        LIVE_TOKENS.add(self.token)
        return conn

    def begin(self, conn: Any, *, write: bool, durable: bool) -> None:
        if durable:
            conn.execute("PRAGMA synchronous=FULL")
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def end(self, conn: Any, *, write: bool, commit: bool, durable: bool) -> None:
        try:
            conn.execute("COMMIT" if commit else "ROLLBACK")
        finally:
            if durable:
                conn.execute("PRAGMA synchronous=NORMAL")

    def migration_lock(self, conn: Any) -> None:
        """BEGIN IMMEDIATE already holds the write lock."""

    def holder(self, conn: Any) -> str:
        pid = os.getpid()
        return f"{_HOST}:{pid}:{_started(pid)}:{self.token}"

    def alive(self, conn: Any, holder: str) -> bool:
        host, pid_text, started, token = [*holder.split(":"), "", "", ""][:4]
        if host != _HOST or not pid_text.isdigit():
            return True  # another machine's process: nothing here can tell, so it is not taken over
        pid = int(pid_text)
        if pid == os.getpid():
            return token in LIVE_TOKENS
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        # A killed process keeps its pid until its parent reaps it: signals still "reach" a zombie, so
        # its state, not its pid, says it is gone.
        fields = _stat(pid)
        if fields and fields[0] in _GONE:
            return False
        return (fields[19] if len(fields) > 19 else "") == started

    def closed(self) -> None:
        LIVE_TOKENS.discard(self.token)
