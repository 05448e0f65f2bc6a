"""The line report's figures over a month of a line: ``line_figures`` on 1,000,000 attempts, timed.

Builds a SQLite store of a month of a line (written row by row with ``executemany`` in large
transactions, in the store's own schema): about 100,000 units through 10 stages at 4 stations of 16
sockets, each attempt with 2 measurements drawn around their typical values (a few per cent out of
limits and failed, and a few failures with no failed measurement, only an error), failed attempts
retested up to twice and the unit scrapped after its third failure, a few attempts aborted, lots of
1,000 units (two of them held, with a decision each), a few units quarantined (half of them released),
and the last units run with recipe content never released. Then times ``line_figures(store,
Window())`` and its JSON text, as ``floorflow report --format json`` computes it (through the store),
in a child process that only opens the store and computes, so that its peak RSS (``ru_maxrss``) is the
report's alone: once on the store as stations left it (``first_report_s``: the report unnests every
measurement of the month into the ``measured`` table, kept), then in rounds, each the morning's
report (the last day's measurements left to unnest again first, as after a day of production). The
same store copied into PostgreSQL (database ``test`` at 127.0.0.1:5432, a schema of its own, dropped
after) is timed in rounds the same way.

    python bench/report.py [--attempts 1000000] [--rounds 3] [--pg URL | --no-pg] [--db PATH] [--quick]

``--quick`` is a smoke run (50,000 attempts). ``--db PATH`` keeps the built SQLite store at PATH and
uses it again when it is there. The figures are printed (the stages' yields, the Pareto's head, each
measurement's capability), then, as the last line, one JSON object: ``report_s_1m_attempts`` (the
median of the rounds on SQLite; goal at most 10 s), ``report_s_1m_attempts_postgresql`` (null, with
the reason printed, when PostgreSQL cannot be reached), ``peak_rss_mib`` (the largest of the SQLite
runs; goal at most 300 MiB), ``first_report_s``, ``attempts``, ``units`` and ``goals_met``; the exit status is 1 when
a goal is not met.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.report import strictjson
from engine.report.figures import Window, line_figures
from engine.store import open_store

GOAL_S = 10.0
GOAL_RSS_MIB = 300.0
PG_URL = "postgresql://postgres@127.0.0.1/test"
CHILD_S = 600
"""The longest a round may take."""
T0 = 1_790_000_000.0
DAY_S = 86400.0
MONTH_S = 30 * DAY_S
SOCKETS = 16
LOT_UNITS = 1000
RECIPE, RELEASED_HASH, UNRELEASED_HASH = "phone-wim", "a1" * 32, "b2" * 32
Limit = tuple[str, str | None, float | None, float | None, float, float]
"""A measurement: name, units, low, high, typical value, spread (sd)."""
# stage, step, station, its two measurements: a phone line's stages.
STAGES: tuple[tuple[str, str, str, tuple[Limit, ...]], ...] = (
    ("connect", "device.connect", "flash",
     (("enumeration_s", "s", 0.0, 10.0, 1.8, 1.0), ("vbus_v", "V", 4.75, 5.25, 5.0, 0.07))),
    ("flash", "flash.gang", "flash",
     (("write_mb_s", "MB/s", 8.0, None, 12.0, 1.5), ("image_crc_errors", None, None, 0.5, 0.0, 0.1))),
    ("boot", "boot.wait", "flash",
     (("boot_s", "s", 0.0, 90.0, 31.0, 4.0), ("idle_ma", "mA", 10.0, 45.0, 30.0, 4.0))),
    ("record_id", "device.record_id", "bench",
     (("chip_id_len", None, 16.0, 16.0, 16.0, 0.0), ("temp_c", "°C", 15.0, 45.0, 29.0, 3.5))),
    ("functional", "uart.functional", "bench",
     (("led_ma", "mA", 4.0, 8.0, 6.0, 0.6), ("button_ms", "ms", 0.0, 50.0, 12.0, 5.0))),
    ("rf_cal", "rf.calibrate", "rf",
     (("tx_power_dbm", "dBm", 21.0, 24.0, 22.7, 0.45), ("freq_err_ppm", "ppm", -10.0, 10.0, 0.5, 2.5))),
    ("rf_measure", "rf.measure", "rf",
     (("evm_db", "dB", None, -25.0, -31.4, 2.0), ("rx_sens_dbm", "dBm", None, -90.0, -95.0, 1.8))),
    ("sensors", "device.calibrate_sensors", "pack",
     (("accel_offset_mg", "mg", -50.0, 50.0, 7.3, 15.0), ("gyro_dps", "dps", -3.0, 3.0, 0.1, 0.9))),
    ("provision", "provision.identity", "pack",
     (("imei_luhn_ok", None, 1.0, 1.0, 1.0, 0.0), ("write_s", "s", 0.0, 5.0, 1.2, 0.5))),
    ("finalize", "lifecycle.advance", "pack",
     (("fuse_ma", "mA", 50.0, 200.0, 120.0, 20.0), ("lock_s", "s", 0.0, 3.0, 0.8, 0.3))),
)  # fmt: skip
ERROR_FAIL = 0.004
"""Chance of a failure with no failed measurement (an error only)."""
ABORT = 0.001
"""Chance of an attempt aborted by the operator (run again after)."""
RETESTS = 2
ERRORS = ("no response from the unit after reset", "fixture contact open on pin 4", "unit did not enumerate in time")


# -- building the store ------------------------------------------------------------------------------


def _measurements(stage: int, rng: random.Random) -> tuple[str, bool]:
    """The measurements column of one attempt, and whether one of them failed."""
    parts, failed = [], False
    for name, units, low, high, typical, sd in STAGES[stage][3]:
        value = rng.gauss(typical, sd) if sd else typical
        bad = (low is not None and value < low) or (high is not None and value > high)
        failed |= bad
        parts.append(json.dumps([name, round(value, 4), "FAIL" if bad else "PASS", units, low, high]))
    return "[" + ",".join(parts) + "]", failed


class Line:
    """Writes a month of the line into a SQLite store's tables, a chunk of units per transaction."""

    def __init__(self, conn: sqlite3.Connection, units: int, seed: int = 7) -> None:
        self.conn, self.units, self.rng = conn, units, random.Random(seed)
        self.attempt_id = self.visit_id = 0
        self.attempts = 0
        self.unit_rows: list[tuple[Any, ...]] = []

    def unit(self, u: int) -> list[tuple[Any, ...]]:
        """One unit's attempts (visit key, row) from its start; its unit row kept aside."""
        rng, serial = self.rng, f"SN{u:07d}"
        lot, at = f"LOT-{u // LOT_UNITS:04d}", T0 + u * MONTH_S / self.units
        content = UNRELEASED_HASH if u >= self.units * 0.97 else RELEASED_HASH
        version = 8 if content == UNRELEASED_HASH else 7
        rows: list[tuple[Any, ...]] = []
        status, reason = "shipped", None
        slot = u % SOCKETS
        for index, (stage, step, station, _) in enumerate(STAGES):
            visit = (serial, RECIPE, version, content, lot, station, slot, f"op-{station}", f"USB-{u:07d}")
            number = 0
            while True:
                number += 1
                took = rng.uniform(20.0, 90.0)
                measured, failed = _measurements(index, rng)
                outcome, error = ("FAIL", None) if failed else ("PASS", None)
                if rng.random() < ERROR_FAIL:
                    outcome, error = "FAIL", rng.choice(ERRORS)
                if rng.random() < ABORT:
                    outcome, error, measured = "ABORTED", "aborted by the operator", "[]"
                rows.append((visit, (stage, step, number, outcome, at, at + took, measured, error)))
                at += took + rng.uniform(1.0, 30.0)
                if outcome != "FAIL" and outcome != "ABORTED":
                    break
                if outcome == "FAIL" and sum(1 for _, r in rows if r[0] == stage and r[3] == "FAIL") > RETESTS:
                    status, reason = "scrapped", f"{stage} failed {RETESTS + 1} times"
                    break
            if status == "scrapped":
                break
        if u % 2000 == 999:
            status, reason = "quarantined", "dropped on the floor"
        self.unit_rows.append(
            (serial, "phone", RECIPE, version, content, lot, "Complete", status, reason, None, None, None, at)
        )
        return rows

    def chunk(self, first: int, last: int) -> None:
        """Units first..last-1, their attempts in the order they ended, in one transaction."""
        pending = [row for u in range(first, last) for row in self.unit(u)]
        pending.sort(key=lambda r: r[1][5])
        visits: dict[tuple[Any, ...], int] = {}
        visit_rows, attempt_rows = [], []
        for visit, row in pending:
            if visit not in visits:
                self.visit_id += 1
                visits[visit] = self.visit_id
                visit_rows.append((self.visit_id, *visit))
            self.attempt_id += 1
            attempt_rows.append((self.attempt_id, visits[visit], *row))
        with self.conn:
            self.conn.executemany("INSERT INTO visits VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", visit_rows)
            self.conn.executemany("INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", attempt_rows)
            self.conn.executemany("INSERT INTO units VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self.unit_rows)
        self.attempts += len(attempt_rows)
        self.unit_rows = []

    def decisions(self) -> None:
        """Lot holds, quarantines and their decisions, the recipe's release."""
        held = [f"LOT-{n:04d}" for n in (3, 41)]
        with self.conn:
            for lot in held:
                hold = (lot, "sampled failure rate too high", T0 + 86400)
                self.conn.execute("INSERT INTO lots VALUES (?, ?, ?)", hold)
                self.conn.execute(
                    "INSERT INTO audit (at, by, action, subject, reason) VALUES (?, ?, ?, ?, ?)",
                    (T0 + 90000, "quality-eve", "lot-hold-kept", lot, "failure analysis running"),
                )
            for (serial,) in self.conn.execute("SELECT serial FROM units WHERE status = 'quarantined'").fetchall():
                self.conn.execute(
                    "INSERT INTO audit (at, by, action, subject, reason) VALUES (?, 'floorflow', 'quarantine', ?, ?)",
                    (T0 + 1000, serial, "dropped on the floor"),
                )
            self.conn.execute(
                "INSERT INTO releases VALUES (?, ?, 7, 'workflows/phone-wim.yaml', 'eng-ana', ?)",
                (RELEASED_HASH, RECIPE, T0 - 86400),
            )


def build(path: Path, attempts: int) -> tuple[int, int]:
    """A store at ``path`` holding at least ``attempts`` attempts; (attempts, units) written."""
    open_store(f"sqlite:///{path}").close()  # the schema, as the store makes it
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    units = max(1, round(attempts / (len(STAGES) * 1.02)))
    line = Line(conn, units)
    first = 0
    while line.attempts < attempts:  # 2,000 units a transaction, then one at a time up to the count
        last = first + (2000 if attempts - line.attempts > 2000 * len(STAGES) * 1.1 else 1)
        line.chunk(first, last)
        first = last
    line.decisions()
    conn.close()
    return line.attempts, first


# -- timing, in a child process -------------------------------------------------------------------------


def child(url: str) -> None:
    """Open the store, compute the figures and their JSON as ``floorflow report --format json``; print the time,
    the peak RSS and the figures."""
    started = time.perf_counter()
    with open_store(url) as store:
        document = line_figures(store, Window())
        text = strictjson.dumps(document, indent=2, ensure_ascii=False)
    seconds = time.perf_counter() - started
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mib": rss_mib, "bytes": len(text), "figures": document}))


def timed(url: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", url], capture_output=True, text=True, check=False, timeout=CHILD_S
    )
    if done.returncode != 0:
        raise RuntimeError(f"the report's child process failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def forget(url: str, cut: float) -> None:
    """Leave the measurements of the attempts that ended after ``cut`` to be unnested again."""
    forget = "DELETE FROM measured WHERE attempt >= (SELECT min(id) FROM attempts WHERE ended > {})"
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)) as conn:
            conn.execute(forget.format("?"), (cut,))
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(forget.format("%s"), (cut,))


