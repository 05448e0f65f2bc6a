"""The line's figures as SQL aggregates over the records: yields, failures, throughput, measurements.

Only the store's worker thread calls these, inside one read transaction. Nothing here loads the
attempts themselves: every figure is a GROUP BY, and the measurements are unnested from their JSON
column by the database (what differs between the two is the backend's ``figures`` fragments).
``engine.report.figures`` turns what these return into the report's document.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from engine.outcome import Outcome, UnitStatus, Verdict
from engine.store.worker import Tx

BINS = 20
"""Bins of a measurement's histogram."""
RUN_POINTS = 2000
"""At most this many points of a measurement's run chart."""
UNRELEASED_RUN = "unreleased-recipe-run"
"""The audit log's action for a run of recipe content never released (as ``engine.store.sqlstore`` writes it)."""

COUNTED = (Outcome.PASS, Outcome.FAIL, Outcome.ERROR)
"""Outcomes that count for a yield: an aborted attempt, a skipped one or one decided not done does not."""
_COUNTED = "(" + ", ".join(f"'{outcome}'" for outcome in COUNTED) + ")"
_FROM = "attempts a JOIN visits v ON v.id = a.visit"
_HELD = "LEFT JOIN lots h ON h.lot = v.lot AND h.hold IS NOT NULL"


@dataclass(frozen=True)
class Window:
    """Which attempts the figures count: ended within [since, until] (epoch seconds), of a lot, station, recipe.

    None leaves that side open; a unit counts when one of its attempts is in the window.
    """

    since: float | None = None
    until: float | None = None
    lot: str | None = None
    station: str | None = None
    recipe: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The WHERE clause (empty when nothing is chosen) over ``attempts a`` and ``visits v``, and its parameters."""
        terms = [
            ("a.ended >= ?", self.since),
            ("a.ended <= ?", self.until),
            ("v.lot = ?", self.lot),
            ("v.station = ?", self.station),
            ("v.recipe = ?", self.recipe),
        ]
        chosen = [(sql, value) for sql, value in terms if value is not None]
        if not chosen:
            return "", []
        return " WHERE " + " AND ".join(sql for sql, _ in chosen), [value for _, value in chosen]


@dataclass
class Spread:
    """One measurement's values at one stage, as the database summed them."""

    stage: str
    name: str
    units: str | None
    low: float | None
    high: float | None
    count: int
    total: float
    least: float
    most: float
    squares: float = 0.0
    """Sum of squared deviations from the mean (the second pass)."""
    bins: list[int] = field(default_factory=lambda: [0] * BINS)
    run: list[tuple[float, float, str | None, int | None]] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return self.total / self.count

    @property
    def edges(self) -> tuple[float, float]:
        """The histogram's span: the values and the limits."""
        lo = min(x for x in (self.least, self.low) if x is not None)
        hi = max(x for x in (self.most, self.high) if x is not None)
        return (lo - 0.5, hi + 0.5) if hi <= lo else (lo, hi)


@dataclass
class Tallies:
    """Everything ``line_figures`` needs, read in one transaction."""

    units: dict[str, int]
    stages: list[tuple[Any, ...]]
    by_check: list[tuple[str, str, int]]
    errors: list[tuple[str, str | None, int]]
    throughput: list[tuple[str | None, int, int]]
    quarantines: list[tuple[Any, ...]]
    lot_holds: list[tuple[str, str | None, float | None]]
    lot_decisions: list[tuple[Any, ...]]
    unreleased: list[tuple[str, int, str, int]]
    spreads: list[Spread]


def tallies(tx: Tx, window: Window) -> Tallies:
    """Every figure of the window, each a query of its own."""
    return Tallies(
        units=unit_standing(tx, window),
        stages=stage_tallies(tx, window),
        by_check=failed_checks(tx, window),
        errors=failed_errors(tx, window),
        throughput=throughput(tx, window),
        quarantines=quarantines(tx, window),
        lot_holds=lot_holds(tx, window),
        lot_decisions=lot_decisions(tx, window),
        unreleased=unreleased(tx, window),
        spreads=spreads(tx, window),
    )


