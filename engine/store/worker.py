"""The store's one connection, owned by one thread that runs every transaction in the order asked.

Ordinary attempts are written behind: ``write`` queues a row and returns, and the thread commits
the rows that queued up within a couple of milliseconds together, in one transaction. What is
written behind and not yet committed is bounded: a ``write`` that finds ``BEHIND_ROWS`` rows waiting,
or one waiting longer than ``BEHIND_S``, waits itself until the thread has committed them, so a
thread the scheduler starves slows its writers instead of piling up what a crash would lose.
Everything else is a job: the caller waits for its transaction to commit (or fail) and gets its
result. Jobs and rows keep their order, so a job sees every row queued before it, and a durable job
(an irreversible intent, an identity) commits the rows before it to disk with it. Once ``close``
is called, every write and job raises StoreError: nothing is dropped without a word.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from engine.store.backend import Backend
from engine.store.migrations import MIGRATIONS, Migration

log = logging.getLogger("floorflow.store")

T = TypeVar("T")
BATCH = 1024
"""Most rows written behind in one transaction."""
GATHER_S = 0.002
"""How long the first row written behind waits for others to share its commit (a job cuts it short)."""
BEHIND_ROWS = 64
"""Most rows handed to ``write`` and not yet committed once it returns (what a crash may lose)."""
BEHIND_S = 0.02
"""A ``write`` that finds a row handed over longer ago than this, still uncommitted, waits for its commit."""


class StoreError(Exception):
    """The store cannot be opened, read or written: a station error, with the store's address."""


