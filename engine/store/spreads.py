"""Each measurement's spread over a window of the records, summed by the database: its capability and charts.

A measurement's values are the ``measured`` rows (``engine.store.measured``: each attempt's JSON
unnested once, when it was written), kept in order by stage, name and value. Two passes sum them:
the first, by stage and name, their count, sum, least and greatest value and first and last
attempt; the second, with each measurement's mean and its histogram's 20 bins (spanning its values
and its limits, as its latest attempt recorded them) now known, by bin, their counts and sums about
the mean. The run chart takes every k-th attempt of a stage and its values, not every value.
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
    """What the sums are taken about (the mean of the first pass, so that the squares keep their precision)."""
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


def measured(attempts: str, where: str, params: list[Any]) -> tuple[str, list[Any]]:
    """A subquery ``m`` of every numeric measured value (the ``measured`` rows) of the chosen attempts: stage, name,
    x, seen (the attempt's id). The attempts are read only when the window chooses by them."""
    if not where:
        return "(SELECT stage, name, x, attempt AS seen FROM measured WHERE x IS NOT NULL) m", []
    return (
        f"""(SELECT m.stage AS stage, m.name AS name, m.x AS x, m.attempt AS seen FROM measured m, {attempts}
            {where} AND a.id = m.attempt AND m.x IS NOT NULL) m""",
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


def totals(tx: Tx, m: tuple[str, list[Any]]) -> dict[Key, Spread]:
    """The first pass: each measurement's count, least and greatest value, first and last attempt, and its mean
    (the centre of the second pass's sums)."""
    rows = tx.rows(
        f"""SELECT m.stage, m.name, count(*), sum(m.x), min(m.x), max(m.x), min(m.seen), max(m.seen) FROM {m[0]}
        GROUP BY m.stage, m.name""",
        m[1],
    )
    return {
        (stage, name): Spread(stage, name, count=int(count), centre=float(total) / int(count), least=float(least),
                              most=float(most), seen=int(seen), latest=int(latest))
        for stage, name, count, total, least, most, seen, latest in rows
    }  # fmt: skip


def _centres(tx: Tx, found: dict[Key, Spread]) -> tuple[str, list[Any]]:
    """The measurements' centres and bins' spans as a table ``p`` (stage, name, c, lo, hi, scale)."""
    real = tx.backend.types["real"]
    columns = f"? AS stage, ? AS name, CAST(? AS {real}) AS c, CAST(? AS {real}) AS lo, CAST(? AS {real}) AS hi, " \
              f"CAST(? AS {real}) AS scale"  # fmt: skip
    params: list[Any] = []
    for s in found.values():
        lo, hi = s.edges
        params += [s.stage, s.name, s.centre, lo, hi, BINS / (hi - lo)]
    return " UNION ALL ".join([f"SELECT {columns}"] * len(found)), params


def binned(tx: Tx, m: tuple[str, list[Any]], found: dict[Key, Spread]) -> None:
    """The second pass: each measurement's values by bin, counted, and summed (and their squares) about its
    centre. Each measurement's rows are found by its stage and name (the index keeps them together)."""
    if not found:
        return
    whole = tx.backend.figures["whole"].format("(m.x - p.lo) * p.scale")
    table, given = _centres(tx, found)
    d = "(m.x - p.c)"
    rows = tx.rows(
        f"""WITH p AS ({table})
        SELECT m.stage, m.name, CASE WHEN m.x < p.lo THEN 0 WHEN m.x >= p.hi THEN {BINS - 1} ELSE {whole} END,
               count(*), sum({d}), sum({d} * {d})
        FROM p CROSS JOIN {m[0]} WHERE m.stage = p.stage AND m.name = p.name GROUP BY 1, 2, 3""",
        given + m[1],
    )
    for stage, name, index, count, offsets, squares in rows:
        s = found[(stage, name)]
        s.offsets += float(offsets)
        s.squares += float(squares)
        s.bins[min(max(int(index), 0), BINS - 1)] += int(count)


def spreads(tx: Tx, attempts: str, where: str, params: list[Any]) -> list[Spread]:
    """Every measurement of the chosen attempts (``attempts`` ``where``), in the order first measured."""
    m = measured(attempts, where, params)
    found = totals(tx, m)
    known = limits(tx, sorted({s.latest for s in found.values()}))
    for key, s in found.items():
        s.units, s.low, s.high = known.get(key, (None, None, None))
    binned(tx, m, found)
    return sorted(found.values(), key=lambda s: (s.seen, s.name))


def _and(where: str, term: str) -> str:
    return f"{where} AND {term}" if where else f" WHERE {term}"


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
