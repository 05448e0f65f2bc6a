"""The line report's figures (``engine.report.figures``), summed by each database, against figures worked out by hand.

The line: stage ``flash`` at station ``flash``, then stage ``rf`` at station ``bench``; lot LOT-1,
and LOT-H, which is on hold. Each unit, its attempts (in time order) and where it ends:

=====  ==========================================  ====================================  =============
unit   flash                                       rf                                    ends
=====  ==========================================  ====================================  =============
U1     PASS (vbat 9)                               PASS (tx 15, leak 1)                  shipped
U2     FAIL "no response from the unit at boot",   PASS (tx 14, leak 2)                  in route
       PASS (vbat 10)
U3     ABORTED, PASS (vbat 11)                     FAIL (tx 20 FAIL), PASS (tx 13,       in route
                                                   leak 3)
U4     PASS                                        FAIL (tx 1 FAIL, gain 3),             scrapped
                                                   FAIL (tx 2 FAIL)
U5     ABORTED                                                                           aborted
U6     PASS, quarantined "dropped on the floor"                                          quarantined
U7     PASS, quarantined "scratched", released                                           in route
       (done, by bob)
U8     PASS, then refused by the status rule                                             refused
H1     FAIL "boot loop" (lot LOT-H, held)                                                held
=====  ==========================================  ====================================  =============

flash: U5 has no counted attempt (aborted only) and H1 is of a held lot, so the units are U1, U2,
U3, U4, U6, U7, U8 = 7. First pass: all but U2 (U3's first *counted* attempt passed) = 6, yield
6/7; passed 7, final yield 1; counted attempts 1+2+1+1+1+1+1 = 8, retests 8-7 = 1, rate 1/8;
aborted 2 (U3, U5); held 1 (H1).
rf: units U1..U4 = 4; first pass U1, U2 = 2 (0.5); passed U1, U2, U3 = 3 (0.75); attempts
1+1+2+2 = 6, retests 2, rate 2/6; aborted 0; held 0.
Pareto by stage: rf 3 failed attempts (U3 once, U4 twice), flash 2 (U2, H1). By check: rf tx 3
(gain passed, so it is no failure);
flash "(error) boot loop" 1 and "(error) no response from the" 1 (an error's first four words).
vbat (limits 4..16) is 9, 10, 11: mean 10, sd 1 (squares 1+0+1 over n-1 = 2), Cp 12/6 = 2,
Cpk min(16-10, 10-4)/3 = 2; its histogram spans 4..16 in 20 bins of 0.6: 9 in bin 8 (5/0.6 = 8.3),
10 in bin 10, 11 in bin 11. leak (high 5 only) is 1, 2, 3: mean 2, sd 1, Cp none, Cpk (5-2)/3 = 1.
Units per hour: every flash attempt is in hour T, so 9 units left flash then; U1-U3 left the bench
in hour T+1h and U4 in hour T+2h.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import storekit
from storekit import RECIPE, attempt, claim, measurement

from engine.outcome import Outcome, UnitStatus, Verdict
from engine.record import UnitRecord
from engine.report.figures import Window, line_figures
from engine.report.text import first_pass
from engine.store import SqlStore, open_store
from engine.store import spreads as store_spreads

store_url = storekit.store_url

T = 1_800_000_000.0
"""A whole hour (500,000 hours since the epoch)."""
HOUR = 3600.0


def _vbat(value: float) -> Any:
    return measurement("vbat", value, units="V", low=4.0, high=16.0)


def _rf(tx: float, leak: float | None = None, verdict: Verdict = Verdict.PASS) -> tuple[Any, ...]:
    found = [measurement("tx", tx, verdict, units="dBm", low=10.0, high=18.0)]
    if leak is not None:
        found.append(measurement("leak", leak, units="uA", high=5.0))
    return tuple(found)


def _gain(value: float) -> Any:
    """A measurement that passed in a failed attempt: no failure of its own."""
    return measurement("gain", value, units="dB")


def _flash(serial: str, outcome: Outcome, at: float, **kw: Any) -> Any:
    return attempt(serial, "flash", outcome, started=T + at, station="flash", lot=kw.pop("lot", "LOT-1"), **kw)


def _bench(serial: str, outcome: Outcome, at: float, **kw: Any) -> Any:
    return attempt(serial, "rf", outcome, started=T + at, station="bench", lot="LOT-1", slot=2, **kw)


def _fill(store: SqlStore) -> None:
    for serial in ("U1", "U2", "U3", "U4", "U5", "U6", "U7", "U8"):
        assert claim(store, serial, lot="LOT-1") is None
    assert claim(store, "H1", lot="LOT-H") is None
    no_response = "no response from the unit at boot"
    for a in (
        _flash("U1", Outcome.PASS, 10, measurements=(_vbat(9),)),
        _flash("U2", Outcome.FAIL, 20, error=no_response),
        _flash("U2", Outcome.PASS, 30, number=2, measurements=(_vbat(10),)),
        _flash("U3", Outcome.ABORTED, 40),
        _flash("U3", Outcome.PASS, 50, number=2, measurements=(_vbat(11),)),
        _flash("U4", Outcome.PASS, 60),
        _flash("U5", Outcome.ABORTED, 70),
        _flash("U8", Outcome.PASS, 80),
        _flash("H1", Outcome.FAIL, 90, lot="LOT-H", error="boot loop"),
        _bench("U1", Outcome.PASS, HOUR + 10, measurements=_rf(15, 1)),
        _bench("U2", Outcome.PASS, HOUR + 20, measurements=_rf(14, 2)),
        _bench("U3", Outcome.FAIL, HOUR + 30, measurements=_rf(20, verdict=Verdict.FAIL)),
        _bench("U3", Outcome.PASS, HOUR + 40, number=2, measurements=_rf(13, 3)),
        _bench("U4", Outcome.FAIL, 2 * HOUR + 10, measurements=(*_rf(1, verdict=Verdict.FAIL), _gain(3))),
        _bench("U4", Outcome.FAIL, 2 * HOUR + 20, number=2, measurements=_rf(2, verdict=Verdict.FAIL)),
    ):
        store.add(a)
    store.add(_flash("U6", Outcome.PASS, 100), quarantine="dropped on the floor")
    store.add(_flash("U7", Outcome.PASS, 110), quarantine="scratched")
    ends = {
        "U1": (UnitStatus.SHIPPED, None),
        "U4": (UnitStatus.SCRAPPED, "rf failed 2 times"),
        "U5": (UnitStatus.ABORTED, "aborted by the operator"),
        "U8": (UnitStatus.REFUSED, "refused by the status rule: the unit is in-route"),
    }
    for serial in ("U1", "U2", "U3", "U4", "U5", "U6", "U7", "U8", "H1"):
        store.finish(serial, *ends.get(serial, (UnitStatus.IN_ROUTE, None)))
    store.release("U7", "done", "bob")
    store.hold_lot("LOT-H", "sampled failure rate too high")
    store.note_decision("carol", "lot-hold-kept", "LOT-H", "waiting for the failure analysis")
    store.release_recipe("lab-recipe", 2, "an-older-content-hash", "recipes/lab.yaml", "dave")
    store.flush()


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    opened = open_store(store_url)
    try:
        _fill(opened)
        yield opened
    finally:
        opened.close()


def _stage(figures: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [s for s in figures["stages"] if s["stage"] == name]
    return found


def _measurement(figures: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [m for m in figures["measurements"] if m["name"] == name]
    return found


def test_units_stand_where_their_records_say(store: SqlStore) -> None:
    """Every unit of the window once: by its status, else its held lot, its last attempt aborted, its refusal."""
    figures = line_figures(store, Window())
    assert figures["schema"] == "floorflow.report/1"
    assert figures["units"] == {
        "total": 9, "shipped": 1, "scrapped": 1, "in_route": 3, "held": 1, "quarantined": 1, "aborted": 1,
        "refused": 1,
    }  # fmt: skip


def test_yields_count_neither_aborted_attempts_nor_held_units(store: SqlStore) -> None:
    """First-pass and final yield, retests and their rate per stage, in route order, as worked out above."""
    figures = line_figures(store, Window())
    assert [s["stage"] for s in figures["stages"]] == ["flash", "rf"]
    assert _stage(figures, "flash") == {
        "stage": "flash", "station": "flash", "units": 7, "first_pass": 6, "first_pass_yield": pytest.approx(6 / 7),
        "passed": 7, "final_yield": 1.0, "attempts": 8, "retests": 1, "retest_rate": 0.125, "aborted": 2, "held": 1,
    }  # fmt: skip
    assert _stage(figures, "rf") == {
        "stage": "rf", "station": "bench", "units": 4, "first_pass": 2, "first_pass_yield": 0.5, "passed": 3,
        "final_yield": 0.75, "attempts": 6, "retests": 2, "retest_rate": pytest.approx(1 / 3), "aborted": 0,
        "held": 0,
    }  # fmt: skip


def test_pareto_counts_failed_attempts_and_their_checks(store: SqlStore) -> None:
    """Failed attempts by stage, most first; by failed measurement, or by an error's first words without one."""
    pareto = line_figures(store, Window())["pareto"]
    assert pareto["by_stage"] == [{"stage": "rf", "failures": 3}, {"stage": "flash", "failures": 2}]
    assert pareto["by_check"] == [
        {"stage": "rf", "check": "tx", "failures": 3},
        {"stage": "flash", "check": "(error) boot loop", "failures": 1},
        {"stage": "flash", "check": "(error) no response from the", "failures": 1},
    ]