class Tx:
    """One transaction on the store's connection."""

    def __init__(self, conn: Any, backend: Backend) -> None:
        self.conn = conn
        self.backend = backend
        self.for_update = backend.for_update
        self.undo: list[Callable[[], None]] = []
        """What to forget if the transaction rolls back (what was remembered of rows written in it)."""
        self.told = 0
        """Line events written to the outbox in the transaction (``engine.store.outbox``)."""

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.conn.execute(self.backend.sql(sql), params).rowcount)

    def inserted(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an INSERT; the id of the last row it inserted (only where ``backend.one_writer``)."""
        return int(self.conn.execute(self.backend.sql(sql), params).lastrowid)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.conn.cursor().executemany(self.backend.sql(sql), rows)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(self.backend.sql(sql), params).fetchall())

    def row(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        found: tuple[Any, ...] | None = self.conn.execute(self.backend.sql(sql), params).fetchone()
        return found

    def alive(self, holder: str) -> bool:
        return self.backend.alive(self.conn, holder)


@dataclass
class _Job(Generic[T]):
    work: Callable[[Tx], T]
    write: bool
    durable: bool
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


_STOP = object()


class Worker:
    """The thread that owns the connection; ``rows_written`` writes a batch of queued rows."""

    def __init__(
        self,
        backend: Backend,
        rows_written: Callable[[Tx, list[Any]], None],
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        self.backend = backend
        self.migrations = tuple(migrations)
        self._rows_written = rows_written
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._waited_for = threading.Event()
        """Set when a job is queued or a writer waits: the rows before it need not gather more company."""
        self._broken: BaseException | None = None
        self._closed = False
        self._behind: deque[float] = deque()
        """When each row written behind and not yet committed was handed over (monotonic), oldest first."""
        self._guard = threading.Lock()
        """Guards ``_behind`` and ``_closed`` (held as a plain lock: entering it runs no Python)."""
        self._committed = threading.Condition(self._guard)
        """Notified after every commit of rows and when the thread ends."""
        self.behind_max_s = 0.0
        """The longest a row has waited between ``write`` and its commit, so far."""
        self.holder = ""
        self.on_written: Callable[[], None] | None = None
        """Called in this thread after each commit that wrote line events to the outbox."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(ready,), name="floorflow-store", daemon=True)
        self._thread.start()
        ready.wait()
        if self._broken is not None:
            raise StoreError(f"cannot open the store {backend.shown}: {self._broken}") from self._broken

    # -- the callers' side --------------------------------------------------------------------

    def write(self, row: Any) -> None:
        """Queue a row to be written behind; wait while too much is behind (raise if closed or failed)."""
        with self._guard:
            if self._closed or self._broken is not None:
                self._check_open()
            now = time.monotonic()
            behind = self._behind
            behind.append(now)
            self._queue.put(row)
            while behind and (len(behind) > BEHIND_ROWS or now - behind[0] > BEHIND_S):
                if self._broken is not None or not self._thread.is_alive():
                    self._fail()  # the rows behind will never be committed
                # Past the bound: the thread should commit now, not gather, and this writer waits for it
                # (the thread may be starved of CPU: piling up more rows would only widen what a crash loses).
                self._waited_for.set()
                self._committed.wait(0.5)
                now = time.monotonic()

    def call(self, work: Callable[[Tx], T], *, write: bool = True, durable: bool = False) -> T:
        """Run ``work`` in a transaction of its own, after every row and job queued before it."""
        job: _Job[T] = _Job(work, write, durable)
        with self._committed:
            self._check_open()
            self._queue.put(job)
        self._waited_for.set()
        while not job.done.wait(1.0):
            if not self._thread.is_alive():
                self._fail()
        if job.error is not None:
            if isinstance(job.error, StoreError | ValueError | LookupError):
                raise job.error
            raise StoreError(f"the store {self.backend.shown}: {job.error}") from job.error
        result: T = job.result
        return result

    def close(self) -> None:
        """Write what is queued, end the thread; every write or job after this raises StoreError."""
        with self._committed:
            stop = not self._closed and self._thread.is_alive()
            self._closed = True
            if stop:
                self._queue.put(_STOP)
        self._waited_for.set()
        self._thread.join()
        if self._broken is not None:
            self._fail()

    def dropped(self) -> None:
        """The store was dropped unclosed: let the thread write what is queued and end (safe in a finalizer)."""
        self._queue.put(_STOP)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store {self.backend.shown} is closed: nothing more can be written to it or read")
        if self._broken is not None:
            self._fail()

    def _fail(self) -> None:
        raise StoreError(f"the store {self.backend.shown} failed: {self._broken}") from self._broken

    # -- the thread -----------------------------------------------------------------------------

    def _work(self, ready: threading.Event) -> None:
        try:
            conn = self.backend.connect()
            self._migrate(conn)
            self.holder = self.backend.holder(conn)
        except Exception as exc:
            self._broken = exc
            ready.set()
            return
        ready.set()
        try:
            self._serve(conn)
        finally:
            try:
                conn.close()
            finally:
                self.backend.closed()
                with self._committed:  # a writer waiting for a commit that will not come: it raises
                    self._committed.notify_all()

    def _serve(self, conn: Any) -> None:
        tx = Tx(conn, self.backend)
        pending: Any = None
        while True:
            item = self._queue.get() if pending is None else pending
            pending = None
            if item is _STOP:
                return
            if isinstance(item, _Job):
                self._run(tx, item)
                continue
            batch = [item]
            # Group commit: let the rows of the next moments join this one's transaction. One commit of
            # many rows costs about what one of a single row does, and the wait holds no lock. A job
            # queued meanwhile, or a writer past the bound, ends the wait: someone is waiting for these rows.
            if self._waited_for.wait(GATHER_S):
                self._waited_for.clear()
            while len(batch) < BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(more, _Job) or more is _STOP:
                    pending = more
                    break
                batch.append(more)
            try:
                self._write_batch(tx, batch)
            except Exception as exc:
                log.exception("%d records could not be written to %s", len(batch), self.backend.shown)
                self._broken = exc
                if isinstance(pending, _Job):  # not _STOP: a close() waits on the thread, not on a job
                    pending.error = StoreError(f"the store {self.backend.shown} failed: {exc}")
                    pending.done.set()
                return
            self._written(len(batch))

    def _written(self, count: int) -> None:
        """``count`` rows, the oldest written behind, are committed: wake the writers waiting for them."""
        now = time.monotonic()
        with self._guard:
            behind = self._behind
            self.behind_max_s = max(self.behind_max_s, now - behind[0])
            for _ in range(count):
                behind.popleft()
            self._committed.notify_all()

    def _write_batch(self, tx: Tx, batch: list[Any]) -> None:
        self._transaction(tx, lambda t: self._rows_written(t, batch), write=True, durable=False)

    def _run(self, tx: Tx, job: _Job[Any]) -> None:
        try:
            job.result = self._transaction(tx, job.work, write=job.write, durable=job.durable)
        except BaseException as exc:
            job.error = exc
        finally:
            job.done.set()

    def _transaction(self, tx: Tx, work: Callable[[Tx], T], *, write: bool, durable: bool) -> T:
        tx.undo.clear()
        tx.told = 0
        self.backend.begin(tx.conn, write=write, durable=durable)
        try:
            result = work(tx)
        except BaseException:
            _forget(tx)
            self.backend.end(tx.conn, write=write, commit=False, durable=durable)
            raise
        try:
            self.backend.end(tx.conn, write=write, commit=True, durable=durable)
        except BaseException:
            _forget(tx)
            raise
        if tx.told and self.on_written is not None:
            _wake(self.on_written)
        return result

    def _migrate(self, conn: Any) -> None:
        tx = Tx(conn, self.backend)

        def migrate(t: Tx) -> None:
            self.backend.migration_lock(conn)
            t.run(
                "CREATE TABLE IF NOT EXISTS schema_version "
                f"(version INTEGER NOT NULL, applied {self.backend.types['real']} NOT NULL, description TEXT NOT NULL)"
            )
            found = t.row("SELECT max(version) FROM schema_version")
            version = int(found[0]) if found and found[0] is not None else 0
            latest = self.migrations[-1].version
            if version > latest:
                raise StoreError(
                    f"the store {self.backend.shown} has schema version {version}, newer than this floorflow "
                    f"knows ({latest}): upgrade floorflow"
                )
            for migration in self.migrations:
                if migration.version > version:
                    apply(t, migration, self.backend)

        self._transaction(tx, migrate, write=True, durable=True)


def _wake(on_written: Callable[[], None]) -> None:
    try:
        on_written()
    except Exception:  # the commit stands: a reader that failed to wake is no reason to fail the writer
        log.exception("the store's on_written callback failed")


def _forget(tx: Tx) -> None:
    """The transaction did not commit: forget what was remembered of the rows written in it."""
    for forget in tx.undo:
        forget()
    tx.undo.clear()


def apply(tx: Tx, migration: Migration, backend: Backend) -> None:
    for statement in migration.statements:
        tx.run(statement.format(**backend.types))
    tx.run(
        "INSERT INTO schema_version (version, applied, description) VALUES (?, ?, ?)",
        (migration.version, time.time(), migration.description),
    )
