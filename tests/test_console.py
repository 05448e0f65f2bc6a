"""Progress subscribers: plain lines for logs and pipes, a live table of slots for a terminal."""

from __future__ import annotations

import io
import re
import threading

from rich.console import Console

from engine.events import Event, StepEnded, StepStarted, Stopping, UnitEnded, UnitStarted
from engine.outcome import Outcome
from engine.run.console import LiveProgress, PlainProgress, progress_for

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
    """A running attempt shows its stage, attempt and time so far; an idle slot says idle."""
    progress = LiveProgress(Console(file=io.StringIO()), slots=3, clock=lambda: T0 + 3.5)
    for event in _run_of_one_unit()[:6]:
        progress(event)
    text = _text(progress.table())
    row = next(line for line in text.splitlines() if "SN0003" in line)
    assert re.search(r"2\s*│\s*SN0003\s*│\s*rf_cal\s*│\s*2\s*│\s*1\.50s\s*│\s*FAIL", row), row
    assert text.count("idle") == 2


def test_live_table_keeps_the_last_outcome_and_the_unit_status() -> None:
    """After an attempt the row shows its duration and outcome; after the unit, its status."""
    progress = LiveProgress(Console(file=io.StringIO()), clock=lambda: T0 + 100)
    events = _run_of_one_unit()
    for event in events[:7]:
        progress(event)
    assert re.search(r"rf_cal\s*│\s*2\s*│\s*0\.12s\s*│\s*PASS", _text(progress.table()))
    progress(events[7])
    assert re.search(r"SN0003\s*│.*│\s*shipped", _text(progress.table()))


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
