"""``floorflow profile``: a line profile fitted to the records gives back the times and failure chances the
records were drawn from, loads for its recipe, and runs a simulation.

The statistical checks write attempts straight into a store (SQLite and PostgreSQL), drawn with a fixed
seed from known distributions under the Sphere module recipe's stage ids: a fitted mean must lie within
3 standard errors of the true one, a chance within 3 binomial standard errors. The simulated hardware's
step times cannot be set (they are however long the simulated unit takes), so the run through
``floorflow run --sim`` checks what can be: its failures counted exactly, its times the records' own.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import storekit
from storekit import attempt, measurement

from engine.cli.commands import main
from engine.flow import Flow
from engine.outcome import Outcome, Verdict
from engine.recipe.check import check_recipe
from engine.record import RecipeRef
from engine.registry import Registry
from engine.simulate.fitting import Kind, Moments, fit_times
from engine.simulate.profile import Profile, load_profile
from engine.store import open_store, timings
from engine.store.figures import Window

store_url = storekit.store_url

ROOT = Path(__file__).resolve().parent.parent
SPHERE = ROOT / "workflows" / "sphere-module.yaml"
SPHERE_REF = RecipeRef("sphere-module", 1, "fitted-sphere-hash")
T = 1_800_000_000.0
N = 400
OWN_FAIL = 0.05
"""rf_cal_2g4: the chance an attempt fails with no failed measurement."""
TX_FAIL = 0.04
"""rf_cal_2g4: the chance its tx_power_dbm is judged FAIL (the attempt then fails)."""


def _flow() -> Flow:
    flow, problems = check_recipe(SPHERE, Registry.discover())
    assert flow is not None, problems
    return flow


def _lognormal(rng: np.random.Generator, mean: float, sd: float, n: int) -> list[float]:
    sigma2 = math.log1p((sd / mean) ** 2)
    drawn: list[float] = rng.lognormal(math.log(mean) - sigma2 / 2, math.sqrt(sigma2), n).tolist()
    return drawn


def _rf_attempt(serial: str, at: float, duration: float, rng: np.random.Generator) -> Any:
    tx_failed = rng.random() < TX_FAIL
    own_failed = rng.random() < OWN_FAIL
    verdict = Verdict.FAIL if tx_failed else Verdict.PASS
    outcome = Outcome.FAIL if tx_failed or own_failed else Outcome.PASS
    measured = (measurement("tx_power_dbm", 20.0 if tx_failed else 15.0, verdict, "dBm", 10.0, 18.0),)
    return attempt(serial, "rf_cal_2g4", outcome, started=at, duration=duration, measurements=measured,
                   recipe=SPHERE_REF, step="rf.calibrate")  # fmt: skip


def _fill(url: str, seed: int = 7) -> None:
    """Known times: rf_cal_2g4 lognormal (mean 30, sd 3) failing as above, functional exponential (mean 5),
    rf_cal_5g triangular [10, 18, 20], connect a fixed 2 s (50 attempts), ready 5 attempts."""
    rng = np.random.default_rng(seed)
    store = open_store(url)
    try:
        for i, d in enumerate(_lognormal(rng, 30.0, 3.0, N)):
            store.add(_rf_attempt(f"U{i:04d}", T + 100 * i, d, rng))
        for stage, times in (
            ("functional", rng.exponential(5.0, N).tolist()),
            ("rf_cal_5g", rng.triangular(10.0, 18.0, 20.0, N).tolist()),
            ("connect", [2.0] * 50),
            ("ready", [1.0] * 5),
        ):
            for i, d in enumerate(times):
                store.add(attempt(f"U{i:04d}", stage, started=T + 100 * i + 50, duration=d, recipe=SPHERE_REF))
        store.flush()
    finally:
        store.close()


def _profile(url: str, out: Path, *options: str) -> int:
    return main(["profile", "--store", url, *options, str(out)])


def _fitted(out: Path) -> Profile:
    return load_profile(out, _flow())


def test_fitted_profile_gives_back_the_known_times_and_chances(store_url: str, tmp_path: Path) -> None:
    """Each stage's fitted kind is the one drawn from, its mean within 3 standard errors and its chances within
    3 binomial standard errors; too few attempts leave the time to the default profile, with a comment."""
    _fill(store_url)
    out = tmp_path / "fitted.yaml"
    assert _profile(store_url, out) == 0
    text = out.read_text()
    stages = _fitted(out).stages
    rf = stages["rf_cal_2g4"]
    assert rf.time is not None and rf.time.kind == Kind.LOGNORMAL
    assert abs(rf.time.a - 30.0) < 3 * 3.0 / math.sqrt(N)
    assert abs(rf.time.b - 3.0) < 3 * 3.0 / math.sqrt(2 * (N - 1))
    assert rf.fail is not None and abs(rf.fail - OWN_FAIL) < 3 * math.sqrt(OWN_FAIL * (1 - OWN_FAIL) / N)
    assert abs(rf.measurements["tx_power_dbm"] - TX_FAIL) < 3 * math.sqrt(TX_FAIL * (1 - TX_FAIL) / N)
    both = 1 - (1 - OWN_FAIL) * (1 - TX_FAIL)
    flow = _flow()
    fitted = _fitted(out)
    assert abs(fitted.fail_of(flow.stages["rf_cal_2g4"]) - both) < 3 * math.sqrt(both * (1 - both) / N)
    functional = stages["functional"].time
    assert functional is not None and functional.kind == Kind.EXPONENTIAL
    assert abs(functional.a - 5.0) < 3 * 5.0 / math.sqrt(N)
    triangle = stages["rf_cal_5g"].time
    assert triangle is not None and triangle.kind == Kind.TRIANGULAR
    assert abs((triangle.a + triangle.b + triangle.c) / 3 - 16.0) < 3 * math.sqrt(14 / 3) / math.sqrt(N)
    fixed = stages["connect"].time
    assert fixed is not None and (fixed.kind, fixed.a) == (Kind.FIXED, 2.0)
    assert stages["ready"].time is None and stages["functional"].fail == 0.0
    assert re.search(
        r"\n  rf_cal_2g4: +# 400 attempts, mean [\d.]+ s, sd [\d.]+ s; lognormal fits best \(KS 0\.\d+ over 400 ", text
    )
    assert re.search(r"\n  ready: +# 5 attempts, mean 1 s, sd 0 s; too few to fit a time", text)
    assert "profile: sphere-module, fitted to " in text


def test_fitted_profile_runs_a_simulation(store_url: str, tmp_path: Path) -> None:
    """The written profile runs ``floorflow simulate RECIPE --profile OUT.yaml --units 200``."""
    _fill(store_url)
    out = tmp_path / "fitted.yaml"
    assert _profile(store_url, out, "--recipe", "sphere-module", "--since", "2027-01-14") == 0
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "simulate", str(SPHERE), "--profile", str(out), "--units", "200"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


def test_a_stage_of_many_attempts_is_sampled_evenly(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``SAMPLE`` attempts a stage's sample is the first attempt of each equal span of ids, at most
    ``SAMPLE`` of them; its count and mean are still of every attempt."""
    monkeypatch.setattr(timings, "SAMPLE", 40)
    store = open_store(store_url)
    try:
        for i in range(400):
            store.add(attempt(f"S{i:04d}", "rf_cal_5g", started=T + i, duration=1.0 + i, recipe=SPHERE_REF))
        store.flush()
        [found] = store.stage_timings(Window()).stages
    finally:
        store.close()
    assert (found.count, found.mean, found.least, found.most) == (400, 200.5, 1.0, 400.0)
    assert found.sd == pytest.approx(math.sqrt(400 * 401 / 12))
    assert found.sample == [1.0 + 10 * k for k in range(40)]