def unit_standing(tx: Tx, window: Window) -> dict[str, int]:
    """Units of the window by where they stand: their status, else held, aborted, refused or in route."""
    where, params = window.where()
    rows = tx.rows(
        f"""WITH w AS (SELECT v.serial, max(a.id) AS last FROM {_FROM}{where} GROUP BY v.serial)
        SELECT CASE WHEN u.status IS NOT NULL AND u.status <> '{UnitStatus.IN_ROUTE}' THEN u.status
                    WHEN h.lot IS NOT NULL THEN '{UnitStatus.HELD}'
                    WHEN l.outcome = '{Outcome.ABORTED}' THEN '{UnitStatus.ABORTED}'
                    WHEN u.reason LIKE 'refused by %' THEN '{UnitStatus.REFUSED}'
                    ELSE '{UnitStatus.IN_ROUTE}' END AS standing, count(*)
        FROM w JOIN attempts l ON l.id = w.last LEFT JOIN units u ON u.serial = w.serial
        LEFT JOIN lots h ON h.lot = u.lot AND h.hold IS NOT NULL
        GROUP BY 1""",
        params,
    )
    return {str(standing): int(count) for standing, count in rows}


def stage_tallies(tx: Tx, window: Window) -> list[tuple[Any, ...]]:
    """Per stage in route order (first attempt first): station (None: several), units, first pass, passed,
    counted attempts, aborted attempts, units of held lots, failed attempts. Held units count apart."""
    where, params = window.where()
    return tx.rows(
        f"""WITH u AS (
            SELECT a.stage, v.serial, min(a.id) AS seen, min(v.station) AS s_lo, max(v.station) AS s_hi,
                   min(CASE WHEN a.outcome IN {_COUNTED} THEN a.id END) AS first_counted,
                   min(CASE WHEN a.outcome = 'PASS' THEN a.id END) AS first_passed,
                   sum(CASE WHEN a.outcome IN {_COUNTED} THEN 1 ELSE 0 END) AS counted,
                   sum(CASE WHEN a.outcome = 'ABORTED' THEN 1 ELSE 0 END) AS aborted,
                   sum(CASE WHEN a.outcome = 'FAIL' THEN 1 ELSE 0 END) AS failed,
                   max(CASE WHEN h.lot IS NULL THEN 0 ELSE 1 END) AS held
            FROM {_FROM} {_HELD}{where} GROUP BY a.stage, v.serial)
        SELECT stage, CASE WHEN min(s_lo) = max(s_hi) THEN min(s_lo) END,
               sum(CASE WHEN held = 0 AND counted > 0 THEN 1 ELSE 0 END),
               sum(CASE WHEN held = 0 AND first_passed = first_counted THEN 1 ELSE 0 END),
               sum(CASE WHEN held = 0 AND first_passed IS NOT NULL THEN 1 ELSE 0 END),
               sum(CASE WHEN held = 0 THEN counted ELSE 0 END),
               sum(aborted),
               sum(CASE WHEN held = 1 AND counted > 0 THEN 1 ELSE 0 END),
               sum(failed)
        FROM u GROUP BY stage ORDER BY min(seen)""",
        params,
    )


def _and(where: str, term: str) -> str:
    return f"{where} AND {term}" if where else f" WHERE {term}"


def failed_checks(tx: Tx, window: Window) -> list[tuple[str, str, int]]:
    """Failed measurements of failed attempts, by stage and name."""
    where, params = window.where()
    f = tx.backend.figures
    rows = tx.rows(
        f"""SELECT a.stage, {f["name"]}, count(*) FROM {_FROM}, {f["each"]}
        {_and(where, f"a.outcome = 'FAIL' AND {f['verdict']} = '{Verdict.FAIL}'")}
        GROUP BY a.stage, {f["name"]}""",
        params,
    )
    return [(str(stage), str(name), int(count)) for stage, name, count in rows]


