"""Terminal views of recorded units: one unit in full, and a table of many."""

from __future__ import annotations

import io

from rich.console import Console

from engine.context import MeasurementRecord
from engine.outcome import Outcome, Verdict
from engine.record import Attempt, Decision, Identity, ImageOnUnit, RecipeRef, UnitRecord
from engine.report.unitview import list_units, show_unit

T0 = 1_700_000_000.0
"""2023-11-14 22:13:20 UTC."""
RECIPE = RecipeRef("board", 4, "abcdef0123456789" * 4)

TX_HIGH = MeasurementRecord("tx_power_dbm", 19.2, Verdict.FAIL, "dBm", 14.0, 18.0)
VSWR = MeasurementRecord("vswr", 1.4, Verdict.PASS, None, None, 2.0)


def _attempt(
    stage: str,
    n: int,
    outcome: Outcome,
    start: float,
    *,
    serial: str = "SN-MIX",
    station: str | None = "test",
    measurements: tuple[MeasurementRecord, ...] = (),
    error: str | None = None,
) -> Attempt:
    """An attempt in slot 2, by alice, started ``start`` seconds after T0 and lasting 2.5 s."""
    return Attempt(
        serial,
        stage,
        f"lab.{stage}",
        n,
        outcome,
        T0 + start,
        T0 + start + 2.5,
        RECIPE,
        station=station,
        slot=2,
        operator="alice",
        measurements=measurements,
        error=error,
    )


def _mixed() -> UnitRecord:
    return UnitRecord(
        "SN-MIX",
        lot="LOT-A",
        product="gw-1",
        lifecycle="calibrated",
        attempts=[
            _attempt("boot", 1, Outcome.PASS, 0),
            _attempt("rf", 1, Outcome.FAIL, 10, measurements=(TX_HIGH, VSWR)),
            _attempt("flash", 1, Outcome.ERROR, 30, error="programmer not found"),
            _attempt("sample", 1, Outcome.SKIPPED, 600, station="pack", error="not sampled"),
        ],
        images=[ImageOnUnit("fw-1.2.bin", None, "flash", T0 + 31)],
    )


def _scrapped() -> UnitRecord:
    return UnitRecord(
        "SN-SCRAP",
        lot="LOT-A",
        status="scrapped",
        reason="rf failed 2 times",
        attempts=[_attempt("rf", 2, Outcome.FAIL, 50, serial="SN-SCRAP", error="still low")],
        identities=[
            Identity("mac", "02:00:00:00:00:07", T0 + 5, retired=True),
            Identity("imei", "490154203237518", T0 + 6),
        ],
    )


def _quarantined() -> UnitRecord:
    return UnitRecord(
        "SN-Q",
        lot="LOT-B",
        status="quarantined",
        reason="dropped on the floor",
        attempts=[_attempt("boot", 1, Outcome.PASS, 1000, serial="SN-Q")],
        decisions=[Decision(T0 + 1010, "bob", "quarantine", "SN-Q", "dropped on the floor")],
    )


def _waiting() -> UnitRecord:
    return UnitRecord("SN-WAIT", lot="LOT-B", attempts=[_attempt("boot", 1, Outcome.PASS, 1100, serial="SN-WAIT")])


def _console(width: int = 200) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, color_system=None), out


def _line_with(text: str, needle: str) -> str:
    [line] = [line for line in text.splitlines() if needle in line]
    return line


def _fact(text: str, name: str) -> str:
    """The value on the line that starts with ``name``, as show_unit prints a unit's facts."""
    [line] = [line for line in text.splitlines() if line.startswith(f"{name} ")]
    return line.removeprefix(name).strip()


def test_show_unit_prints_what_the_unit_is_and_its_history() -> None:
    console, out = _console()
    show_unit(_mixed(), console)
    text = out.getvalue()
    assert "unit SN-MIX" in text
    assert _fact(text, "product") == "gw-1"
    assert _fact(text, "lot") == "LOT-A"
    assert _fact(text, "status") == "in-route"
    assert _fact(text, "lifecycle") == "calibrated"
    assert _fact(text, "recipe") == "board v4 abcdef012345"
    assert "abcdef0123456" not in text
    assert "on hold" not in text
    assert "fw-1.2.bin" in _line_with(text, "not read back")

    boot = _line_with(text, "boot ")
    for part in ("2023-11-14 22:13:20", "PASS", "test/2", "alice", "2.50s"):
        assert part in boot
    rf = _line_with(text, "rf ")
    assert "FAIL" in rf
    assert "tx_power_dbm=19.2 dBm (limits 14.0..18.0) FAIL" in rf
    assert "vswr" not in text
    assert "programmer not found" in _line_with(text, "ERROR")
    skipped = _line_with(text, "SKIPPED")
    assert "pack/2" in skipped and "not sampled" in skipped
    history = [line.split("│")[2].strip() for line in text.splitlines() if line.startswith("│ 2023-")]
    assert history == ["boot", "rf", "flash", "sample"]


def test_show_unit_shows_a_scrapped_units_retired_identity() -> None:
    console, out = _console()
    show_unit(_scrapped(), console)
    text = out.getvalue()
    assert _fact(text, "status") == "scrapped: rf failed 2 times"
    assert "retired" in _line_with(text, "02:00:00:00:00:07")
    assert "in use" in _line_with(text, "490154203237518")
    assert "still low" in _line_with(text, "FAIL")


def test_show_unit_shows_the_audit_and_the_lots_hold() -> None:
    console, out = _console()
    show_unit(_quarantined(), console, held="sampled failure rate too high")
    text = out.getvalue()
    assert _fact(text, "status") == "quarantined: dropped on the floor"
    assert _fact(text, "hold") == "lot LOT-B is on hold: sampled failure rate too high"
    assert "decisions (audit)" in text
    decision = _line_with(text, "bob")
    for part in ("2023-11-14 22:30:10", "quarantine", "SN-Q", "dropped on the floor"):
        assert part in decision


