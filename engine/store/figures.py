"""The line's figures as SQL aggregates over the records: yields, failures, throughput, decisions.

Only the store's worker thread calls these, inside one read transaction. Nothing here loads the
attempts themselves: every figure is a GROUP BY; the measurements' spreads are summed from their
rows in ``measured`` (``engine.store.spreads``, ``engine.store.measured``), and the few figures
that read an attempt's measurements otherwise unnest its JSON in the database (what differs
between the two databases is the backend's ``figures`` fragments). ``engine.report.figures`` turns
what these return into the report's document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.outcome import Outcome, UnitStatus, Verdict
from engine.store.spreads import Spread, run_charts, spreads
from engine.store.worker import Tx

UNRELEASED_RUN = "unreleased-recipe-run"
"""The audit log's action for a run of recipe content never released (as ``engine.store.sqlstore`` writes it)."""

COUNTED = (Outcome.PASS, Outcome.FAIL, Outcome.ERROR)
"""Outcomes that count for a yield: an aborted attempt, a skipped one or one decided not done does not."""
_COUNTED = "(" + ", ".join(f"'{outcome}'" for outcome in COUNTED) + ")"
_FROM = "attempts a JOIN visits v ON v.id = a.visit"


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

    @property
    def visits(self) -> bool:
        """Whether the window chooses by a visit's field (lot, station, recipe)."""
        return (self.lot, self.station, self.recipe) != (None, None, None)

    @property
    def attempts(self) -> str:
        """The attempts to read, joined to their visits only when the window needs them."""
        return _FROM if self.visits else "attempts a"


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
    where, params = window.where()
    held = held_lots(tx)
    by_unit = units_by_stage(tx, window, held)
    found = spreads(tx, window.attempts, where, params)
    rows = stage_rows(tx, window, held)
    run_charts(tx, window.attempts, where, params, found, _measuring(found))
    return Tallies(
        units=unit_standing(tx, window),
        stages=[_stage(row, by_unit.get(row[0], (0, 0, 0, 0))) for row in rows],
        by_check=failed_checks(tx, window),
        errors=failed_errors(tx, window),
        throughput=throughput(tx, window),
        quarantines=quarantines(tx, window),
        lot_holds=lot_holds(tx, window),
        lot_decisions=lot_decisions(tx, window),
        unreleased=unreleased(tx, window),
        spreads=found,
    )


def _measuring(found: list[Spread]) -> list[tuple[str, int, int, int]]:
    """Per stage: about how many attempts measured (its most measured name's count), the first's and last's id."""
    stages: dict[str, tuple[str, int, int, int]] = {}
    for s in found:
        _, count, first, last = stages.get(s.stage, (s.stage, 0, s.seen, s.latest))
        stages[s.stage] = (s.stage, max(count, s.count), min(first, s.seen), max(last, s.latest))
    return list(stages.values())


def _stage(row: tuple[Any, ...], units: tuple[int, int, int, int]) -> tuple[Any, ...]:
    """A stage's figures: stage, station, units, first pass, passed, attempts, aborted, held, failed attempts."""
    stage, station, attempts, aborted, failed = row
    counted, first, passed, held = units
    return (stage, station, counted, first, passed, int(attempts or 0), int(aborted or 0), held, int(failed or 0))


def _and(where: str, term: str) -> str:
    return f"{where} AND {term}" if where else f" WHERE {term}"


def held_lots(tx: Tx) -> list[str]:
    return [lot for (lot,) in tx.rows("SELECT lot FROM lots WHERE hold IS NOT NULL ORDER BY lot")]


def _held(lots: list[str]) -> str:
    """Whether visit ``v`` is of a held lot (never NULL)."""
    return f"(v.lot IS NOT NULL AND v.lot IN ({', '.join('?' * len(lots))}))" if lots else "(1 = 0)"


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


def units_by_stage(tx: Tx, window: Window, held: list[str]) -> dict[str, tuple[int, int, int, int]]:
    """Per stage: units with a counted attempt, those whose first counted attempt passed, those that passed at
    some attempt (units of held lots left out of the three), and units of held lots with a counted attempt."""
    where, params = window.where()
    rows = tx.rows(
        f"""SELECT u.stage, sum(CASE WHEN u.held = 0 AND u.fc IS NOT NULL THEN 1 ELSE 0 END),
               sum(CASE WHEN u.held = 0 AND u.fp = u.fc THEN 1 ELSE 0 END),
               sum(CASE WHEN u.held = 0 AND u.fp IS NOT NULL THEN 1 ELSE 0 END),
               sum(CASE WHEN u.held = 1 AND u.fc IS NOT NULL THEN 1 ELSE 0 END)
        FROM (SELECT a.stage, v.serial, min(CASE WHEN a.outcome IN {_COUNTED} THEN a.id END) AS fc,
                     min(CASE WHEN a.outcome = 'PASS' THEN a.id END) AS fp,
                     max(CASE WHEN {_held(held)} THEN 1 ELSE 0 END) AS held
              FROM {_FROM}{where} GROUP BY a.stage, v.serial) u
        GROUP BY u.stage""",
        held + params,
    )
    return {stage: (int(units or 0), int(first or 0), int(passed or 0), int(apart or 0))
            for stage, units, first, passed, apart in rows}  # fmt: skip


