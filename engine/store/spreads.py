"""Each measurement's spread over a window of the records, summed by the database: its capability and charts.

A measurement's values are unnested from their attempts' JSON by the database (the backend's
``figures`` fragments) and summed by stage and name into its count, its sums about a centre, its
least and greatest value and the counts of its histogram's 20 bins, which span its values and its
limits. The bins must be known before the values are counted, so they are first guessed from the
measurement's limits (as its latest attempt recorded them) widened to the values judged FAIL (few,
and read apart): a measurement whose every value then lies inside that span, and whose limits it
equals with its values, is done in one pass over the values. Any other (a limit missing, limits
that changed, a value outside its limits not judged so) is counted again over its stages only, its
span now known. The run chart takes every k-th attempt of a stage and its values, not every value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.store.worker import Tx

BINS = 20
"""Bins of a measurement's histogram."""
RUN_POINTS = 2000
"""At most this many points of a measurement's run chart."""

Key = tuple[str, str]
"""A measurement: its stage and its name."""
Spans = dict[Key, tuple[float, float, float]]
"""Each measurement's centre and the span of its bins."""


@dataclass
class Spread:
    """One measurement's values at one stage, as the database summed them."""

    stage: str
    name: str
    units: str | None = None
    low: float | None = None
    high: float | None = None
    count: int = 0
    centre: float = 0.0
    """What the sums are taken about (near the mean, so that the squares keep their precision)."""
    offsets: float = 0.0
    """The sum of the values less ``centre``."""
    squares: float = 0.0
    """The sum of the squares of the values less ``centre``."""
    least: float = 0.0
    most: float = 0.0
    seen: int = 0
    """The first attempt (id) that measured it: measurements are listed in this order."""
    latest: int = 0
    bins: list[int] = field(default_factory=lambda: [0] * BINS)
    binned: tuple[float, float] | None = None
    """The span the bins were counted over (None: not counted over a span)."""
    run: list[tuple[float, float, str | None, int | None]] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return self.centre + self.offsets / self.count

    @property
    def deviations(self) -> float:
        """The sum of the squared deviations from the mean."""
        return max(0.0, self.squares - self.offsets * self.offsets / self.count)

    @property
    def edges(self) -> tuple[float, float]:
        """The histogram's span: the values and the limits."""
        lows = [x for x in (self.least, self.low) if x is not None]
        highs = [x for x in (self.most, self.high) if x is not None]
        return span(min(lows), max(highs))


def span(lo: float, hi: float) -> tuple[float, float]:
    """A histogram's span: [lo, hi], or a unit wide around a single value."""
    return (lo - 0.5, hi + 0.5) if hi <= lo else (lo, hi)


def measured(tx: Tx, attempts: str, where: str, params: list[Any]) -> tuple[str, list[Any]]:
    """A subquery ``m`` of every numeric measured value of the chosen attempts: stage, name, x, seen (the attempt's
    id). Fenced: each row's JSON is read once, not once for each use of its columns."""
    f = tx.backend.figures
    return (
        f"""(SELECT a.stage AS stage, {f["name"]} AS name, {f["value"]} AS x, a.id AS seen
            FROM {attempts}, {f["each"]}{where}{f["fence"]}) m""",
        params,
    )


def limits(tx: Tx, latest: list[int]) -> dict[Key, tuple[str | None, float | None, float | None]]:
    """Each measurement's units and limits as the given attempts (each stage's latest) recorded them."""
    if not latest:
        return {}
    f = tx.backend.figures
    rows = tx.rows(
        f"""SELECT a.stage, {f["name"]}, {f["units"]}, {f["low"]}, {f["high"]} FROM attempts a, {f["each"]}
        WHERE a.id IN ({", ".join("?" * len(latest))}) ORDER BY a.id""",
        latest,
    )
    return {(stage, name): (units, low, high) for stage, name, units, low, high in rows}


def _centres(tx: Tx, spans: Spans) -> tuple[str, list[Any]]:
    """The measurements' centres and bins' spans as a table ``p`` (stage, name, c, lo, hi, scale)."""
    real = tx.backend.types["real"]
    columns = f"? AS stage, ? AS name, CAST(? AS {real}) AS c, CAST(? AS {real}) AS lo, CAST(? AS {real}) AS hi, " \
              f"CAST(? AS {real}) AS scale"  # fmt: skip
    if not spans:
        return f"SELECT {columns} WHERE 1 = 0", ["", "", 0.0, 0.0, 0.0, 0.0]
    params: list[Any] = []
    for (stage, name), (centre, lo, hi) in spans.items():
        params += [stage, name, centre, lo, hi, BINS / (hi - lo)]
    return " UNION ALL ".join([f"SELECT {columns}"] * len(spans)), params


