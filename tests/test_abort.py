"""Stopping a station: Ctrl-C or SIGTERM ends the running attempts ABORTED after their cleanup, the record
is kept, exit 3; a stop is bounded, and a slot still busy at its end is given up and recorded."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.outcome import Outcome
from engine.store import open_store

ROOT = Path(__file__).resolve().parent.parent


def _run_hanging(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, list[str]]:
    """``floorflow run --sim`` on one unit whose 'functional' step hangs for 30 s, once that step has started."""
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
    seen: list[str] = []
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        seen.append(line)
        if "functional attempt 1 started" in line or time.monotonic() > deadline:
            break
    return proc, records, seen


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_aborts_the_running_attempt_and_keeps_the_record(tmp_path: Path, signum: int) -> None:
    """SIGINT (Ctrl-C) or SIGTERM (a service manager) while a step waits on the device: the operator is told at
    once, the attempt ends ABORTED, exit 3, and the store and the JSON record both hold the aborted unit."""
    proc, records, seen = _run_hanging(tmp_path)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    out = "".join(seen) + out
    assert proc.returncode == 3, out + err
    assert "Traceback" not in err
    assert "aborting: waiting for 1 running step to clean up" in out
    record = json.loads((records / "T1.json").read_text())
    assert record["status"] == "aborted"
    outcomes = [(a["stage"], a["outcome"]) for a in record["attempts"]]
    assert outcomes[-1] == ("functional", "ABORTED")
    assert ("load_test_app", "PASS") in outcomes
    with open_store(f"sqlite:///{records / 'floorflow.db'}") as store:
        stored = store.unit("T1")
    assert stored.status == "in-route"  # the store's status: not shipped, ready to be run again
    assert [(a.stage, a.outcome) for a in stored.attempts] == [(stage, Outcome(outcome)) for stage, outcome in outcomes]