def test_show_unit_without_attempts() -> None:
    console, out = _console()
    show_unit(UnitRecord("SN-NEW", lot="LOT-A"), console)
    text = out.getvalue()
    assert "unit SN-NEW" in text and "no attempts" in text


def test_values_are_shown_literally_not_as_markup() -> None:
    unit = UnitRecord("SN[/]", attempts=[_attempt("uart", 1, Outcome.ERROR, 0, serial="SN[/]", error="[bold]x[/bold]")])
    console, out = _console()
    show_unit(unit, console)
    list_units([unit], console)
    text = out.getvalue()
    assert "unit SN[/]" in text
    assert "[bold]x[/bold]" in text


def test_list_units_shows_a_row_per_unit() -> None:
    console, out = _console()
    list_units([_mixed(), _scrapped(), _quarantined(), _waiting()], console, holds={"LOT-B": "sampled failures"})
    text = out.getvalue()
    assert "units (4)" in text
    header = _line_with(text, "serial")
    for column in ("lot", "product", "status", "lifecycle", "last stage", "station", "ended (UTC)"):
        assert column in header

    mixed = _line_with(text, "SN-MIX")
    for part in ("LOT-A", "gw-1", "in-route", "calibrated", "sample SKIPPED", "pack/2", "2023-11-14 22:23:22"):
        assert part in mixed
    assert "rf FAIL" in _line_with(text, "SN-SCRAP") and "scrapped" in _line_with(text, "SN-SCRAP")
    quarantined = _line_with(text, "SN-Q")
    assert "quarantined" in quarantined and "held" not in quarantined
    waiting = _line_with(text, "SN-WAIT")
    assert "held" in waiting and "in-route" not in waiting


def test_list_units_without_holds_shows_in_route() -> None:
    console, out = _console()
    list_units([_waiting(), UnitRecord("SN-NEW")], console)
    text = out.getvalue()
    assert "in-route" in _line_with(text, "SN-WAIT")
    assert "held" not in text
    assert "in-route" in _line_with(text, "SN-NEW")


def test_list_units_says_when_there_are_none() -> None:
    console, out = _console()
    list_units([], console)
    assert out.getvalue().strip() == "no units"


# -- a narrow console ---------------------------------------------------------------------------------------

LONG_ERROR = "the programmer at /dev/ttyUSB-fixture-3 did not answer within 30 s: is the cable in its socket?"


def _whole_lines(text: str, width: int) -> list[str]:
    """The output's lines, checked to be no wider than the console and to cut nothing with an ellipsis."""
    assert "…" not in text
    lines = text.splitlines()
    assert all(len(line.rstrip()) <= width for line in lines), text
    return lines


def test_at_80_columns_the_list_shortens_times_and_leaves_out_columns_rather_than_cut_a_value() -> None:
    console, out = _console(80)
    list_units([_mixed(), _scrapped(), _quarantined(), _waiting()], console, holds={"LOT-B": "sampled failures"})
    text = out.getvalue()
    _whole_lines(text, 80)
    assert "units (4)" in text
    mixed = _line_with(text, "SN-MIX")
    for part in ("LOT-A", "in-route", "sample SKIPPED", "11-14 22:23"):
        assert part in mixed
    assert "rf FAIL" in _line_with(text, "SN-SCRAP") and "scrapped" in _line_with(text, "SN-SCRAP")
    assert "held" in _line_with(text, "SN-WAIT")


def test_a_list_too_wide_for_any_table_is_printed_as_lines() -> None:
    console, out = _console(40)
    list_units([_mixed(), _waiting()], console)
    lines = out.getvalue().splitlines()
    assert "…" not in out.getvalue()
    at = lines.index("SN-MIX")
    assert lines[at + 1 : at + 8] == [
        "  lot: LOT-A",
        "  product: gw-1",
        "  status: in-route",
        "  lifecycle: calibrated",
        "  last stage: sample SKIPPED",
        "  station: pack/2",
        "  ended (UTC): 2023-11-14 22:23:22",
    ]
    assert "SN-WAIT" in lines


def test_at_80_columns_a_units_history_keeps_every_value_whole() -> None:
    unit = _mixed()
    unit.attempts.append(_attempt("flash", 2, Outcome.ERROR, 40, error=LONG_ERROR))
    console, out = _console(80)
    show_unit(unit, console)
    text = out.getvalue()
    lines = _whole_lines(text, 80)
    words = {word.strip("│┃ ") for line in lines for word in line.split()}
    for stage in ("boot", "rf", "flash", "sample"):
        assert stage in words
    for value in ("tx_power_dbm=19.2", "(limits", "14.0..18.0)", "test/2", "pack/2", "not", "sampled"):
        assert value in words, value
    assert set(LONG_ERROR.split()) <= words  # wrapped between words, never inside one


def test_a_history_too_wide_for_any_table_is_printed_as_lines() -> None:
    console, out = _console(40)
    show_unit(_mixed(), console)
    text = out.getvalue()
    assert "…" not in text
    lines = [line.rstrip() for line in text.splitlines()]
    at = lines.index("rf")
    assert lines[at + 1 : at + 10] == [
        "  time (UTC): 2023-11-14 22:13:30",
        "  attempt: 1",
        "  outcome: FAIL",
        "  station/slot: test/2",
        "  operator: alice",
        "  duration: 2.50s",
        "  error or failing measurements:",
        "tx_power_dbm=19.2 dBm (limits",
        "14.0..18.0) FAIL",
    ]