def test_chances_are_counted_exactly(store_url: str, tmp_path: Path) -> None:
    """Of 40 attempts (4 aborted, not counted): 4 FAIL on tx_power_dbm, 4 FAIL and 4 ERROR with no failed
    measurement. fail is 8 of the 32 with no failed measurement, tx_power_dbm 4 of the 36 counted."""
    kinds = [Outcome.FAIL, Outcome.FAIL, Outcome.ERROR, Outcome.ABORTED, *[Outcome.PASS] * 6]
    store = open_store(store_url)
    try:
        for i in range(40):
            outcome = kinds[i % 10]
            verdict = Verdict.FAIL if i % 10 == 0 else Verdict.PASS
            measured = (measurement("tx_power_dbm", 15.0, verdict, "dBm", 10.0, 18.0),)
            store.add(attempt(f"C{i:02d}", "rf_cal_2g4", outcome, started=T + i, duration=2.0 + i % 2,
                              measurements=measured, recipe=SPHERE_REF))  # fmt: skip
        store.flush()
        [found] = store.stage_timings(Window()).stages
    finally:
        store.close()
    assert (found.count, found.failed, found.clean, found.clean_failed) == (36, 12, 32, 8)
    assert found.measurements == {"tx_power_dbm": 4}
    out = tmp_path / "fitted.yaml"
    assert _profile(store_url, out) == 0
    rf = _fitted(out).stages["rf_cal_2g4"]
    assert (rf.fail, dict(rf.measurements)) == (0.25, {"tx_power_dbm": round(4 / 36, 4)})


