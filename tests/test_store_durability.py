"""Stopping without losing anything, on SQLite and on PostgreSQL.

A closed store refuses every write out loud; what is written behind is bounded by count and by age;
lot holds and unit finishes are durable; a killed station, also one that is a zombie not yet reaped,
counts as dead for the next one; and on PostgreSQL a killed station's last commit, still running on
the server, is kept, and never taken for an interrupted step.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import storekit
from storekit import attempt, claim, until_gone

from engine.outcome import Outcome
from engine.store import SqlStore, StoreError, open_store, worker
from engine.store.recovery import recover_holder

store_url = storekit.store_url

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 60.0
"""How long a test waits for something that must happen (never a measure of speed)."""


def _wait_for(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.01)


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


# -- a closed store --------------------------------------------------------------------------------------------


WRITES: dict[str, Callable[[SqlStore], object]] = {
    "add (written behind)": lambda s: s.add(attempt("SN1", "boot")),
    "add closing an intent": lambda s: s.add(attempt("SN1", "burn"), intent=1),
    "add with a quarantine": lambda s: s.add(attempt("SN1", "burn", Outcome.ERROR), quarantine="why"),
    "intend": lambda s: s.intend(attempt("SN1", "burn", Outcome.ERROR, duration=0)),
    "claim": lambda s: claim(s, "SN2"),
    "finish": lambda s: s.finish("SN1", "shipped", None, "Packed"),
    "hold_lot": lambda s: s.hold_lot("LOT-1", "recall"),
    "lot_failed": lambda s: s.lot_failed("LOT-1", "sample"),
    "issue": lambda s: s.issue("imei", "SN1", space="x", pool="p", first=0, last=9, make=str, what="pool"),
    "release": lambda s: s.release("SN1", "done", "qa"),
    "release_recipe": lambda s: s.release_recipe("r", 1, "hash", "r.yaml", "eng"),
    "recover": lambda s: s.recover(),
    "flush": lambda s: s.flush(),
    "unit": lambda s: s.unit("SN1"),
}


def test_every_write_after_close_raises_and_nothing_changes(store_url: str) -> None:
    """After close(), each way of writing (and reading) raises StoreError saying the store is closed."""
    store = open_store(store_url)
    assert claim(store, "SN1") is None
    store.add(attempt("SN1", "before"))
    store.close()
    for name, write in WRITES.items():
        with pytest.raises(StoreError, match=r"is closed: nothing more can be written"):
            write(store)
        assert name
    store.close()  # closing twice is harmless
    until_gone(store.holder)
    with open_store(store_url) as again:
        record = again.unit("SN1")
        assert [a.stage for a in record.attempts] == ["before"]
        assert again.lots() == [] and again.unit("SN2").attempts == []


def test_a_writer_racing_close_is_either_written_or_told(store_url: str) -> None:
    """Adds racing close() from other threads: each add either raised StoreError or its row is in the store."""
    store = open_store(store_url)
    written: list[list[str]] = [[], [], []]
    refused: list[int] = [0, 0, 0]

    def writer(k: int) -> None:
        for i in range(100_000):
            try:
                store.add(attempt(f"SN{k}", f"s{i}"))
            except StoreError:
                refused[k] += 1
                return
            written[k].append(f"s{i}")

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    _wait_for("every writer has written", lambda: all(len(w) > 50 for w in written))
    store.close()
    for t in threads:
        t.join(DEADLINE_S)
    until_gone(store.holder)
    with open_store(store_url) as again:
        for k in range(3):
            assert refused[k] == 1
            assert [a.stage for a in again.unit(f"SN{k}").attempts] == written[k]


# -- what is written behind: bounded -----------------------------------------------------------------------------


class _Clock:
    """The worker's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class _WatchedCondition(threading.Condition):
    """The worker's condition: says when a writer starts to wait for a commit."""

    def __init__(self, lock: threading.Lock) -> None:
        super().__init__(lock)
        self.writer_waits = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        if threading.current_thread().name == "writer":
            self.writer_waits.set()
        return super().wait(timeout)


def _stalled(store: SqlStore) -> tuple[threading.Event, threading.Thread, _WatchedCondition]:
    """Keep the store's thread busy in a job (as a starved thread would be), and watch for waiting writers."""
    gate = threading.Event()
    entered = threading.Event()

    def hold(tx: object) -> None:
        entered.set()
        gate.wait(DEADLINE_S)

    busy = threading.Thread(target=lambda: store._worker.call(hold), daemon=True)
    busy.start()
    assert entered.wait(DEADLINE_S)
    watched = store._worker._committed = _WatchedCondition(store._worker._guard)
    return gate, busy, watched


