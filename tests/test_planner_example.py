"""docs/simulate.md's planner session: examples/planner/week.py's records give back the line it made up.

The week's records go through ``floorflow profile`` into a profile ``floorflow simulate`` runs, and
the RF calibration's fitted time is the example's own (about 140 s, where the shipped profile says 90 s).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
WEEK = ROOT / "examples" / "planner" / "week.py"


def _run(*argv: str, cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_the_week_profiles_and_simulates_as_the_session_says(tmp_path: Path) -> None:
    said = _run(sys.executable, str(WEEK), "sqlite:///week.db", "--units", "200", cwd=tmp_path)
    assert "of 200 units written to sqlite:///week.db" in said
    _run(sys.executable, "-m", "engine.cli", "profile", "--store", "sqlite:///week.db", "--recipe", "phone-wim",
         "week.yaml", cwd=tmp_path)  # fmt: skip
    stages = YAML(typ="safe").load((tmp_path / "week.yaml").read_text())["stages"]
    rf_cal = stages["modem_rf_cal"]["time"]
    mean = rf_cal["lognormal"]["mean"] if "lognormal" in rf_cal else None
    assert mean is not None and 130 < mean < 150, rf_cal  # lognormal(4.93, 0.15): mean 139.4 s, sd 21 s
    assert stages["print_label"]["time"] == {"fixed": 8.0}
    shown = _run(sys.executable, "-m", "engine.cli", "simulate", str(ROOT / "workflows" / "phone-wim.yaml"),
                 "--profile", "week.yaml", "--units", "300", "--replications", "2", "--jobs", "1",
                 "--vary", "stations.rf.slots=10,12", cwd=tmp_path)  # fmt: skip
    assert "2 replications per scenario" in " ".join(shown.split())
