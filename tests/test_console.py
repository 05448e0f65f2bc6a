"""Progress subscribers: plain lines for logs and pipes, a live table of slots for a terminal."""

from __future__ import annotations

import io
import re
import threading

from rich.console import Console

from engine.context import MeasurementRecord
from engine.events import Event, StepEnded, StepStarted, Stopping, UnitEnded, UnitStarted
from engine.outcome import Outcome, Verdict
from engine.run.console import LiveProgress, PlainProgress, failed_check, progress_for

T0 = 1_700_000_000.0


def _run_of_one_unit(slot: int = 2, serial: str = "SN0003") -> list[Event]:
    """A unit that passes connect, fails rf_cal once, then passes it, and ships."""
    return [
        UnitStarted(serial, slot, lot="L7"),
        StepStarted(serial, slot, "connect", "device.connect", 1, None, T0),
        StepEnded(serial, slot, "connect", "device.connect", 1, Outcome.PASS, T0, 0.05),
        StepStarted(serial, slot, "rf_cal", "rf.calibrate", 1, None, T0 + 1),
        StepEnded(serial, slot, "rf_cal", "rf.calibrate", 1, Outcome.FAIL, T0 + 1, 0.5, error="tx low"),
        StepStarted(serial, slot, "rf_cal", "rf.calibrate", 2, None, T0 + 2),
        StepEnded(serial, slot, "rf_cal", "rf.calibrate", 2, Outcome.PASS, T0 + 2, 0.123),
        UnitEnded(serial, slot, "shipped"),
    ]


def _text(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, force_terminal=True, width=120).print(renderable)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # drop colours and cursor moves


# -- plain ------------------------------------------------------------------------------------------


def test_plain_progress_writes_one_line_per_event() -> None:
    """Each event is one flushed line: slot, unit, stage, attempt, outcome and duration."""
    out = io.StringIO()
    progress = PlainProgress(out)
    for event in _run_of_one_unit():
        progress(event)
    assert out.getvalue().splitlines() == [
        "slot 2 SN0003 started (lot L7)",
        "slot 2 SN0003 connect attempt 1 started (device.connect)",
        "slot 2 SN0003 connect attempt 1 PASS 0.05s",
        "slot 2 SN0003 rf_cal attempt 1 started (rf.calibrate)",
        "slot 2 SN0003 rf_cal attempt 1 FAIL 0.50s: tx low",
        "slot 2 SN0003 rf_cal attempt 2 started (rf.calibrate)",
        "slot 2 SN0003 rf_cal attempt 2 PASS 0.12s",
        "slot 2 SN0003 shipped",
    ]


def test_plain_progress_lines_stay_whole_with_many_slots() -> None:
    """Slot threads writing at once never interleave inside a line."""
    out = io.StringIO()
    progress = PlainProgress(out)

    def run(slot: int) -> None:
        for _ in range(50):
            for event in _run_of_one_unit(slot, f"SN{slot:04d}"):
                progress(event)

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    lines = out.getvalue().splitlines()
    assert len(lines) == 8 * 50 * 8
    assert all(re.fullmatch(r"slot (\d) SN000\1 \S.*", line) for line in lines)


# -- live -------------------------------------------------------------------------------------------


def test_live_table_shows_each_slot_with_its_unit_stage_attempt_and_elapsed_time() -> None:
    """A running attempt shows its stage, attempt and time so far, and says it is running (not the
    outcome of the attempt before it); an idle slot says idle."""
    progress = LiveProgress(Console(file=io.StringIO()), slots=3, clock=lambda: T0 + 3.5)
    events = _run_of_one_unit()
    for event in events[:2]:
        progress(event)
    assert re.search(r"connect\s*│\s*1\s*│\s*3\.50s\s*│\s*running", _text(progress.table()))
    for event in events[2:6]:
        progress(event)
    text = _text(progress.table())
    row = next(line for line in text.splitlines() if "SN0003" in line)
    assert re.search(r"2\s*│\s*SN0003\s*│\s*rf_cal\s*│\s*2\s*│\s*1\.50s\s*│\s*running\s*│", row), row
    assert "PASS" not in row and "FAIL" not in row
    assert text.count("idle") == 2


