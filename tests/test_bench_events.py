"""bench/events.py's smoke run: against a Mosquitto of its own it ends with its figures as one JSON line.

Only the shape is checked: which figures and goals it gives and that they agree with its exit status,
never how fast the events went.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mosquittokit import need_mosquitto

ROOT = Path(__file__).resolve().parent.parent

FIGURES = {
    "publish_latency_ms_p99",
    "outbox_drain_per_s",
    "overhead_us_per_step",
    "us_per_step_cli",
    "us_per_step_cli_events",
}
GOALS = {"publish_latency_met", "outbox_drain_met", "overhead_met"}


def test_the_quick_run_ends_with_every_figure_and_goal_as_json() -> None:
    """--quick measures each figure against a broker of its own and prints them, a boolean per goal, the rounds
    and goals_met, last, as one JSON object; its exit status is 1 exactly when a goal is not met."""
    need_mosquitto()  # the figures need a broker: skipped without one, failed under FLOORFLOW_REQUIRE_MQTT=1
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "events.py"), "--quick"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode in (0, 1), proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert FIGURES | GOALS | {"rounds", "goals_met"} <= set(figures)
    assert all(isinstance(figures[key], int | float) and not isinstance(figures[key], bool) for key in FIGURES)
    assert all(isinstance(figures[key], bool) for key in GOALS | {"goals_met"})
    assert set(figures["rounds"]) == {"latency", "drain", "overhead"}
    assert figures["goals_met"] == all(figures[key] for key in GOALS)
    assert proc.returncode == (0 if figures["goals_met"] else 1)
