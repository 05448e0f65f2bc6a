"""What the line report's tests share: a hand-made figures document, and a store of real units run on the
simulated Sphere module line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPHERE = ROOT / "workflows" / "sphere-module.yaml"
SIM_CONFIG = """\
units:
  SPH02: {fail: {rf_cal_2g4: 1}}                            # a retest at rf_cal_2g4, then a pass
  SPH05: {fail: {rf_cal_2g4: 2}}                            # two retests, then a pass
  SPH07: {measurements: {rf_cal_5g.tx_power_dbm: 17.6}}     # above the 5 GHz limit, every attempt: scrapped
  SPH09: {fail: {functional: 1}}                            # a retest at functional
  SPH11: {measurements: {rf_cal_2g4.tx_power_dbm: 17.4}}    # high, inside the limit
"""
UNITS = [f"SPH{n:02d}" for n in range(1, 17)]
"""Sixteen modules of lot L1, four at once (the RF fixture's sockets 1 to 4); SPH07 is scrapped."""


def line_store(directory: Path) -> str:
    """Run UNITS through the Sphere module recipe under --sim into a new SQLite store; its URL."""
    store = f"sqlite:///{(directory / 'line.db').resolve()}"
    config = directory / "sim.yaml"
    config.write_text(SIM_CONFIG, encoding="utf-8")
    command = [sys.executable, "-m", "engine.cli", "run", str(SPHERE), "--sim", "--sim-config", str(config)]
    command += ["--slots", "4", "--lot", "L1", "--store", store, *(a for u in UNITS for a in ("--unit", u))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 5, result.stdout[-2000:] + result.stderr  # SPH07 scrapped, the rest shipped
    return store


def _run_points() -> list[dict[str, Any]]:
    """A measurement's run: socket 2 of rf-1 reads high, the others near 15."""
    points = []
    for n in range(40):
        socket = 1 + n % 3
        value = 15.0 + 0.1 * ((n * 7) % 5 - 2) + (2.5 if socket == 2 else 0.0)
        points.append(
            {
                "at": f"2026-11-21T{8 + n // 10:02d}:{(n * 6) % 60:02d}:00Z",
                "value": value,
                "station": "rf-1",
                "socket": socket,
            }
        )
    return points


FIGURES: dict[str, Any] = {
    "schema": "floorflow.report/1",
    "window": {"since": "2026-11-21T00:00:00Z", "until": None, "lot": None, "station": None, "recipe": None},
    "units": {"total": 50, "shipped": 40, "scrapped": 4, "in_route": 2, "held": 2, "quarantined": 1, "aborted": 1,
              "refused": 0},
    "stages": [
        {"stage": "flash", "station": "prog-1", "units": 50, "first_pass": 49, "first_pass_yield": 0.98, "passed": 50,
         "final_yield": 1.0, "attempts": 51, "retests": 1, "retest_rate": 1 / 51, "aborted": 1, "held": 0},
        {"stage": "rf_test", "station": "rf-1", "units": 48, "first_pass": 36, "first_pass_yield": 0.75, "passed": 44,
         "final_yield": 44 / 48, "attempts": 60, "retests": 12, "retest_rate": 0.2, "aborted": 0, "held": 2},
        {"stage": "label", "station": "pack", "units": 0, "first_pass": 0, "first_pass_yield": None, "passed": 0,
         "final_yield": None, "attempts": 0, "retests": 0, "retest_rate": None, "aborted": 0, "held": 0},
    ],
    "pareto": {
        "by_stage": [{"stage": "rf_test", "failures": 16}, {"stage": "flash", "failures": 1}],
        "by_check": [
            {"stage": "rf_test", "check": "tx_power_dbm", "failures": 12},
            {"stage": "rf_test", "check": "rssi_dbm", "failures": 4},
            {"stage": "flash", "check": "(error) image write timed", "failures": 1},
        ],
    },
    "throughput": [
        {"station": station, "hour": f"2026-11-21T{hour:02d}:00:00Z", "units": units}
        for station, base in (("prog-1", 12), ("rf-1", 9))
        for hour, units in ((8, base), (9, base + 3), (10, base - 2), (11, base + 1))
    ],
    "quarantines": [
        {"serial": "SPH0007", "reason": "station died inside flash", "decision": "done", "by": "Kim",
         "at": "2026-11-21T10:12:00Z"},
        {"serial": "SPH0031", "reason": "station died inside flash", "decision": None, "by": None, "at": None},
    ],
    "lot_holds": [
        {"lot": "L-2611", "reason": "sampled failure rate too high", "at": "2026-11-21T09:40:00Z",
         "decisions": [{"by": "Kim", "action": "lot-released", "at": "2026-11-21T11:00:00Z"}]},
    ],
    "unreleased_recipes": [{"recipe": "sphere-module", "version": 3, "hash": "0123456789abcdef", "units": 7}],
    "measurements": [
        {"stage": "rf_test", "name": "tx_power_dbm", "units": "dBm", "low": 14.0, "high": 18.0,
         "marginal_low": 14.5, "marginal_high": 17.5, "count": 40, "mean": 15.83, "sd": 1.19, "cp": 0.56, "cpk": 0.61,
         "histogram": {"edges": [14.0 + 0.25 * n for n in range(21)],
                       "counts": [0, 0, 0, 2, 6, 10, 8, 1, 0, 0, 0, 0, 0, 2, 5, 4, 2, 0, 0, 0]},
         "run": _run_points()},
        {"stage": "flash", "name": "image_bytes", "units": None, "low": None, "high": 4096.0,
         "marginal_low": None, "marginal_high": None, "count": 0, "mean": None, "sd": None, "cp": None, "cpk": None,
         "histogram": {"edges": [], "counts": []}, "run": []},
    ],
}  # fmt: skip
"""A morning's figures, as engine.report.figures lays them out."""