def test_live_table_is_titled_with_the_recipe_and_the_station() -> None:
    """The title names the recipe and the station, or says every station's stages are run."""
    console = Console(file=io.StringIO())
    at_rf = LiveProgress(console, recipe="sphere-thermostat v1", station="rf")
    assert _text(at_rf.table()).splitlines()[0].strip() == "sphere-thermostat v1 · station rf"
    everywhere = progress_for(True, console=console, recipe="phone-wim v3")
    assert isinstance(everywhere, LiveProgress)
    assert _text(everywhere.table()).splitlines()[0].strip() == "phone-wim v3 · all stations"


def test_live_table_keeps_the_last_outcome_and_the_unit_status() -> None:
    """After an attempt the row shows its duration and outcome (a failure with its reason); then the unit's status."""
    progress = LiveProgress(Console(file=io.StringIO()), clock=lambda: T0 + 100)
    events = _run_of_one_unit()
    for event in events[:5]:
        progress(event)
    assert re.search(r"rf_cal\s*│\s*1\s*│\s*0\.50s\s*│\s*FAIL rf_cal: tx low", _text(progress.table()))
    for event in events[5:7]:
        progress(event)
    assert re.search(r"rf_cal\s*│\s*2\s*│\s*0\.12s\s*│\s*PASS", _text(progress.table()))
    progress(events[7])
    assert re.search(r"SN0003\s*│.*│\s*shipped", _text(progress.table()))


def _scrapped_on_a_measurement(slot: int, serial: str) -> list[Event]:
    measured = (
        MeasurementRecord("standby_current", "pass", Verdict.PASS),
        MeasurementRecord("standby_current_ma", 99.0, Verdict.FAIL, "mA", None, 8.0),
    )
    return [
        UnitStarted(serial, slot),
        StepStarted(serial, slot, "standby_current", "power.standby", 1, None, T0),
        StepEnded(serial, slot, "standby_current", "power.standby", 1, Outcome.FAIL, T0, 0.2, measured, "outside"),
        UnitEnded(serial, slot, "scrapped", reason="'standby_current' failed"),
    ]


def test_finished_units_stay_listed_with_their_verdict_and_failing_check() -> None:
    """Under the slots, the units finished so far: the newest first, each with its verdict and, when it
    did not ship, the check it failed; the slot itself goes on to its next unit."""
    console = Console(file=io.StringIO(), height=40)
    progress = LiveProgress(console, slots=1, recipe="phone-wim v1", clock=lambda: T0 + 1)
    for event in [*_run_of_one_unit(1, "SN0001"), *_scrapped_on_a_measurement(1, "SN0002"), UnitStarted("SN0003", 1)]:
        progress(event)
    text = _text(progress.view())
    finished = text[text.index("finished: 1 shipped, 1 scrapped") :]
    assert re.search(
        r"SN0002\s*│\s*scrapped\s*│\s*standby_current: standby_current_ma = 99 mA \(limit ≤ 8 mA\)", finished
    ), finished
    assert re.search(r"SN0001\s*│\s*shipped\s*│\s*│", finished), finished  # shipped after a retry: no failure told
    assert finished.index("SN0002") < finished.index("SN0001")
    slots = text[: text.index("finished:")]
    assert "SN0003" in slots and "SN0002" not in slots


def test_the_finished_list_shows_the_latest_units_that_fit() -> None:
    """With more units finished than the terminal holds, the latest are listed; the counts cover them all."""
    progress = LiveProgress(Console(file=io.StringIO(), height=20), slots=1)
    for n in range(50):
        progress(UnitStarted(f"SN{n:04d}", 1))
        progress(UnitEnded(f"SN{n:04d}", 1, "shipped" if n % 2 else "refused", reason=None if n % 2 else "not here"))
    text = _text(progress.view())
    assert "finished: 25 refused, 25 shipped" in text
    listed = re.findall(r"SN(\d{4})\s*│\s*(shipped|refused)", text[text.index("finished:") :])
    assert listed[0] == ("0049", "shipped") and len(listed) == 7
    assert listed[1] == ("0048", "refused") and "not here" in text