def test_a_writer_waits_once_the_count_bound_is_reached(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the store's thread stalled, add() returns BEHIND_ROWS times, then waits until the rows are committed."""
    monkeypatch.setattr(worker, "BEHIND_S", 3600.0)  # only the count bounds this test
    store = open_store(store_url)
    try:
        gate, busy, watched = _stalled(store)
        returned: list[int] = []
        total = worker.BEHIND_ROWS + 10

        def write() -> None:
            for i in range(total):
                store.add(attempt("SN1", f"s{i}"))
                returned.append(i)

        writer = threading.Thread(target=write, name="writer", daemon=True)
        writer.start()
        assert watched.writer_waits.wait(DEADLINE_S), "the writer never waited"
        assert len(returned) == worker.BEHIND_ROWS  # the next add is waiting: never more than the bound
        assert len(store._worker._behind) == worker.BEHIND_ROWS + 1
        gate.set()
        writer.join(DEADLINE_S)
        busy.join(DEADLINE_S)
        assert len(returned) == total
        store.flush()
        assert [a.stage for a in store.unit("SN1").attempts] == [f"s{i}" for i in range(total)]
        assert not store._worker._behind
    finally:
        store.close()


def test_a_writer_waits_for_a_row_older_than_the_time_bound(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row handed over longer ago than BEHIND_S and not committed: the next add() waits for it (a set clock)."""
    clock = _Clock()
    monkeypatch.setattr(worker, "time", clock)
    store = open_store(store_url)
    try:
        gate, busy, watched = _stalled(store)
        returned: list[str] = []
        moved = threading.Event()

        def write() -> None:
            store.add(attempt("SN1", "young"))
            returned.append("young")
            moved.wait(DEADLINE_S)
            store.add(attempt("SN1", "late"))
            returned.append("late")

        writer = threading.Thread(target=write, name="writer", daemon=True)
        writer.start()
        _wait_for("the first add", lambda: returned == ["young"])
        assert not watched.writer_waits.is_set()  # one young row: within both bounds
        clock.now += worker.BEHIND_S * 1.5
        moved.set()
        assert watched.writer_waits.wait(DEADLINE_S), "the writer never waited"
        assert returned == ["young"]
        gate.set()
        writer.join(DEADLINE_S)
        busy.join(DEADLINE_S)
        assert returned == ["young", "late"]
        assert store.write_behind_max_s == pytest.approx(worker.BEHIND_S * 1.5)
    finally:
        store.close()


# -- durable holds and finishes ------------------------------------------------------------------------------------


def _durability_of(store: SqlStore, call: Callable[[SqlStore], object]) -> list[bool]:
    """Whether each write transaction ``call`` begins is a durable one."""
    begun: list[bool] = []
    begin = store.backend.begin

    def spy(conn: Any, *, write: bool, durable: bool) -> None:
        if write:
            begun.append(durable)
        begin(conn, write=write, durable=durable)

    store.backend.begin = spy  # type: ignore[method-assign]
    try:
        call(store)
    finally:
        store.backend.begin = begin  # type: ignore[method-assign]
    return begun


@pytest.mark.parametrize("what", ["hold_lot", "finish"])
def test_lot_holds_and_unit_finishes_are_committed_durably(store_url: str, what: str) -> None:
    """A lot's hold and a unit leaving the station commit durably (synchronous=FULL, synchronous_commit=on)."""
    with open_store(store_url) as store:
        assert claim(store, "SN1", lot="LOT-1") is None
        if what == "hold_lot":
            begun = _durability_of(store, lambda s: s.hold_lot("LOT-1", "3 sampled units failed 'rf'"))
        else:
            begun = _durability_of(store, lambda s: s.finish("SN1", "shipped", None, "Packed"))
        assert begun == [True]


HOLD_THEN_DIE = """
import os, signal, sys
from engine.store import open_store
store = open_store(sys.argv[1])
store.hold_lot("LOT-7", "3 sampled units failed 'rf_check' (recall threshold 3)")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_lot_hold_survives_a_kill_right_after_hold_lot_returns(store_url: str) -> None:
    """A station process that holds a lot and is SIGKILLed the moment hold_lot returns: the hold is in the store."""
    child = _python(HOLD_THEN_DIE, store_url)
    _, err = child.communicate(timeout=DEADLINE_S)
    assert child.returncode == -signal.SIGKILL, err
    with open_store(store_url) as store:
        assert store.lot_hold("LOT-7") == "3 sampled units failed 'rf_check' (recall threshold 3)"


# -- a killed station that is a zombie --------------------------------------------------------------------------


CLAIM_THEN_EXIT = """
import os, sys
from engine.store import open_store
store = open_store(sys.argv[1])
_, refused = store.claim("SN1", station="dying", lot=None, product=None, decide=lambda record, hold: None)
assert refused is None, refused
with open(sys.argv[2], "w") as out:
    out.write(store.holder)
os._exit(0)  # no close: the claim stays, held by this process
"""


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def test_a_claim_held_by_a_zombie_is_taken_over(store_url: str, tmp_path: Path) -> None:
    """A station that ended but is not yet reaped by its parent (a zombie) is dead: its claim is taken over."""
    said = tmp_path / "holder"
    pid = os.posix_spawn(sys.executable, [sys.executable, "-c", CLAIM_THEN_EXIT, store_url, str(said)], os.environ)
    try:
        _wait_for("the child to end, unreaped", lambda: _state(pid) == "Z")
        holder = said.read_text()
        if holder.startswith("pg:"):
            until_gone(holder)  # the kernel closed the zombie's socket: the server ends its backend
        else:
            assert holder.split(":")[1] == str(pid)
        with open_store(store_url) as store:
            assert _state(pid) == "Z"  # still unreaped: its pid is still taken
            assert claim(store, "SN1", station="next") is None
            assert store.recover() == []
    finally:
        os.waitpid(pid, 0)


# -- PostgreSQL: a killed station's last commit ---------------------------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema's URL: for what only the server's side of a station shows."""
    with storekit.postgres_schema() as url:
        yield url


SLOW_COMMIT = (
    "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN PERFORM pg_sleep(4); RETURN NULL; END $$",
    "CREATE CONSTRAINT TRIGGER slow_outcome AFTER UPDATE ON intents DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW WHEN (NEW.outcome IS NOT NULL) EXECUTE FUNCTION slow_commit()",
)
"""An outcome's COMMIT that takes the server 4 s (as a loaded server may): the client can die during it."""

INTEND_THEN_PASS = """
import sys
from engine.outcome import Outcome
from engine.record import Attempt, RecipeRef
from engine.store import open_store
store = open_store(sys.argv[1])
_, refused = store.claim("SN1", station="dying", lot=None, product=None, decide=lambda record, hold: None)
assert refused is None, refused
start = Attempt("SN1", "burn", "lab.burn", 1, Outcome.ERROR, 1.0, 1.0, RecipeRef("r", 1, "h"), None, "dying", 1,
                None, (), None, None)
intent = store.intend(start)
print(store.holder, flush=True)
store.add(start._replace(outcome=Outcome.PASS, ended=2.0), intent=intent)
"""


def test_postgresql_keeps_a_killed_stations_last_commit_and_quarantines_nothing(pg_url: str) -> None:
    """A station killed while the server commits its step's outcome: until its backend ends it counts as alive;
    the outcome it committed is kept; no recovery, even one that wrongly took it for dead, quarantines the unit."""
    store_url = pg_url
    with open_store(store_url) as store:
        for statement in SLOW_COMMIT:
            store._worker.call(lambda tx, sql=statement: tx.run(sql))
        child = _python(INTEND_THEN_PASS, store_url)
        try:
            assert child.stdout is not None
            holder = child.stdout.readline().strip()
            assert holder.startswith("pg:"), child.communicate()[1]
            backend = int(holder.split(":")[1])
            committing = "SELECT 1 FROM pg_stat_activity WHERE pid = ? AND state = 'active' AND query = 'COMMIT'"
            _wait_for("the outcome's COMMIT", lambda: store._worker.call(lambda tx: tx.row(committing, (backend,))))
        finally:
            child.kill()
            child.communicate()
        # The station is dead; its backend is still committing.
        refused = claim(store, "SN1", station="next")
        assert refused is not None and refused.startswith("route interlock: the unit is being run")
        assert store.recover() == []
        # A recovery that takes the holder for dead waits for the commit, and finds nothing left open.
        assert store._worker.call(lambda tx: recover_holder(tx, store._write, holder)) == []
        until_gone(holder)
        assert store.recover() == []
        record = store.unit("SN1")
        assert record.status == "in-route"
        assert [(a.stage, a.outcome) for a in record.attempts] == [("burn", Outcome.PASS)]
        assert claim(store, "SN1", station="next") is None


def test_postgresql_ends_a_vanished_stations_backend_within_seconds(pg_url: str) -> None:
    """The station's connection asks the server for TCP keepalives, so a station whose machine vanished
    (no close ever arrives) stops holding its claims after ~25 s, not the system's two hours."""
    with open_store(pg_url) as store:
        names = ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")
        shown = store._worker.call(lambda tx: [tx.row(f"SHOW {n}") for n in names], write=False)
        assert [int(v[0]) for v in shown] == [10, 5, 3]
