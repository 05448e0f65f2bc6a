"""The live view as an operator sees it: `floorflow run` in a real terminal (a private tmux server).

The units are first taken through the stations before manual_test with plain runs; then manual_test
runs them in a 120x40 tmux pane, two slots. SIM0001 hangs in standby_current (so a stage is caught
running right after audio_test passed) while slot 2 finishes SIM0002 and SIM0004; SIM0002 reads
99 mA standby current (limit 8 mA) and is scrapped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "workflows/phone-wim.yaml"
FLOORFLOW = Path(sys.executable).parent / "floorflow"
TMUX = shutil.which("tmux") or "/usr/bin/tmux"
UNITS = [arg for n in range(1, 5) for arg in ("--unit", f"SIM{n:04d}")]
"""Slot 1 takes SIM0001 (then SIM0003), slot 2 SIM0002 then SIM0004."""
SIM_CONFIG = """\
units:
  SIM0001:
    hang: {standby_current: 8.0}
  SIM0002:
    measurements: {standby_current.standby_current_ma: 99.0}
"""
PATIENCE_S = 120.0
"""How long a screen is waited for at most (generous: a slow CI machine still passes)."""
SGR = re.compile(r"\x1b\[[0-9;]*m")


def _tmux(socket: str, *args: str) -> str:
    return subprocess.run([TMUX, "-L", socket, *args], capture_output=True, text=True, check=True).stdout


def _until(screen: Callable[[], str], shown: Callable[[str], bool], what: str) -> str:
    """Poll the pane until ``shown`` holds for what it shows; fail naming ``what`` when it never does."""
    deadline = time.monotonic() + PATIENCE_S
    text = screen()
    while not shown(text):
        if time.monotonic() > deadline or "floorflow-exit" in SGR.sub("", text):
            pytest.fail(f"the terminal never showed {what}; it showed:\n{SGR.sub('', text)}")
        time.sleep(0.05)
        text = screen()
    return text


@pytest.fixture
def station(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A private tmux server (its socket name) running manual_test; killed afterwards."""
    store = f"sqlite:///{tmp_path / 'x.db'}"
    config = tmp_path / "sim.yaml"
    config.write_text(SIM_CONFIG)
    common = [str(RECIPE), "--sim", "--sim-config", str(config), "--slots", "2", *UNITS, "--store", store]
    for before in ("smt", "final_assembly"):  # not a terminal: plain lines, out of the way
        subprocess.run([str(FLOORFLOW), "run", *common, "--station", before], cwd=tmp_path, capture_output=True)
    command = " ".join([str(FLOORFLOW), "run", *common, "--station", "manual_test"])
    socket = f"floorflow-test-{uuid.uuid4().hex[:12]}"
    shell = f"env -u COLUMNS -u LINES -u NO_COLOR {command}; echo floorflow-exit=$?; sleep 600"
    try:
        _tmux(socket, "-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "40", "-c", str(tmp_path), shell)
        yield socket, tmp_path
    finally:
        subprocess.run([TMUX, "-L", socket, "kill-server"], capture_output=True)


def test_the_live_view_in_a_terminal_tells_what_runs_what_failed_and_how_units_ended(
    station: tuple[str, Path],
) -> None:
    socket, _ = station

    def screen() -> str:
        return _tmux(socket, "capture-pane", "-p", "-e", "-S", "-", "-t", "0")

    def plain() -> str:
        return SGR.sub("", screen())

    running = _until(plain, lambda s: re.search(r"SIM0001\s*│\s*standby_current\b", s) is not None, "SIM0001 running")
    row = next(line for line in running.splitlines() if "SIM0001" in line and "standby_current" in line)
    assert re.search(r"standby_current\s*│\s*1\s*│\s*[0-9.]+s\s*│\s*running\s*│", row), row
    assert "PASS" not in row, row  # not audio_test's outcome beside the stage now running
    title = next(line for line in running.splitlines() if line.strip())
    assert title.strip() == "phone-wim v1 · station manual_test", running

    failing = "standby_current: standby_current_ma = 99 mA (limit ≤ 8 mA)"
    coloured = _until(
        screen,
        lambda s: "SIM0004" in SGR.sub("", s).partition("finished:")[2],
        "the finished units listed while SIM0001 still runs",
    )
    live = SGR.sub("", coloured)
    finished = live[live.index("finished:") :]
    assert re.search(rf"SIM0002\s*│\s*scrapped\s*│\s*{re.escape(failing)}", finished), finished
    assert re.search(r"SIM0004\s*│\s*in-route\s*│", finished), finished
    assert re.search(r"\x1b\[[0-9;]*31[0-9;]*m[^\x1b│]*scrapped", coloured), "scrapped is not shown in red"

    end = ""
    deadline = time.monotonic() + PATIENCE_S
    while "floorflow-exit" not in end and time.monotonic() < deadline:
        end = plain()
        time.sleep(0.05)
    assert "floorflow-exit=5" in end  # a unit scrapped
    summary = end[end.rindex("units") :]
    assert re.search(rf"SIM0002\s*│\s*scrapped\s*│.*{re.escape(failing)}", summary), summary
    assert re.search(r"SIM0001\s*│\s*in-route\s*│", summary), summary


def test_a_station_in_a_terminal_shows_its_idle_sockets_and_takes_scans_typed_into_it(tmp_path: Path) -> None:
    """``floorflow station`` at a terminal: every socket is a row from the start (idle until a unit comes),
    a scan typed as ``SOCKET SERIAL`` starts that socket, and Ctrl-D ends the shift once the sockets are idle."""
    store = f"sqlite:///{tmp_path / 'x.db'}"
    command = " ".join(
        [str(FLOORFLOW), "station", str(RECIPE), "--station", "smt", "--sim", "--slots", "3", "--store", store]
    )
    socket = f"floorflow-test-{uuid.uuid4().hex[:12]}"
    shell = f"env -u COLUMNS -u LINES -u NO_COLOR {command}; echo floorflow-exit=$?; sleep 600"
    try:
        _tmux(socket, "-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "40", "-c", str(tmp_path), shell)

        def plain() -> str:
            return SGR.sub("", _tmux(socket, "capture-pane", "-p", "-S", "-", "-t", "0"))

        idle = _until(plain, lambda s: len(re.findall(r"│\s*[123]\s*│\s*idle\s*│", s)) == 3, "three idle sockets")
        assert "phone-wim v1 · station smt" in idle, idle
        _tmux(socket, "send-keys", "-t", "0", "2 SCAN0001", "Enter")
        finished = re.compile(r"SCAN0001\s*│\s*in-route\s*│")
        done = _until(plain, lambda s: finished.search(s.partition("finished:")[2]) is not None, "SCAN0001 finished")
        assert re.search(r"│\s*2\s*│\s*SCAN0001\s*│", done), done  # in the socket it was scanned into
        assert len(re.findall(r"│\s*[13]\s*│\s*idle\s*│", done)) == 2, done
        _tmux(socket, "send-keys", "-t", "0", "C-d")
        end = _until(plain, lambda s: "floorflow-exit=" in s, "the end of the shift")
        assert "floorflow-exit=0" in end, end
    finally:
        subprocess.run([TMUX, "-L", socket, "kill-server"], capture_output=True)
