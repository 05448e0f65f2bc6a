"""Throughput of the durable store (SQLite, PostgreSQL), and the engine's per-step overhead with it.

Records: stage attempts as the runner makes them (``engine.record.Attempt``), each with one
measurement (value, verdict, units, limits) and realistic fields (recipe reference with a SHA-256
content hash, lot, station, slot, operator, device id). Units have 20 stages (``--stages``) of
varied step types. The attempts are built before the clock starts: what is timed is the store.

``sqlite_records_per_s``: one process writes ``--records`` attempts (default 20,000) through
``SqlStore.add`` into a fresh SQLite file in a temporary directory; the clock stops when ``flush()``
returns, i.e. when the last of them is committed. Only adds: no claims.

``pg_records_per_s_1`` and ``pg_records_per_s_16``: the same into PostgreSQL (``--pg``), in a fresh
schema the benchmark creates and drops (``?options=-csearch_path%3D<schema>``), by 1 and by 16
station processes at once (multiprocessing, spawn). Each station opens its own store and runs its
own units as a station does: ``claim`` (the route interlock, a transaction waited for), the unit's
attempts through ``add`` (written behind), ``finish`` (waited for; it commits after every attempt
before it). About ``--pg-records`` attempts per run in all (default 20,000), split between the
stations. The stations wait on one barrier; the figure is the attempts of all stations over the wall
time from the barrier to the last station's last ``flush()``. Only attempts are counted. When the
server cannot be reached, a note says so and the PostgreSQL figures are null.

``write_behind_max_ms``: the worst time, in milliseconds, from an attempt handed to ``add`` to its
commit, with every core kept busy by a spinning process (bench/writebehind.py): 4 threads add
``--records`` attempts into a fresh SQLite store, and into PostgreSQL when it is reachable, ``--runs``
times each; the worst of all (``write_behind_max_ms_sqlite``, ``…_pg``: each backend's).

``us_per_step_durable_sqlite``: bench/overhead.py's benchmark (a generated recipe of ``--steps``
trivial stages, one range-checked measurement each, one ``StationRunner``, a null Line, a fresh unit
per run) with the runner's history a durable SQLite store (``open_store("sqlite:///<tmp>/bench.db")``)
instead of the store in memory (``sqlite://``): wall time of ``runner.run`` plus a final ``flush()``
(the unit's ``finish`` already waits until every attempt is committed) over the steps. With the same
code as bench/overhead.py: ``us_per_step_memory`` (the store in memory) and ``openhtf_us_per_phase``. These three
run in ``--rounds`` rounds (default 15) of one run each, one right after the other, so that each
round compares runs made under the same load on the host; ``ratio_vs_openhtf_durable`` is the median
of the rounds' ratios, OpenHTF's time over the durable one's.

    python bench/store.py [--records N] [--pg-records N] [--stages N] [--steps N] [--runs N]
                          [--rounds N] [--pg URL | --no-pg]

The throughput figures are the median of ``--runs`` runs (default 5), the per-step ones of the
rounds. The last line printed is one JSON object:
``{"sqlite_records_per_s": …, "pg_records_per_s_1": …, "pg_records_per_s_16": …,
"us_per_step_durable_sqlite": …, "ratio_vs_openhtf_durable": …, "write_behind_max_ms": …, …}``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import multiprocessing
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from faultkit import cpu_burners  # the tests' one spinning process per core
from overhead import floorflow_timer, openhtf_timer
from storerecords import PRODUCT, admit, many_attempts, unit_attempts
from writebehind import write_behind_max_ms

from engine.record import Attempt
from engine.store import open_store

TARGET_PG_16 = 2000.0
"""Attempts per second that 16 stations must be able to write to one PostgreSQL server."""
TARGET_RATIO = 20.0
"""How many times cheaper per step than OpenHTF the engine must stay with a durable SQLite record."""
DEFAULT_PG = "postgresql://postgres@127.0.0.1/test"
STATIONS = (1, 16)

# -- SQLite, one process, adds only ------------------------------------------------------------------


def sqlite_records_per_s(records: int, stages: int, run: int) -> float:
    attempts = many_attempts(records, stages, f"SQ{run:02d}")
    with tempfile.TemporaryDirectory(prefix="floorflow-bench-store-") as tmp:
        path = Path(tmp) / "records.db"
        store = open_store(f"sqlite:///{path}")
        try:
            add = store.add
            gc.collect()
            start = time.perf_counter()
            for attempt in attempts:
                add(attempt)
            store.flush()
            elapsed = time.perf_counter() - start
        finally:
            store.close()
        with contextlib.closing(sqlite3.connect(path)) as conn:
            (count,) = conn.execute("SELECT count(*) FROM attempts").fetchone()
    if count != records:
        raise SystemExit(f"error: {records} attempts were added, the SQLite file has {count}")
    return records / elapsed


# -- PostgreSQL, N station processes -----------------------------------------------------------------


def with_search_path(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def pg_schema(url: str) -> Iterator[str | None]:
    """A fresh schema's URL, dropped afterwards; None (and a note printed) when the server is unreachable."""
    try:
        import psycopg
    except ImportError as exc:
        print(f"note: PostgreSQL figures are null: psycopg is not importable ({exc})")
        yield None
        return
    schema = f"floorflow_bench_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except Exception as exc:
        print(f"note: PostgreSQL at {url} is unreachable ({type(exc).__name__}: {exc}); its figures are null")
        yield None
        return
    try:
        yield with_search_path(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def station_main(
    url: str, tag: str, index: int, units: int, stages: int, runs: int, barrier: Any, results: Any
) -> None:
    """One station process: ``runs`` times, wait on the barrier, then claim, add and finish its units."""
    station = f"st-{index:02d}"
    lot = f"LOT-PG-{index % 4}"
    try:
        with open_store(url) as store:
            for run in range(runs):
                work: list[tuple[str, list[Attempt]]] = []
                for u in range(units):
                    serial = f"PG{tag}R{run:02d}S{index:02d}U{u:05d}"
                    t0 = 1.7e9 + u * 60
                    work.append(
                        (serial, unit_attempts(serial, stages=stages, lot=lot, station=station, slot=u % 4, t0=t0))
                    )
                gc.collect()
                barrier.wait(timeout=300)
                start = time.perf_counter()  # CLOCK_MONOTONIC: comparable between processes
                for serial, attempts in work:
                    _, refused = store.claim(serial, station=station, lot=lot, product=PRODUCT, decide=admit)
                    if refused is not None:
                        raise RuntimeError(f"{serial} was refused: {refused}")
                    for attempt in attempts:
                        store.add(attempt)
                    store.finish(serial, "shipped", None, "Packed")
                store.flush()
                end = time.perf_counter()
                results.put((index, run, start, end, sum(len(a) for _, a in work), None))
    except BaseException as exc:
        results.put((index, -1, 0.0, 0.0, 0, f"{type(exc).__name__}: {exc}"))
        barrier.abort()


def pg_records_per_s(url: str, stations: int, records: int, stages: int, runs: int) -> list[float]:
    """Attempts per second of ``stations`` processes together, each run."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(stations)
    results = ctx.Queue()
    units = max(1, round(records / (stations * stages)))
    procs = [
        ctx.Process(
            target=station_main,
            args=(url, f"{stations:02d}", i, units, stages, runs, barrier, results),
            name=f"station-{i}",
        )
        for i in range(stations)
    ]
    for p in procs:
        p.start()
    per_run: dict[int, list[tuple[float, float, int]]] = {}
    try:
        for _ in range(stations * runs):
            index, run, start, end, count, error = results.get(timeout=900)
            if error is not None:
                raise SystemExit(f"error: PostgreSQL station {index} failed: {error}")
            per_run.setdefault(run, []).append((start, end, count))
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
    rates: list[float] = []
    for run in range(runs):
        rows = per_run[run]
        wall = max(end for _, end, _ in rows) - min(start for start, _, _ in rows)
        rates.append(sum(count for _, _, count in rows) / wall)
    return rates


def count_pg_attempts(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        found = conn.execute("SELECT count(*) FROM attempts").fetchone()
    return int(found[0]) if found else 0


def write_behind_figures(records: int, stages: int, runs: int, pg_url: str | None) -> dict[str, float | None]:
    """Each backend's worst write-behind wait over ``runs`` runs, in ms, with every core kept busy."""
    worst: dict[str, float | None] = {"sqlite": None, "pg": None}
    with tempfile.TemporaryDirectory(prefix="floorflow-bench-store-") as tmp, cpu_burners():
        for run in range(runs):
            attempts = many_attempts(records, stages, f"WB{run:02d}")
            for name, url in (("sqlite", f"sqlite:///{tmp}/behind-{run}.db"), ("pg", pg_url)):
                if url is not None:
                    worst[name] = max(worst[name] or 0.0, write_behind_max_ms(url, attempts))
    return worst


# -- the runner with a durable SQLite record ----------------------------------------------------------


@dataclass
class PerStep:
    """Microseconds per step of each round's runs; ``ratios`` are OpenHTF's over the durable run's, per round."""

    memory: list[float] = field(default_factory=list)
    durable: list[float] = field(default_factory=list)
    openhtf: list[float] | None = None
    openhtf_label: str = ""
    ratios: list[float] = field(default_factory=list)


def time_per_step(steps: int, rounds: int) -> PerStep:
    """Rounds of one run each: memory record, durable SQLite record, OpenHTF, one right after the other.

    Each round's ratio compares runs made within the same second, under the same load on the host.
    """
    figures = PerStep()
    memory = floorflow_timer(steps)
    htf, figures.openhtf_label = openhtf_timer(steps)
    figures.openhtf = None if htf is None else []
    with (
        tempfile.TemporaryDirectory(prefix="floorflow-bench-store-") as tmp,
        open_store(f"sqlite:///{tmp}/bench.db") as store,
    ):
        durable = floorflow_timer(steps, store)
        for k in range(rounds):
            figures.memory.append(memory(f"MEMORY{k:04d}"))
            figures.durable.append(durable(f"DURABLE{k:04d}"))
            if htf is not None and figures.openhtf is not None:
                figures.openhtf.append(htf())
                figures.ratios.append(figures.openhtf[-1] / figures.durable[-1])
    return figures


# -- output ---------------------------------------------------------------------------------------------


def _row(name: str, values: list[float], unit: str, fmt: str) -> str:
    median = statistics.median(values)
    spread = f"min {min(values):{fmt}}  max {max(values):{fmt}}"
    return f"{name:<40} median {median:>10{fmt}} {unit:<10} ({spread})"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20_000, metavar="N", help="SQLite: attempts per run (20,000)")
    parser.add_argument(
        "--pg-records", type=int, default=20_000, metavar="N", help="PostgreSQL: attempts per run, all stations"
    )
    parser.add_argument("--stages", type=int, default=20, metavar="N", help="attempts per unit (default: 20)")
    parser.add_argument("--steps", type=int, default=1000, metavar="N", help="overhead: steps per run (1000)")
    parser.add_argument("--runs", type=int, default=5, metavar="N", help="runs per throughput figure (default: 5)")
    parser.add_argument(
        "--rounds", type=int, default=15, metavar="N", help="per-step figures: rounds of the three runs (default: 15)"
    )
    parser.add_argument("--pg", default=DEFAULT_PG, metavar="URL", help=f"PostgreSQL server (default: {DEFAULT_PG})")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL (its figures are null)")
    args = parser.parse_args(argv)
    for name in ("records", "pg_records", "stages", "steps", "runs", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")

    began = time.perf_counter()
    figures: dict[str, Any] = {}
    print(f"per step: {args.rounds} rounds; throughput: {args.runs} runs per figure; medians\n")

    # The per-step figures first: the PostgreSQL server's after-work (checkpoints, autovacuum) must not
    # land on them.
    per_step = time_per_step(args.steps, args.rounds)
    print(_row(f"runner, {args.steps} steps, memory record", per_step.memory, "us/step", ".2f"))
    print(_row(f"runner, {args.steps} steps, SQLite record", per_step.durable, "us/step", ".2f"))
    if per_step.openhtf is not None:
        print(_row(f"{per_step.openhtf_label}, {args.steps} phases", per_step.openhtf, "us/phase", ".2f"))
        print(_row("OpenHTF / SQLite record, per round", per_step.ratios, "times", ".2f"))
    else:
        print(f"note: {per_step.openhtf_label}; the OpenHTF figures are null")

    print()
    sqlite = [sqlite_records_per_s(args.records, args.stages, run) for run in range(args.runs)]
    figures["sqlite_records_per_s"] = round(statistics.median(sqlite))
    print(_row(f"SQLite, 1 process, {args.records} adds", sqlite, "records/s", ".0f"))

    pg: dict[int, float | None] = dict.fromkeys(STATIONS)
    pg_counts: dict[int, int] = {}
    if args.no_pg:
        print("note: --no-pg: the PostgreSQL figures are null")
    else:
        with pg_schema(args.pg) as url:
            if url is not None:
                open_store(url).close()  # migrate once, before the stations open it together
                written = 0
                for stations in STATIONS:
                    rates = pg_records_per_s(url, stations, args.pg_records, args.stages, args.runs)
                    units = max(1, round(args.pg_records / (stations * args.stages)))
                    pg_counts[stations] = stations * units * args.stages
                    written += pg_counts[stations] * args.runs
                    pg[stations] = statistics.median(rates)
                    label = f"PostgreSQL, {stations} station{'s' if stations > 1 else ''}, {pg_counts[stations]} adds"
                    print(_row(label, rates, "records/s", ".0f"))
                found = count_pg_attempts(url)
                if found != written:
                    raise SystemExit(f"error: {written} attempts were added to PostgreSQL, it has {found}")
            behind = write_behind_figures(args.records, args.stages, args.runs, url)
    if args.no_pg:
        behind = write_behind_figures(args.records, args.stages, args.runs, None)
    print()
    for name, worst in behind.items():
        figures[f"write_behind_max_ms_{name}"] = None if worst is None else round(worst, 1)
        if worst is not None:
            print(f"{'write behind, ' + name + ', every core busy':<40} worst {worst:>10.1f} ms from add to commit")
    figures["write_behind_max_ms"] = round(max(w for w in behind.values() if w is not None), 1)
    for stations in STATIONS:
        value = pg[stations]
        figures[f"pg_records_per_s_{stations}"] = None if value is None else round(value)

    durable_us = statistics.median(per_step.durable)
    openhtf_us = statistics.median(per_step.openhtf) if per_step.openhtf is not None else None
    ratio = statistics.median(per_step.ratios) if per_step.ratios else None
    figures["us_per_step_durable_sqlite"] = round(durable_us, 2)
    figures["ratio_vs_openhtf_durable"] = round(ratio, 2) if ratio is not None else None
    figures["us_per_step_memory"] = round(statistics.median(per_step.memory), 2)
    figures["openhtf_us_per_phase"] = round(openhtf_us, 2) if openhtf_us is not None else None
    figures["sqlite_records_per_run"] = args.records
    for stations in STATIONS:
        figures[f"pg_records_per_run_{stations}"] = pg_counts.get(stations)
    figures["stages_per_unit"] = args.stages
    figures["steps"] = args.steps
    figures["runs"] = args.runs
    figures["rounds"] = args.rounds
    figures["seconds"] = round(time.perf_counter() - began, 1)

    print("\ntargets:")
    pg16 = pg[16]
    if pg16 is None:
        print(f"  PostgreSQL, 16 stations >= {TARGET_PG_16:.0f} records/s: not measured")
    else:
        print(f"  PostgreSQL, 16 stations >= {TARGET_PG_16:.0f} records/s: {pg16:.0f} ({_met(pg16 >= TARGET_PG_16)})")
    if ratio is None:
        print(f"  >= {TARGET_RATIO:.0f}x cheaper per step than OpenHTF with a SQLite record: not measured")
    else:
        print(
            f"  >= {TARGET_RATIO:.0f}x cheaper per step than OpenHTF with a SQLite record: {ratio:.1f}x, the median "
            f"of the rounds' ratios (medians {openhtf_us:.1f} / {durable_us:.2f} us; {_met(ratio >= TARGET_RATIO)})"
        )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