def test_a_measurements_mean_sd_cp_cpk_and_histogram(store: SqlStore) -> None:
    """vbat 9, 10, 11 in 4..16: mean 10, sd 1, Cp 2, Cpk 2; leak 1, 2, 3 under 5: Cpk 1 from its one limit."""
    figures = line_figures(store, Window())
    # stages in route order, the measurements one attempt measured first by name
    order = [(m["stage"], m["name"]) for m in figures["measurements"]]
    assert order == [("flash", "vbat"), ("rf", "leak"), ("rf", "tx"), ("rf", "gain")]
    vbat = _measurement(figures, "vbat")
    assert (vbat["units"], vbat["low"], vbat["high"], vbat["count"]) == ("V", 4.0, 16.0, 3)
    assert (vbat["mean"], vbat["sd"], vbat["cp"], vbat["cpk"]) == pytest.approx((10.0, 1.0, 2.0, 2.0))
    assert vbat["histogram"]["edges"][0] == 4.0 and vbat["histogram"]["edges"][-1] == 16.0
    assert len(vbat["histogram"]["edges"]) == 21
    assert vbat["histogram"]["counts"] == [0] * 8 + [1, 0, 1, 1] + [0] * 8
    run = [(p["value"], p["station"], p["socket"]) for p in vbat["run"]]
    assert run == [(9, "flash", 1), (10, "flash", 1), (11, "flash", 1)]
    assert vbat["run"][0]["at"] == "2027-01-15T08:00:10.250000+00:00"
    leak = _measurement(figures, "leak")
    assert (leak["mean"], leak["sd"], leak["cpk"]) == pytest.approx((2.0, 1.0, 1.0))
    assert leak["cp"] is None and leak["low"] is None and leak["marginal_low"] is None
    assert _measurement(figures, "tx")["count"] == 6