def failed_errors(tx: Tx, window: Window) -> list[tuple[str, str | None, int]]:
    """Failed attempts with no failed measurement, by stage and error text."""
    where, params = window.where()
    f = tx.backend.figures
    rows = tx.rows(
        f"""SELECT a.stage, a.error, count(*) FROM {_FROM}
        {_and(where, f"a.outcome = 'FAIL' AND NOT EXISTS (SELECT 1 FROM {f['each']} WHERE {f['verdict']} = 'FAIL')")}
        GROUP BY a.stage, a.error""",
        params,
    )
    return [(str(stage), error, int(count)) for stage, error, count in rows]


def throughput(tx: Tx, window: Window) -> list[tuple[str | None, int, int]]:
    """Units that left each station per hour (hours since the epoch): each unit once, at its last attempt there."""
    where, params = window.where()
    hour = tx.backend.figures["whole"].format("w.ended / 3600")
    rows = tx.rows(
        f"""WITH w AS (SELECT v.station, v.serial, max(a.ended) AS ended FROM {_FROM}{where}
                       GROUP BY v.station, v.serial)
        SELECT w.station, {hour} AS hour, count(*) FROM w GROUP BY w.station, {hour} ORDER BY 2, 1""",
        params,
    )
    return [(station, int(at), int(count)) for station, at, count in rows]


def quarantines(tx: Tx, window: Window) -> list[tuple[Any, ...]]:
    """Each quarantine of a unit of the window: serial, reason, when, and the decision that followed (action, by,
    when), from the audit log."""
    where, params = window.where()
    return tx.rows(
        f"""SELECT q.subject, q.reason, q.at, d.action, d.by, d.at FROM audit q
        LEFT JOIN audit d ON d.id = (SELECT min(x.id) FROM audit x WHERE x.subject = q.subject AND x.id > q.id
                                     AND x.action LIKE 'release-%')
        WHERE q.action = 'quarantine' AND q.subject IN (SELECT v.serial FROM {_FROM}{where})
        ORDER BY q.id""",
        params,
    )


def _lot_terms(window: Window) -> tuple[str, list[Any]]:
    terms = [("l.lot = ?", window.lot), ("l.held_at <= ?", window.until)]
    chosen = [(sql, value) for sql, value in terms if value is not None]
    return "".join(f" AND {sql}" for sql, _ in chosen), [value for _, value in chosen]


def lot_holds(tx: Tx, window: Window) -> list[tuple[str, str | None, float | None]]:
    """Lots on hold (of the window's lot, held by its end): lot, reason, since when."""
    terms, params = _lot_terms(window)
    rows = tx.rows(
        f"SELECT l.lot, l.hold, l.held_at FROM lots l WHERE l.hold IS NOT NULL{terms} ORDER BY l.lot",
        params,
    )
    return [(str(lot), hold, at) for lot, hold, at in rows]


def lot_decisions(tx: Tx, window: Window) -> list[tuple[Any, ...]]:
    """The audit log's decisions on held lots: lot, when, by, action, reason."""
    terms, params = _lot_terms(window)
    return tx.rows(
        f"""SELECT d.subject, d.at, d.by, d.action, d.reason FROM audit d JOIN lots l ON l.lot = d.subject
        WHERE l.hold IS NOT NULL{terms} ORDER BY d.id""",
        params,
    )


def unreleased(tx: Tx, window: Window) -> list[tuple[str, int, str, int]]:
    """Recipe content run in the window and never released, on a store that holds releases (or whose audit log
    notes its unreleased runs): recipe, version, hash, units run with it."""
    where, params = window.where()
    rows = tx.rows(
        f"""SELECT v.recipe, v.recipe_version, v.recipe_hash, count(DISTINCT v.serial) FROM visits v
        WHERE v.recipe_hash NOT IN (SELECT recipe_hash FROM releases)
          AND (EXISTS (SELECT 1 FROM releases)
               OR EXISTS (SELECT 1 FROM audit x WHERE x.action = '{UNRELEASED_RUN}' AND x.subject = v.recipe_hash))
          AND v.id IN (SELECT a.visit FROM {_FROM}{where})
        GROUP BY v.recipe, v.recipe_version, v.recipe_hash ORDER BY v.recipe, v.recipe_version""",
        params,
    )
    return [(str(recipe), int(version), str(h), int(count)) for recipe, version, h, count in rows]


