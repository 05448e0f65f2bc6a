"""Ctrl-C at a station: the running attempt is ABORTED, cleanup runs, the record is kept, exit 3."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ctrl_c_aborts_the_running_attempt_and_keeps_the_record(tmp_path: Path) -> None:
    """SIGINT while a step waits on the device ends the run with exit 3 and a finished, aborted record."""
    config = tmp_path / "sim.yaml"
    config.write_text("units:\n  T1: {hang: {functional: 30}}\n")
    records = tmp_path / "records"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "run",
            str(ROOT / "workflows" / "sphere-thermostat.yaml"),
            "--sim",
            "--unit",
            "T1",
            "--sim-config",
            str(config),
            "--json-out",
            str(records),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        if "functional attempt 1 started" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, out + err
    assert "Traceback" not in err
    record = json.loads((records / "T1.json").read_text())
    assert record["status"] == "aborted"
    outcomes = [(a["stage"], a["outcome"]) for a in record["attempts"]]
    assert outcomes[-1] == ("functional", "ABORTED")
    assert ("load_test_app", "PASS") in outcomes