def count_values(tx: Tx, m: tuple[str, list[Any]], spans: Spans, *, every: bool) -> (
    list[tuple[Any, ...]]
):  # fmt: skip
    """One pass over the values: by stage, name and bin (over the span given; None without one), their count,
    sum and sum of squares about the centre, least, greatest, first and last attempt.

    ``every``: every measurement, those without a span too; else only those with one."""
    whole = tx.backend.figures["whole"].format("(m.x - p.lo) * p.scale")
    table, given = _centres(tx, spans)
    d = "(m.x - coalesce(p.c, 0))"
    if every:
        join, where = "LEFT JOIN p ON p.stage = m.stage AND p.name = m.name", "WHERE m.x IS NOT NULL"
    else:  # CROSS JOIN: the values outside, each looking up its measurement's row of p
        join, where = "CROSS JOIN p", "WHERE p.stage = m.stage AND p.name = m.name AND m.x IS NOT NULL"
    return tx.rows(
        f"""WITH p AS ({table})
        SELECT m.stage, m.name,
               CASE WHEN p.lo IS NULL THEN NULL WHEN m.x < p.lo THEN -1 WHEN m.x > p.hi THEN {BINS} ELSE {whole} END,
               count(*), sum({d}), sum({d} * {d}), min(m.x), max(m.x), min(m.seen), max(m.seen)
        FROM {m[0]} {join} {where} GROUP BY 1, 2, 3""",
        given + m[1],
    )


def gather(rows: list[tuple[Any, ...]], spans: Spans) -> dict[Key, Spread]:
    """The passes' rows summed into each measurement's spread."""
    found: dict[Key, Spread] = {}
    for stage, name, index, count, offsets, squares, least, most, seen, latest in rows:
        s = found.get((stage, name))
        if s is None:
            s = found[(stage, name)] = Spread(stage, name, least=float(least), most=float(most), seen=int(seen))
            centre_lo_hi = spans.get((stage, name))
            s.centre = 0.0 if centre_lo_hi is None else centre_lo_hi[0]
            s.binned = None if centre_lo_hi is None else centre_lo_hi[1:]
        s.count += int(count)
        s.offsets += float(offsets)
        s.squares += float(squares)
        s.least, s.most = min(s.least, float(least)), max(s.most, float(most))
        s.seen, s.latest = min(s.seen, int(seen)), max(s.latest, int(latest))
        if index is not None:
            s.bins[min(max(int(index), 0), BINS - 1)] += int(count)
    return found


def _and(where: str, term: str) -> str:
    return f"{where} AND {term}" if where else f" WHERE {term}"


def recent_limits(tx: Tx, attempts: str, where: str, params: list[Any]) -> dict[Key, tuple[float | None, ...]]:
    """The limits (low, high) of the measurements of the latest ``RUN_POINTS`` attempts with measurements."""
    f = tx.backend.figures
    rows = tx.rows(
        f"""SELECT a.stage, {f["name"]}, max({f["low"]}), min({f["high"]}) FROM (
            SELECT a.id, a.stage, a.measurements FROM {attempts}{_and(where, "a.measurements <> '[]'")}
            ORDER BY a.id DESC LIMIT {RUN_POINTS}) a, {f["each"]}
        GROUP BY a.stage, {f["name"]}""",
        params,
    )
    return {(stage, name): (low, high) for stage, name, low, high in rows}


def extremes(tx: Tx, attempts: str, where: str, params: list[Any], keys: list[Key]) -> dict[Key, tuple[float, ...]]:
    """The least and greatest value of each of a few measurements, read over their stages only (one pass, no
    sorting: a column pair each)."""
    if not keys:
        return {}
    stages = sorted({stage for stage, _ in keys})
    m = measured(tx, attempts, _and(where, f"a.stage IN ({', '.join('?' * len(stages))})"), params + stages)
    pick = "CASE WHEN m.stage = ? AND m.name = ? THEN m.x END"
    found = tx.row(
        f"SELECT {', '.join(f'min({pick}), max({pick})' for _ in keys)} FROM {m[0]}",
        [x for key in keys for x in (*key, *key)] + m[1],
    )
    pairs = list(zip(found[::2], found[1::2], strict=True)) if found else []
    return {key: (least, most) for key, (least, most) in zip(keys, pairs, strict=True) if least is not None}


def guess(tx: Tx, attempts: str, where: str, params: list[Any], failed: dict[Key, tuple[float, float]]) -> Spans:
    """Each measurement's bins before its values are counted: its recent limits widened to its values judged FAIL,
    or, lacking a limit, to its least and greatest value read apart; about their middle."""
    recent = recent_limits(tx, attempts, where, params)
    lacking = [key for key, limits in recent.items() if None in limits]
    widened = {**failed, **extremes(tx, attempts, where, params, lacking)}
    spans: Spans = {}
    for key, limits in recent.items():
        ends = [x for x in (*limits, *widened.get(key, ())) if x is not None]
        if ends and (None not in limits or key in widened):
            lo, hi = span(min(ends), max(ends))
            spans[key] = ((lo + hi) / 2, lo, hi)
    return spans


def settle(tx: Tx, found: dict[Key, Spread]) -> Spans:
    """Each measurement's units and limits as its latest attempt recorded them; the spans to count again: of the
    measurements whose bins were guessed wrong, or not at all."""
    known = limits(tx, [s.latest for s in found.values()])
    for key, s in found.items():
        s.units, s.low, s.high = known.get(key, (None, None, None))
    return {key: (s.mean, *s.edges) for key, s in found.items() if s.binned != s.edges}