def _measured(tx: Tx, window: Window) -> tuple[str, list[Any]]:
    """A subquery ``m`` of every numeric measured value of the window: stage, name, x, units, low, high, seen (the
    attempt's id), at (when it ended), station, slot."""
    where, params = window.where()
    f = tx.backend.figures
    return (
        f"""(SELECT a.stage AS stage, {f["name"]} AS name, {f["value"]} AS x, {f["units"]} AS units,
                {f["low"]} AS low, {f["high"]} AS high, a.id AS seen, a.ended AS at, v.station AS station,
                v.slot AS slot
            FROM {_FROM}, {f["each"]}{where}) m""",
        params,
    )


def spreads(tx: Tx, window: Window) -> list[Spread]:
    """Each measurement's count, mean, spread, histogram and thinned run, by stage and name: in the order first
    measured, those first measured by one attempt by name."""
    measured, params = _measured(tx, window)
    found = [
        Spread(stage, name, units, low, high, int(count), float(total), float(least), float(most))
        for stage, name, units, low, high, count, total, least, most in tx.rows(
            f"""SELECT m.stage, m.name, max(m.units), max(m.low), min(m.high), count(*), sum(m.x), min(m.x), max(m.x)
            FROM {measured} WHERE m.x IS NOT NULL GROUP BY m.stage, m.name ORDER BY min(m.seen), m.name""",
            params,
        )
    ]
    if found:
        _bin(tx, measured, params, found)
        _thin(tx, measured, params, found)
    return found


def _values(count: int, width: int) -> str:
    row = "(" + ", ".join(["?"] * width) + ")"
    return ", ".join([row] * count)


def _bin(tx: Tx, measured: str, params: list[Any], found: list[Spread]) -> None:
    """The second pass: each value's histogram bin, and its squared deviation from its measurement's mean."""
    by_key = {(s.stage, s.name): s for s in found}
    given: list[Any] = []
    for s in found:
        lo, hi = s.edges
        given += [s.stage, s.name, s.mean, lo, BINS / (hi - lo)]
    whole = tx.backend.figures["whole"].format("(m.x - p.lo) * p.scale")
    rows = tx.rows(
        f"""WITH p (stage, name, mean, lo, scale) AS (VALUES {_values(len(found), 5)})
        SELECT m.stage, m.name, {whole}, count(*), sum((m.x - p.mean) * (m.x - p.mean))
        FROM {measured} JOIN p ON p.stage = m.stage AND p.name = m.name WHERE m.x IS NOT NULL
        GROUP BY m.stage, m.name, {whole}""",
        given + params,
    )
    for stage, name, index, count, squares in rows:
        s = by_key[(stage, name)]
        s.bins[min(max(int(index), 0), BINS - 1)] += int(count)
        s.squares += float(squares)


def _thin(tx: Tx, measured: str, params: list[Any], found: list[Spread]) -> None:
    """The third pass: every k-th value in time order, k chosen so that at most ``RUN_POINTS`` are left."""
    by_key = {(s.stage, s.name): s for s in found}
    given: list[Any] = []
    for s in found:
        given += [s.stage, s.name, math.ceil(s.count / RUN_POINTS)]
    rows = tx.rows(
        f"""WITH p (stage, name, k) AS (VALUES {_values(len(found), 3)})
        SELECT r.stage, r.name, r.at, r.x, r.station, r.slot FROM (
            SELECT m.stage, m.name, m.at, m.x, m.station, m.slot, p.k,
                   row_number() OVER (PARTITION BY m.stage, m.name ORDER BY m.at, m.seen) AS n
            FROM {measured} JOIN p ON p.stage = m.stage AND p.name = m.name WHERE m.x IS NOT NULL) r
        WHERE (r.n - 1) % r.k = 0 ORDER BY r.stage, r.name, r.n""",
        given + params,
    )
    for stage, name, at, x, station, slot in rows:
        by_key[(stage, name)].run.append((float(at), float(x), station, slot))