def rounds(url: str, count: int, label: str) -> tuple[list[float], list[float], dict[str, Any]]:
    """The morning's report, ``count`` times: the last day's measurements left to unnest, then the report."""
    seconds, rss, figures = [], [], {}
    for n in range(count):
        forget(url, T0 + MONTH_S - DAY_S)  # the morning after the month's last day
        result = timed(url)
        seconds.append(result["seconds"])
        rss.append(result["rss_mib"])
        figures = result["figures"]
        print(f"{label} round {n + 1}: {result['seconds']:.2f} s, peak RSS {result['rss_mib']:.0f} MiB, "
              f"JSON {result['bytes'] / 1e6:.1f} MB")  # fmt: skip
    return seconds, rss, figures


# -- PostgreSQL ----------------------------------------------------------------------------------------------

TABLES = ("units", "visits", "attempts", "measured", "lots", "audit", "releases")


@contextlib.contextmanager
def pg_copy(sqlite_path: Path, url: str) -> Iterator[str | None]:
    """The SQLite store copied into a fresh schema of PostgreSQL, as a store URL; None (the reason printed) when
    PostgreSQL cannot be reached. The schema is dropped afterwards."""
    try:
        import psycopg

        admin = psycopg.connect(url, autocommit=True, connect_timeout=5)
    except Exception as exc:
        print(f"note: PostgreSQL at {url} cannot be reached ({type(exc).__name__}: {exc}); its figure is null")
        yield None
        return
    schema = f"floorflow_bench_report_{os.getpid()}_{secrets.token_hex(3)}"
    admin.execute(f"CREATE SCHEMA {schema}")
    store_url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    try:
        open_store(store_url).close()
        started = time.perf_counter()
        source = sqlite3.connect(sqlite_path)
        with psycopg.connect(store_url, autocommit=True) as conn:
            for table in TABLES:
                columns = [c[1] for c in source.execute(f"PRAGMA table_info({table})")]
                with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in source.execute(f"SELECT {', '.join(columns)} FROM {table}"):
                        copy.write_row(row)
            conn.execute("ANALYZE")
        source.close()
        print(f"copied into PostgreSQL (schema {schema}) in {time.perf_counter() - started:.1f} s")
        yield store_url
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


