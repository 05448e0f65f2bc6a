"""Many processes on one store, on SQLite and on PostgreSQL: identity pools and the route interlock under load.

Each station is a process of its own (``python -c``, importing only ``engine.store``) with a store of
its own. They meet at file barriers in a directory: each says it is ready, and all start together when
the test says go, so they really do race.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import storekit
from storekit import claim

from engine.store import SqlStore, open_store
from engine.store.migrations import LATEST

store_url = storekit.store_url

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 150.0
POOL, LAST = "race-pool", 49_999

CHILD = """
import json, os, sys, time
from engine.store import open_store

SYNC = sys.argv[2]
POOL, LAST = "race-pool", 49_999

def arrive(name):
    open(os.path.join(SYNC, name), "w").close()

def wait_for(name):
    path, deadline = os.path.join(SYNC, name), time.monotonic() + 120
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit("nobody said " + name)
        time.sleep(0.001)

def race_value(n):
    return f"RACE-{n:06d}"
"""

ISSUE = (
    CHILD
    + """
url, me, count = sys.argv[1], sys.argv[3], int(sys.argv[4])
with open_store(url) as store:
    arrive("ready-" + me)
    wait_for("go")
    values = [
        store.issue("imei", f"{me}-{i:05d}", space="race", pool=POOL, first=0, last=LAST, make=race_value,
                    what="race pool")
        for i in range(count)
    ]
print(json.dumps({"me": me, "values": values}))
"""
)

CLAIM = (
    CHILD
    + """
url, me, serial = sys.argv[1], sys.argv[3], sys.argv[4]
with open_store(url) as store:
    arrive("ready-" + me)
    wait_for("go")
    _, refused = store.claim(serial, station=me, lot=None, product=None, decide=lambda record, hold: None)
    arrive("tried-" + me)
    wait_for("done")  # the winner holds the unit until every station has tried
    if refused is None:
        store.finish(serial, "in-route", None)
print(json.dumps({"me": me, "holder": store.holder, "refused": refused}))
"""
)


def race_value(n: int) -> str:
    return f"RACE-{n:06d}"


def issue(store: SqlStore, serial: str) -> str:
    return store.issue("imei", serial, space="race", pool=POOL, first=0, last=LAST, make=race_value, what="race pool")


def _stations(
    code: str, url: str, sync: Path, args: Sequence[tuple[str, ...]], barriers: Sequence[tuple[str, str]]
) -> list[Any]:
    """Run one process per ``args``; for each (arrived, release) barrier wait until all arrived, then release."""
    sync.mkdir()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, url, str(sync), *a],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for a in args
    ]
    try:
        for arrived, release in barriers:
            deadline = time.monotonic() + TIMEOUT_S
            while len(list(sync.glob(f"{arrived}-*"))) < len(processes):
                failed = [p for p in processes if p.poll() not in (None, 0)]
                assert not failed, failed[0].communicate()[1]
                assert time.monotonic() < deadline, f"not every station reached '{arrived}'"
                time.sleep(0.005)
            (sync / release).touch()
        outputs = [p.communicate(timeout=TIMEOUT_S) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(processes, outputs, strict=True):
        assert p.returncode == 0, err
    return [json.loads(out) for out, _ in outputs]


def test_sixteen_processes_share_one_identity_pool_without_a_duplicate(store_url: str, tmp_path: Path) -> None:
    """16 stations issue 10,000 identities from one pool at once: all distinct, none skipped, counter exact."""
    processes, each = 16, 625
    names = [f"P{i:02d}" for i in range(processes)]
    # The store is created by the racing stations themselves: their first opens migrate it, once.
    got = _stations(ISSUE, store_url, tmp_path / "sync", [(n, str(each)) for n in names], [("ready", "go")])
    issued = {r["me"]: r["values"] for r in got}
    assert sorted(issued) == names
    everything = [v for values in issued.values() for v in values]
    assert len(everything) == processes * each == 10_000
    assert len(set(everything)) == 10_000  # no value issued twice
    assert set(everything) == {race_value(n) for n in range(10_000)}  # and none skipped: the counter is exact
    for values in issued.values():
        assert len(values) == each and values == sorted(values)  # each station takes the pool in order
    with open_store(store_url) as store:
        assert store.schema_version() == LATEST
        assert store.remaining(POOL, 0, LAST) == LAST + 1 - 10_000
        for name in ("P00", "P07", "P15"):
            for i in (0, 311, each - 1):
                serial = f"{name}-{i:05d}"
                [identity] = store.unit(serial).identities
                assert identity.value == issued[name][i]
                assert issue(store, serial) == issued[name][i]  # asked again: the same value
        assert issue(store, "AFTER") == race_value(10_000)


def test_eight_processes_racing_for_one_unit_one_wins(store_url: str, tmp_path: Path) -> None:
    """8 stations claim the same unit at the same moment: one holds it, 7 are refused by the route interlock."""
    processes = 8
    with open_store(store_url) as store:
        assert store.units() == []
    names = [f"station-{i}" for i in range(processes)]
    got = _stations(
        CLAIM, store_url, tmp_path / "sync", [(n, "RACE-1") for n in names], [("ready", "go"), ("tried", "done")]
    )
    winners = [r for r in got if r["refused"] is None]
    assert len(winners) == 1, got
    [winner] = winners
    refusals = [r["refused"] for r in got if r["refused"] is not None]
    assert len(refusals) == processes - 1
    for refused in refusals:
        assert refused.startswith(f"route interlock: the unit is being run at station {winner['me']} since ")
        assert refused.endswith(f"({winner['holder']})")
    assert len({r["holder"] for r in got}) == processes  # eight distinct stations
    with open_store(store_url) as store:
        assert [u.serial for u in store.units()] == ["RACE-1"]
        assert store.unit("RACE-1").status == "in-route"
        assert claim(store, "RACE-1") is None  # the winner finished: the claim is free again