def test_a_failure_names_the_measurement_with_its_value_and_limits_or_the_step_reason() -> None:
    """The failing check: the first measurement judged FAIL with its value and limits, else the step's error."""

    def ended(measurements: tuple[MeasurementRecord, ...], error: str | None) -> StepEnded:
        return StepEnded("SN1", 1, "rf_cal", "rf.calibrate", 1, Outcome.FAIL, T0, 0.1, measurements, error)

    both = MeasurementRecord("tx_power_dbm", 19.25, Verdict.FAIL, "dBm", 14.0, 18.0)
    low = MeasurementRecord("tx_power_dbm", 3, Verdict.FAIL, None, 5.0, None)
    passed = MeasurementRecord("tx_power_dbm", 16.0, Verdict.PASS, "dBm", 14.0, 18.0)
    assert failed_check(ended((passed, both), "x")) == "rf_cal: tx_power_dbm = 19.25 dBm (limits 14 to 18 dBm)"
    assert failed_check(ended((low,), None)) == "rf_cal: tx_power_dbm = 3 (limit ≥ 5)"
    assert failed_check(ended((passed,), "tester offline")) == "rf_cal: tester offline"
    assert failed_check(ended((), None)) == "rf_cal"


def test_live_progress_as_context_manager_prints_the_unit_summary() -> None:
    """Used with `with`, it draws the live table and ends with a summary: status, stages passed, failures."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with LiveProgress(console, refresh_per_second=20) as progress:
        for event in _run_of_one_unit():
            progress(event)
        for event in _run_of_one_unit(1, "SN0001")[:4]:
            progress(event)
        progress(UnitEnded("SN0001", 1, "scrapped", reason="rf_cal failed"))
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    summary = text[text.rindex("units") :]
    assert re.search(r"SN0003\s*│\s*shipped\s*│\s*2\s*│\s*1\s*│", summary)
    assert re.search(r"SN0001\s*│\s*scrapped\s*│\s*1\s*│\s*0\s*│\s*rf_cal failed", summary)


def test_live_progress_paused_takes_the_table_off_and_puts_it_back() -> None:
    """While paused (a prompt is up) the live display is stopped; afterwards it runs again."""
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with LiveProgress(console) as progress:
        live = progress._live
        assert live.is_started
        with progress.paused():
            assert not live.is_started
            progress(UnitStarted("SN1", 1))  # events still land while paused
        assert live.is_started
    assert not live.is_started
    assert "SN1" in _text(progress.table())


def test_progress_for_picks_live_on_a_terminal_and_plain_otherwise() -> None:
    """A terminal gets the live table, anything else plain lines."""
    console = Console(file=io.StringIO())
    assert isinstance(progress_for(True, console=console), LiveProgress)
    assert isinstance(progress_for(False, stream=io.StringIO()), PlainProgress)


def test_a_stop_is_announced_at_once_in_plain_lines_and_above_the_live_table() -> None:
    """The Stopping event is one line saying how many running steps are cleaning up and for how long at most,
    in plain output and printed above the live table; the slots' rows are left as they were."""
    out = io.StringIO()
    PlainProgress(out)(Stopping(2, 10.0))
    PlainProgress(out)(Stopping(1, 0.5))
    PlainProgress(out)(Stopping(0, 10.0))
    assert out.getvalue().splitlines() == [
        "aborting: waiting for 2 running steps to clean up (at most 10 s)…",
        "aborting: waiting for 1 running step to clean up (at most 0.5 s)…",
        "aborting: no step is running",
    ]
    screen = io.StringIO()
    with LiveProgress(Console(file=screen, force_terminal=True, width=120)) as progress:
        progress(UnitStarted("SN1", 1))
        progress(Stopping(1, 10.0))
        assert "SN1" in _text(progress.table())
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert "aborting: waiting for 1 running step to clean up (at most 10 s)…" in shown