def stage_rows(tx: Tx, window: Window, held: list[str]) -> list[tuple[Any, ...]]:
    """Per stage in route order (first attempt first): its station (None: several), counted attempts (of units of
    lots not held), aborted attempts, failed attempts."""
    where, params = window.where()
    return tx.rows(
        f"""SELECT a.stage, CASE WHEN min(v.station) = max(v.station) THEN min(v.station) END,
               sum(CASE WHEN a.outcome IN {_COUNTED} AND NOT {_held(held)} THEN 1 ELSE 0 END),
               sum(CASE WHEN a.outcome = 'ABORTED' THEN 1 ELSE 0 END),
               sum(CASE WHEN a.outcome = 'FAIL' THEN 1 ELSE 0 END)
        FROM {_FROM}{where} GROUP BY a.stage ORDER BY min(a.id)""",
        held + params,
    )


def failed_checks(tx: Tx, window: Window) -> list[tuple[str, str, int]]:
    """Failed measurements of failed attempts, by stage and name."""
    where, params = window.where()
    f = tx.backend.figures
    rows = tx.rows(
        f"""SELECT a.stage, {f["name"]}, count(*) FROM {window.attempts}, {f["each"]}
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
        f"""SELECT a.stage, a.error, count(*) FROM {window.attempts}
        {_and(where, f"a.outcome = 'FAIL' AND NOT EXISTS (SELECT 1 FROM {f['each']} WHERE {f['verdict']} = 'FAIL')")}
        GROUP BY a.stage, a.error""",
        params,
    )
    return [(str(stage), error, int(count)) for stage, error, count in rows]


def throughput(tx: Tx, window: Window) -> list[tuple[str | None, int, int]]:
    """Units that left each station per hour (hours since the epoch): each visit of a unit to a station once, when
    its last attempt there ended."""
    where, params = window.where()
    hour = tx.backend.figures["whole"].format("l.ended / 3600")
    rows = tx.rows(
        f"""WITH w AS (SELECT v.id, v.station, max(a.id) AS last FROM {_FROM}{where} GROUP BY v.id, v.station)
        SELECT w.station, {hour}, count(*) FROM w JOIN attempts l ON l.id = w.last GROUP BY 1, 2 ORDER BY 2, 1""",
        params,
    )
    return [(station, int(at), int(count)) for station, at, count in rows]


def quarantines(tx: Tx, window: Window) -> list[tuple[Any, ...]]:
    """Each quarantine of a unit of the window: serial, reason, when, and the decision that followed (action, by,
    when), from the audit log."""
    where, params = window.where()
    of_window = f" AND q.subject IN (SELECT v.serial FROM {_FROM}{where})" if where else ""
    return tx.rows(
        f"""SELECT q.subject, q.reason, q.at, d.action, d.by, d.at FROM audit q
        LEFT JOIN audit d ON d.id = (SELECT min(x.id) FROM audit x WHERE x.subject = q.subject AND x.id > q.id
                                     AND x.action LIKE 'release-%')
        WHERE q.action = 'quarantine'{of_window}
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
    timed = window.since is not None or window.until is not None
    of_window = f" AND v.id IN (SELECT a.visit FROM {_FROM}{where})" if timed else where.replace(" WHERE ", " AND ")
    rows = tx.rows(
        f"""SELECT v.recipe, v.recipe_version, v.recipe_hash, count(DISTINCT v.serial) FROM visits v
        WHERE v.recipe_hash NOT IN (SELECT recipe_hash FROM releases)
          AND (EXISTS (SELECT 1 FROM releases)
               OR EXISTS (SELECT 1 FROM audit x WHERE x.action = '{UNRELEASED_RUN}' AND x.subject = v.recipe_hash))
          {of_window}
        GROUP BY v.recipe, v.recipe_version, v.recipe_hash ORDER BY v.recipe, v.recipe_version""",
        params,
    )
    return [(str(recipe), int(version), str(h), int(count)) for recipe, version, h, count in rows]