# -- what is printed --------------------------------------------------------------------------------------------


def show(figures: dict[str, Any]) -> None:
    """The figures in short: units, each stage's yields, the Pareto's head, each measurement's capability."""
    print("units: " + ", ".join(f"{k} {v}" for k, v in figures["units"].items()))
    print(f"{'stage':<12} {'station':<8} {'units':>7} {'FPY':>7} {'final':>7} {'retest':>7} {'aborted':>7}")
    for s in figures["stages"]:
        print(f"{s['stage']:<12} {s['station'] or '-':<8} {s['units']:>7} {_pct(s['first_pass_yield'])} "
              f"{_pct(s['final_yield'])} {_pct(s['retest_rate'])} {s['aborted']:>7}")  # fmt: skip
    head = ", ".join(f"{c['stage']}/{c['check']} {c['failures']}" for c in figures["pareto"]["by_check"][:5])
    print(f"failures by check: {head}")
    for m in figures["measurements"]:
        cpk = "-" if m["cpk"] is None else f"{m['cpk']:.2f}"
        sd = "-" if m["sd"] is None else f"{m['sd']:.3g}"
        print(f"  {m['stage']}/{m['name']}: n {m['count']}, mean {m['mean']:.4g}, sd {sd}, Cpk {cpk}, "
              f"{len(m['run'])} run points")  # fmt: skip
    counts = ", ".join(f"{key} {len(figures[key])}" for key in ("throughput", "quarantines", "lot_holds",
                                                                "unreleased_recipes"))  # fmt: skip
    print(f"rows: {counts}")