def test_a_nearly_fixed_time_is_fixed_and_a_spread_one_is_not() -> None:
    """The rule's first step: an sd within 1% of the mean is a fixed time, a wider one is fitted."""
    assert fit_times(Moments(50, 2.0, 0.01, 1.98, 2.02), [2.0] * 50).kind == Kind.FIXED
    sample = np.random.default_rng(1).exponential(5.0, 300).tolist()
    moments = Moments(300, float(np.mean(sample)), float(np.std(sample, ddof=1)), min(sample), max(sample))
    assert fit_times(moments, sample).kind == Kind.EXPONENTIAL


def test_several_recipes_need_recipe(store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Records of two recipes without --recipe: exit 2 naming both, nothing written; --recipe chooses one."""
    _fill(store_url)
    store = open_store(store_url)
    try:
        store.add(attempt("OTHER1", "flash", started=T, duration=3.0))  # storekit's lab-recipe
        store.flush()
    finally:
        store.close()
    out = tmp_path / "fitted.yaml"
    assert _profile(store_url, out) == 2
    err = capsys.readouterr().err
    assert "several recipes (lab-recipe, sphere-module): choose one with --recipe NAME" in err
    assert "Traceback" not in err and not out.exists()
    assert _profile(store_url, out, "--recipe", "sphere-module") == 0
    assert "flash" not in _fitted(out).stages


def test_usage_errors_exit_2(store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No such store, an empty window, a recipe with no records: exit 2 with the reason, no traceback."""
    out = tmp_path / "fitted.yaml"
    missing = storekit.sqlite_url(tmp_path / "nowhere.db")
    assert _profile(missing, out) == 2
    assert f"no store at {missing}" in capsys.readouterr().err
    _fill(store_url)
    assert _profile(store_url, out, "--since", "2030-01-01") == 2
    err = capsys.readouterr().err
    assert "no attempts of any recipe ended since " in err and "no profile written" in err
    assert _profile(store_url, out, "--recipe", "phone-wim") == 2
    assert "no attempts of recipe phone-wim" in capsys.readouterr().err
    assert _profile(store_url, out, "--since", "yesterday") == 2
    assert "--since 'yesterday': give an ISO 8601 date" in capsys.readouterr().err
    assert not out.exists()


SIM_CONFIG = """\
units:
  SPH02: {fail: {rf_cal_2g4: 1}}
  SPH05: {fail: {rf_cal_2g4: 2}}
"""


def test_profile_of_a_simulated_run(tmp_path: Path) -> None:
    """Units run by ``floorflow run --sim`` (three of 15 rf_cal_2g4 attempts failed by the config) give a
    profile whose rf_cal_2g4 fails 3/15, whose every stage's time has the records' own mean, and which
    ``floorflow simulate`` runs."""
    url = storekit.sqlite_url(tmp_path / "line.db")
    config = tmp_path / "sim.yaml"
    config.write_text(SIM_CONFIG, encoding="utf-8")
    units = [a for n in range(1, 13) for a in ("--unit", f"SPH{n:02d}")]
    command = [sys.executable, "-m", "engine.cli", "run", str(SPHERE), "--sim", "--sim-config", str(config)]
    result = subprocess.run([*command, "--slots", "4", "--store", url, *units], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    out = tmp_path / "fitted.yaml"
    assert _profile(url, out) == 0
    fitted = _fitted(out)
    assert fitted.stages["rf_cal_2g4"].fail == 0.2
    store = open_store(url)
    try:
        durations: dict[str, list[float]] = {}
        for unit in store.units():
            for a in unit.attempts:
                durations.setdefault(a.stage, []).append(a.ended - a.started)
    finally:
        store.close()
    assert len(durations["rf_cal_2g4"]) == 15
    for stage, seen in durations.items():
        time = fitted.stages[stage].time
        assert time is not None
        if time.kind != Kind.TRIANGULAR:  # a triangle is fitted by likelihood, not by its mean
            assert time.a == pytest.approx(sum(seen) / len(seen), rel=1e-3), stage
    simulated = subprocess.run(
        [sys.executable, "-m", "engine.cli", "simulate", str(SPHERE), "--profile", str(out), "--units", "200"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stdout[-2000:] + simulated.stderr