def test_the_run_chart_is_thinned_evenly(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """With at most 2 points, of vbat's 3 attempts (ids 1, 3, 5: halves from 1 and from 3) the first of each half."""
    monkeypatch.setattr(store_spreads, "RUN_POINTS", 2)
    vbat = _measurement(line_figures(store, Window()), "vbat")
    assert [p["value"] for p in vbat["run"]] == [9, 10]
    # vbat is not among the latest 2 attempts with measurements, so its bins are counted a second time, now
    # over its known span: the same figures
    assert (vbat["count"], vbat["low"], vbat["high"]) == (3, 4.0, 16.0)
    assert (vbat["mean"], vbat["sd"], vbat["cpk"]) == pytest.approx((10.0, 1.0, 2.0))
    assert vbat["histogram"]["counts"] == [0] * 8 + [1, 0, 1, 1] + [0] * 8


def test_the_run_chart_takes_evenly_spread_attempts_and_values(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With at most 5 points: of 10 attempts (v 0..9), the first of each fifth of their ids (0, 2, 4, 6, 8); of one
    attempt measuring ch 9 times, every second value (1, 3, 5, 7, 9)."""
    for n in range(10):
        store.add(attempt("U9", "burn", started=T + 3 * HOUR + n, number=n + 1, measurements=(measurement("v", n),)))
    channels = tuple(measurement("ch", n) for n in range(1, 10))
    store.add(attempt("U9", "cal", started=T + 4 * HOUR, measurements=channels))
    store.flush()
    monkeypatch.setattr(store_spreads, "RUN_POINTS", 5)
    figures = line_figures(store, Window())
    assert [p["value"] for p in _measurement(figures, "v")["run"]] == [0, 2, 4, 6, 8]
    assert [p["value"] for p in _measurement(figures, "ch")["run"]] == [1, 3, 5, 7, 9]
    assert _measurement(figures, "ch")["count"] == 9


def test_throughput_holds_and_decisions(store: SqlStore) -> None:
    """Units per station per hour; quarantines with the decision that followed; the held lot; unreleased recipes."""
    figures = line_figures(store, Window())
    assert figures["throughput"] == [
        {"station": "flash", "hour": "2027-01-15T08:00:00.000000+00:00", "units": 9},
        {"station": "bench", "hour": "2027-01-15T09:00:00.000000+00:00", "units": 3},
        {"station": "bench", "hour": "2027-01-15T10:00:00.000000+00:00", "units": 1},
    ]
    quarantines = [{k: q[k] for k in ("serial", "reason", "decision", "by")} for q in figures["quarantines"]]
    assert quarantines == [
        {"serial": "U6", "reason": "dropped on the floor", "decision": None, "by": None},
        {"serial": "U7", "reason": "scratched", "decision": "done", "by": "bob"},
    ]
    [hold] = figures["lot_holds"]
    assert (hold["lot"], hold["reason"]) == ("LOT-H", "sampled failure rate too high") and hold["at"]
    assert [(d["by"], d["action"]) for d in hold["decisions"]] == [("carol", "lot-hold-kept")]
    assert figures["unreleased_recipes"] == [
        {"recipe": "lab-recipe", "version": 3, "hash": RECIPE.content_hash, "units": 9}
    ]


def test_the_window_chooses_the_attempts(store: SqlStore) -> None:
    """A station, a lot or a time span keeps only their attempts, and the units they are of."""
    bench = line_figures(store, Window(station="bench"))
    assert [s["stage"] for s in bench["stages"]] == ["rf"] and bench["units"]["total"] == 4
    assert bench["window"]["station"] == "bench"
    held = line_figures(store, Window(lot="LOT-H"))
    assert held["units"]["total"] == held["units"]["held"] == 1
    assert _stage(held, "flash")["units"] == 0 and _stage(held, "flash")["first_pass_yield"] is None
    late = line_figures(store, Window(since=T + HOUR, until=T + 2 * HOUR))
    assert [s["stage"] for s in late["stages"]] == ["rf"] and late["units"]["total"] == 3
    assert late["window"]["since"] == "2027-01-15T09:00:00.000000+00:00"
    tx, leak = _measurement(late, "tx"), _measurement(late, "leak")  # U4's two attempts ended after the window
    assert (tx["count"], tx["mean"], leak["count"], leak["mean"]) == (4, 15.5, 3, 2.0)
    assert sum(tx["histogram"]["counts"]) == 4 and tx["histogram"]["edges"][::20] == [10.0, 20.0]
    assert held["measurements"] == []  # the held lot's unit measured nothing
    assert line_figures(store, Window(recipe="another-recipe"))["stages"] == []


def test_a_units_first_pass_skips_aborted_attempts() -> None:
    """The HTML export's first pass: an aborted attempt, or one decided not done, is not the stage's first."""
    aborted = [attempt("A", "flash", Outcome.ABORTED, number=1), attempt("A", "flash", Outcome.PASS, number=2)]
    assert first_pass(UnitRecord("A", attempts=aborted))
    not_done = [attempt("B", "burn", Outcome.NOT_DONE), attempt("B", "burn", Outcome.FAIL, number=2)]
    assert not first_pass(UnitRecord("B", attempts=not_done))
    assert not first_pass(UnitRecord("C", attempts=[attempt("C", "flash", Outcome.ABORTED)]))