def _pct(ratio: float | None) -> str:
    return f"{'-':>7}" if ratio is None else f"{100 * ratio:6.2f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default=PG_URL)
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--db", type=Path, help="keep the built SQLite store here (and use it again)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 50,000 attempts")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    attempts = 50_000 if args.quick else args.attempts
    with tempfile.TemporaryDirectory(prefix="floorflow-report-") as scratch:
        path = args.db or Path(scratch) / "line.db"
        if not path.exists():
            started = time.perf_counter()
            written, units = build(path, attempts)
            print(f"built {path}: {written} attempts of {units} units in {time.perf_counter() - started:.1f} s")
        conn = sqlite3.connect(path)
        written, units = conn.execute("SELECT (SELECT count(*) FROM attempts), (SELECT count(*) FROM units)").fetchone()
        conn.close()
        forget(f"sqlite:///{path}", T0 - DAY_S)  # a store written by stations, never reported on
        first = timed(f"sqlite:///{path}")  # unnests every measurement of the month (once: it is kept)
        print(f"SQLite, the first report on the store: {first['seconds']:.2f} s, peak RSS {first['rss_mib']:.0f} MiB")
        seconds, rss, figures = rounds(f"sqlite:///{path}", args.rounds, "SQLite")
        show(figures)
        pg_seconds: float | None = None
        if args.no_pg:
            print("note: PostgreSQL not asked for (--no-pg); its figure is null")
        else:
            with pg_copy(path, args.pg) as pg_url:
                if pg_url is not None:
                    pg_seconds = statistics.median(rounds(pg_url, args.rounds, "PostgreSQL")[0])
    median, peak = statistics.median(seconds), max([*rss, first["rss_mib"]])
    met = median <= GOAL_S and peak <= GOAL_RSS_MIB
    print(json.dumps({
        "report_s_1m_attempts": round(median, 3),
        "report_s_1m_attempts_postgresql": None if pg_seconds is None else round(pg_seconds, 3),
        "peak_rss_mib": round(peak, 1),
        "first_report_s": round(first["seconds"], 3),
        "attempts": written,
        "units": units,
        "goals_met": met,
    }))  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
