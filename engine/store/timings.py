"""Each stage's attempt times and failure chances over a window of the records, summed by the database.

What ``floorflow profile`` fits a line profile to. Only counted attempts (``figures.COUNTED``: PASS,
FAIL, ERROR) whose end is not before their start are read; an attempt's time is ``ended - started``.
Per stage, the database sums their count, mean, standard deviation (two passes: the mean, then the
squares about it, so that a nearly fixed time keeps its precision), least and greatest time, the
failed ones (FAIL or ERROR), and those with no failed measurement; per stage and measurement name,
the attempts that judged it FAIL (the ``measured`` rows, ``engine.store.measured``, which the caller
brings up to date first). Of each stage only a sample of at most ``SAMPLE`` times is read back: of a
stage with more attempts, the first in each of ``SAMPLE`` equal spans of their ids (ids are written
in time order), as the run charts of ``engine.store.spreads`` pick theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.outcome import Outcome, Verdict
from engine.store.figures import COUNTED, Window
from engine.store.worker import Tx

SAMPLE = 5000
"""At most this many times of a stage are read back, to compare distributions on."""

_COUNTED = "(" + ", ".join(f"'{outcome}'" for outcome in COUNTED) + ")"
_FAILED = f"('{Outcome.FAIL}', '{Outcome.ERROR}')"
_FROM = "attempts a JOIN visits v ON v.id = a.visit"
_TIME = "(a.ended - a.started)"
_MEASURE_FAILED = f"EXISTS (SELECT 1 FROM measured m WHERE m.attempt = a.id AND m.verdict = '{Verdict.FAIL}')"


@dataclass
class StageTimes:
    """One stage's counted attempts over the window, as the database summed them."""

    stage: str
    count: int
    mean: float
    sd: float
    least: float
    most: float
    failed: int
    """Attempts that ended FAIL or ERROR."""
    clean: int
    """Attempts with no failed measurement."""
    clean_failed: int
    """Failed attempts with no failed measurement."""
    first: int = 0
    last: int = 0
    sample: list[float] = field(default_factory=list)
    measurements: dict[str, int] = field(default_factory=dict)
    """Per measurement name, the attempts that judged it FAIL."""


@dataclass
class Timings:
    """The window's recipes, and (when they are one, or the window names one) each stage's times in route order."""

    recipes: list[str]
    stages: list[StageTimes]


def _where(window: Window, extra: str = "") -> tuple[str, list[Any]]:
    where, params = window.where()
    terms = f"a.outcome IN {_COUNTED} AND a.ended >= a.started{extra}"
    return (f"{where} AND {terms}" if where else f" WHERE {terms}"), params


def stage_timings(tx: Tx, window: Window) -> Timings:
    """The window's recipes and, unless the window names none and they are several, each stage's times."""
    where, params = _where(window)
    recipes = [str(r) for (r,) in tx.rows(f"SELECT DISTINCT v.recipe FROM {_FROM}{where} ORDER BY 1", params)]
    if window.recipe is None and len(recipes) > 1:
        return Timings(recipes, [])
    stages = _sums(tx, window)
    _measurements(tx, window, stages)
    _samples(tx, window, stages)
    return Timings(recipes, list(stages.values()))


def _sums(tx: Tx, window: Window) -> dict[str, StageTimes]:
    """Per stage in route order (its first attempt first): the counts, the mean, the sd and the extremes."""
    where, params = _where(window)
    rows = tx.rows(
        f"""WITH c AS (SELECT a.stage, avg({_TIME}) AS centre FROM {_FROM}{where} GROUP BY a.stage)
        SELECT a.stage, count(*), min(c.centre), sum(({_TIME} - c.centre) * ({_TIME} - c.centre)),
               min({_TIME}), max({_TIME}), min(a.id), max(a.id),
               sum(CASE WHEN a.outcome IN {_FAILED} THEN 1 ELSE 0 END),
               sum(CASE WHEN {_MEASURE_FAILED} THEN 0 ELSE 1 END),
               sum(CASE WHEN a.outcome IN {_FAILED} AND NOT {_MEASURE_FAILED} THEN 1 ELSE 0 END)
        FROM {_FROM} JOIN c ON c.stage = a.stage{where} GROUP BY a.stage ORDER BY min(a.id)""",
        params + params,
    )
    found = {}
    for stage, count, mean, squares, least, most, first, last, failed, clean, clean_failed in rows:
        n = int(count)
        sd = (max(float(squares), 0.0) / (n - 1)) ** 0.5 if n > 1 else 0.0
        found[str(stage)] = StageTimes(
            str(stage), n, float(mean), sd, float(least), float(most), int(failed), int(clean), int(clean_failed),
            int(first), int(last),
        )  # fmt: skip
    return found


def _measurements(tx: Tx, window: Window, stages: dict[str, StageTimes]) -> None:
    """Per stage and measurement name, the counted attempts that judged it FAIL (each attempt once)."""
    where, params = _where(window)
    rows = tx.rows(
        f"""SELECT a.stage, m.name, count(DISTINCT a.id) FROM {_FROM} JOIN measured m ON m.attempt = a.id
        {where} AND m.verdict = '{Verdict.FAIL}' GROUP BY a.stage, m.name ORDER BY a.stage, m.name""",
        params,
    )
    for stage, name, count in rows:
        if stage in stages:
            stages[stage].measurements[str(name)] = int(count)


def _samples(tx: Tx, window: Window, stages: dict[str, StageTimes]) -> None:
    """Each stage's sample of times: all of a stage with at most ``SAMPLE`` attempts, else the first in each
    of ``SAMPLE`` equal spans of its attempts' ids."""
    few = [s.stage for s in stages.values() if s.count <= SAMPLE]
    many = [s for s in stages.values() if s.count > SAMPLE]
    if few:
        where, params = _where(window, f" AND a.stage IN ({', '.join('?' * len(few))})")
        for stage, time in tx.rows(f"SELECT a.stage, {_TIME} FROM {_FROM}{where} ORDER BY a.id", params + few):
            stages[stage].sample.append(float(time))
    if many:
        for stage, time in _spread(tx, window, many):
            if time is not None:
                stages[stage].sample.append(float(time))


def _spread(tx: Tx, window: Window, many: list[StageTimes]) -> list[tuple[Any, ...]]:
    """The first counted attempt's time in each of ``SAMPLE`` equal spans of ids, per stage of ``many``."""
    real = tx.backend.types["real"]
    starts = " UNION ALL ".join([f"SELECT CAST(? AS TEXT), CAST(? AS {real}), CAST(? AS {real})"] * len(many))
    given: list[Any] = [x for s in many for x in (s.stage, s.first, (s.last + 1 - s.first) / SAMPLE)]
    # whole ids: an id compared with a fraction would not use the key's index
    at, end = (tx.backend.figures["whole"].format(f"g.lo + {k} * g.step") for k in ("g.k", "(g.k + 1)"))
    where, params = _where(window, f" AND a.id >= {at} AND a.id < {end} AND a.stage = g.stage")
    return tx.rows(
        f"""WITH RECURSIVE s (stage, lo, step) AS ({starts}),
        g (stage, k, lo, step) AS (SELECT stage, 0, lo, step FROM s
                                   UNION ALL SELECT stage, k + 1, lo, step FROM g WHERE k + 1 < {SAMPLE})
        SELECT g.stage, (SELECT {_TIME} FROM {_FROM}{where} ORDER BY a.id LIMIT 1) FROM g ORDER BY g.stage, g.k""",
        given + params,
    )
