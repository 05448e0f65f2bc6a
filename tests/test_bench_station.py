"""bench/station.py's smoke run: it runs floorflow station and ends with its figures as one JSON line.

Only the shape is checked: which figures and goals it gives and that they agree with its exit status,
never how fast the station was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FIGURES = {
    "scan_to_first_step_ms",
    "index_ms",
    "station_rss_mib",
    "rss_growth_mib",
    "units",
    "lost_records",
    "threads_start",
    "threads_end",
    "event_to_screen_ms",
}
GOALS = {
    "scan_to_first_step_met",
    "index_met",
    "station_rss_met",
    "rss_growth_met",
    "no_lost_records_met",
    "threads_met",
    "shift_units_met",
    "event_to_screen_met",
}


def test_the_quick_run_ends_with_every_figure_and_goal_as_json() -> None:
    """--quick runs a 300-unit shift and prints each figure, a boolean per goal and goals_met, last, as JSON."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "station.py"), "--quick"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode in (0, 1), proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert FIGURES | GOALS | {"goals_met"} <= set(figures)
    assert all(isinstance(figures[key], int | float) for key in FIGURES)
    assert all(isinstance(figures[key], bool) for key in GOALS)
    assert figures["units"] == 300 and figures["lost_records"] == 0 and not figures["shift_units_met"]
    assert figures["goals_met"] == all(figures[key] for key in GOALS)
    assert proc.returncode == (0 if figures["goals_met"] else 1)
