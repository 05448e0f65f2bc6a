"""The store's measurements column: the cost of writing it as JSON, three ways, in one process.

Each attempt's measurements become one compact JSON text, ``[[name, value, verdict, units, low,
high(, tags)], …]`` (``engine.store.rows.measurements_json``). Encoded here, for the attempts
bench/store.py writes (one measurement each, a phone line's stages) and for attempts of 10
measurements each:

- ``json_dumps``: ``json.dumps(rows, separators=(",", ":"), default=str)``, the standard library;
- ``orjson``: ``orjson.dumps(rows, default=str)``, decoded to text;
- ``store``: what the store writes now, ``measurements_json`` (orjson, with the standard library
  for the values orjson cannot write faithfully: NaN, infinities, integers past 64 bits, tags);
- ``c_encoder_pieces``: what the store wrote before, for comparison: CPython's private
  ``json.encoder.c_make_encoder`` made once, and the JSON around each measured number remembered
  by name, verdict, units and limits, the number spliced in with ``repr`` (null when the
  interpreter has no C encoder).

The ways run in ``--rounds`` rounds (default 15), each round encoding every attempt once per way,
one way right after the other, in an order turned by one each round; figures are the medians of the
rounds, in nanoseconds per attempt. Each way's texts are checked to read back (``json.loads``) as
the same values before anything is timed.

    python bench/measurejson.py [--attempts N] [--rounds N]

The last line printed is one JSON object: ``{"ns_per_attempt_1": {way: …}, "ns_per_attempt_10":
{way: …}, "orjson_vs_json_dumps_1": …, "orjson_vs_c_encoder_pieces_1": …, …}`` (the ratios are the
other way's time over orjson's, medians of the rounds' ratios).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from storerecords import many_attempts

from engine.context import MeasurementRecord
from engine.outcome import Verdict
from engine.store.rows import measurements_json

Encode = Callable[[Sequence[MeasurementRecord]], str]


def _row(m: MeasurementRecord) -> list[Any]:
    out = [m.name, m.value, m.verdict.value, m.units, m.low, m.high]
    if m.tags:
        out.append(dict(m.tags))
    return out


def json_dumps(measurements: Sequence[MeasurementRecord]) -> str:
    return json.dumps([_row(m) for m in measurements], separators=(",", ":"), default=str)


def orjson_dumps(measurements: Sequence[MeasurementRecord]) -> str:
    return orjson.dumps([_row(m) for m in measurements], default=str).decode()


def c_encoder_pieces() -> Encode | None:
    """The encoder the store used before (private CPython API); None where the interpreter has none."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    chunks = make(None, str, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    pieces: dict[tuple[Any, ...], tuple[str, str]] = {}

    def measurements(ms: Sequence[MeasurementRecord]) -> str:
        parts = []
        for m in ms:
            value = m.value
            kind = type(value)
            if m.tags or not (kind is int or (kind is float and math.isfinite(value))):
                parts.append(encode(_row(m)))
                continue
            key = (m.name, m.verdict, m.units, m.low, m.high, type(m.low), type(m.high))
            found = pieces.get(key)
            if found is None:
                found = pieces[key] = (
                    encode([m.name])[:-1] + ",",
                    "," + encode([m.verdict.value, m.units, m.low, m.high])[1:],
                )
            parts.append(found[0] + repr(value) + found[1])
        return "[" + ",".join(parts) + "]"

    return measurements


def ten_measurements(attempts: int) -> list[tuple[MeasurementRecord, ...]]:
    """Attempts of 10 measurements each (an RF sweep: channels, powers, EVMs), values varying."""
    out = []
    for a in range(attempts):
        out.append(
            tuple(
                MeasurementRecord(
                    f"ch{c:02d}_tx_power_dbm", 22.0 + (a * 7 + c) % 13 / 10, Verdict.PASS, "dBm", 21.0, 24.0
                )
                for c in range(10)
            )
        )
    return out


def _check(ways: dict[str, Encode], columns: Sequence[Sequence[MeasurementRecord]]) -> None:
    for name, encode in ways.items():
        for ms in columns[:500]:
            if json.loads(encode(ms)) != json.loads(json_dumps(ms)):
                raise SystemExit(f"error: {name} writes {encode(ms)}, not the same values as json.dumps")


def time_ways(
    ways: dict[str, Encode], columns: Sequence[Sequence[MeasurementRecord]], rounds: int
) -> dict[str, list[float]]:
    """Nanoseconds per attempt of each way, each round; the ways' order turns by one every round."""
    names = list(ways)
    times: dict[str, list[float]] = {n: [] for n in names}
    for k in range(rounds):
        for name in names[k % len(names) :] + names[: k % len(names)]:
            encode = ways[name]
            gc.collect()
            start = time.perf_counter()
            for ms in columns:
                encode(ms)
            times[name].append((time.perf_counter() - start) / len(columns) * 1e9)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--attempts", type=int, default=20_000, metavar="N", help="attempts per round (20,000)")
    parser.add_argument("--rounds", type=int, default=15, metavar="N", help="rounds (default: 15)")
    args = parser.parse_args(argv)
    if args.attempts < 1 or args.rounds < 1:
        parser.error("--attempts and --rounds must be at least 1")
    ways: dict[str, Encode] = {"json_dumps": json_dumps, "orjson": orjson_dumps, "store": measurements_json}
    previous = c_encoder_pieces()
    if previous is not None:
        ways["c_encoder_pieces"] = previous
    figures: dict[str, Any] = {}
    print(f"{args.rounds} rounds of {args.attempts} attempts; ns per attempt, medians\n")
    for per in (1, 10):
        columns = (
            [a.measurements for a in many_attempts(args.attempts, 20, "MJ")]
            if per == 1
            else ten_measurements(args.attempts)
        )
        _check(ways, columns)
        times = time_ways(ways, columns, args.rounds)
        figures[f"ns_per_attempt_{per}"] = {n: round(statistics.median(t)) for n, t in times.items()}
        for name, values in times.items():
            print(
                f"{per:>2} measurement{'s' if per > 1 else ' '}  {name:<18} median {statistics.median(values):>8.0f} ns"
                f"  (min {min(values):.0f}  max {max(values):.0f})"
            )
        for other in ways:
            if other != "orjson":
                ratios = [o / j for o, j in zip(times[other], times["orjson"], strict=True)]
                figures[f"orjson_vs_{other}_{per}"] = round(statistics.median(ratios), 2)
        print()
    figures["attempts"] = args.attempts
    figures["rounds"] = args.rounds
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