def spreads(tx: Tx, attempts: str, where: str, params: list[Any], failed: dict[Key, tuple[float, float]]) -> (
    list[Spread]
):  # fmt: skip
    """Every measurement of the chosen attempts (``attempts`` ``where``): counted over bins guessed, then those
    guessed wrong counted again over their stages only. ``failed``: the least and greatest value judged FAIL of
    each measurement."""
    spans = guess(tx, attempts, where, params, failed)
    found = gather(count_values(tx, measured(tx, attempts, where, params), spans, every=True), spans)
    again = settle(tx, found)
    if not again:
        return merge(found, {})
    stages = sorted({stage for stage, _ in again})
    chosen = measured(tx, attempts, _and(where, f"a.stage IN ({', '.join('?' * len(stages))})"), params + stages)
    return merge(found, gather(count_values(tx, chosen, again, every=False), again))


def merge(found: dict[Key, Spread], again: dict[Key, Spread]) -> list[Spread]:
    """The measurements counted again in place of their first count; all in the order first measured."""
    for key, s in again.items():
        s.units, s.low, s.high = found[key].units, found[key].low, found[key].high
        found[key] = s
    return sorted(found.values(), key=lambda s: (s.seen, s.name))


Measured = tuple[str, int, int, int]
"""A stage's attempts with measurements: the stage, how many, the first's and the last's id."""


def _picks(tx: Tx, attempts: str, where: str, params: list[Any], stages: list[Measured]) -> tuple[str, str, list[Any]]:
    """The attempts a run chart shows: of a stage with more than ``RUN_POINTS`` attempts with measurements, the
    first in each of ``RUN_POINTS`` equal spans of their ids (ids are written in time order); of every other
    stage, all. A WITH clause, a query of their ids, and its parameters."""
    measuring = _and(where, "a.measurements <> '[]'")
    few = [stage for stage, count, _, _ in stages if count <= RUN_POINTS]
    many = [(stage, first, (last + 1 - first) / RUN_POINTS) for stage, count, first, last in stages
            if count > RUN_POINTS]  # fmt: skip
    parts, given = ["SELECT 0 AS id WHERE 1 = 0"], []
    if few:
        marks = ", ".join("?" * len(few))
        parts.append(f"SELECT a.id FROM {attempts}{_and(measuring, f'a.stage IN ({marks})')}")
        given += params + few
    if not many:
        return "", " UNION ALL ".join(parts), given
    real = tx.backend.types["real"]
    starts = " UNION ALL ".join([f"SELECT CAST(? AS TEXT), CAST(? AS {real}), CAST(? AS {real})"] * len(many))
    # whole ids: an id compared with a fraction would not use the key's index
    at, end = (tx.backend.figures["whole"].format(f"g.lo + {k} * g.step") for k in ("g.k", "(g.k + 1)"))
    within = _and(measuring, f"a.id >= {at} AND a.id < {end} AND a.stage = g.stage")
    parts.append(f"SELECT (SELECT a.id FROM {attempts}{within} ORDER BY a.id LIMIT 1) FROM g")
    prefix = f"""WITH RECURSIVE s (stage, lo, step) AS ({starts}),
        g (stage, k, lo, step) AS (SELECT stage, 0, lo, step FROM s
                                   UNION ALL SELECT stage, k + 1, lo, step FROM g WHERE k + 1 < {RUN_POINTS})"""
    return prefix, " UNION ALL ".join(parts), [x for row in many for x in row] + given + params


def run_charts(tx: Tx, attempts: str, where: str, params: list[Any], found: list[Spread], stages: list[Measured]) -> (
    None
):  # fmt: skip
    """The run charts: of the attempts ``_picks`` chooses, every measurement's values in time order, every k-th
    where that leaves more than ``RUN_POINTS`` (an attempt may measure a name more than once)."""
    f = tx.backend.figures
    by_key = {(s.stage, s.name): s for s in found}
    prefix, picks, given = _picks(tx, attempts, where, params, stages)
    points = RUN_POINTS
    rows = tx.rows(
        f"""{prefix} SELECT r.stage, r.name, r.at, r.x, r.station, r.slot FROM (
            SELECT m.*, row_number() OVER (PARTITION BY m.stage, m.name ORDER BY m.at, m.seen, m.pos) AS n,
                   count(*) OVER (PARTITION BY m.stage, m.name) AS c
            FROM (SELECT a.stage, {f["name"]} AS name, {f["value"]} AS x, a.ended AS at, a.id AS seen, j.key AS pos,
                         v.station, v.slot
                  FROM attempts a JOIN visits v ON v.id = a.visit, {f["each"]} WHERE a.id IN ({picks})) m
            WHERE m.x IS NOT NULL) r
        WHERE (r.n - 1) % ((r.c + ? - 1) / ?) = 0 ORDER BY r.stage, r.name, r.n""",
        [*given, points, points],
    )
    for stage, name, at, x, station, slot in rows:
        s = by_key.get((stage, name))
        if s is not None:
            s.run.append((float(at), float(x), station, slot))
