"""What a station's operator does besides answering checks: signs in, confirms a failure or has the stage
retried, sees a picture with a manual check; and a unit of a held lot is refused at its socket."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from steplab import REGISTRY, Bench, Flaky, Measure, build, direct_flow, memory_store, stage, state_of
from storekit import admit

from engine.cli import main
from engine.context import Answer, FailureChoice
from engine.events import UnitStarted
from engine.flow import Flow
from engine.outcome import Outcome, UnitStatus
from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.run.operator import SimOperator, TerminalOperator
from engine.run.runner import StationRunner
from engine.run.slots import UnitSpec
from engine.store import SqlStore, open_store
from engine.testing import FakeOperator
from steps.sim.line import SimLine

ROOT = Path(__file__).resolve().parent.parent
THERMOSTAT = str(ROOT / "workflows" / "sphere-thermostat.yaml")

FLAKY_THEN_MEASURE = """\
    recipe: flaky
    version: 1
    stages:
      - {id: rf_tx, step: lab.flaky, with: {fails: 1}}
      - {id: after, step: lab.measure}
"""


class Deciding(SimOperator):
    """The simulated operator, who also answers each failure with the next of ``choices``."""

    def __init__(self, choices: list[FailureChoice]) -> None:
        super().__init__(name="deciding")
        self.choices = choices
        self.asked: list[tuple[str, str]] = []

    def for_unit(self, serial: str, slot: int | None = None, *, cancelled: threading.Event | None = None) -> Any:
        return self

    def confirm_failure(self, stage: str, failed: str) -> FailureChoice:
        self.asked.append((stage, failed))
        return self.choices.pop(0)


def _runner(flow: Flow, bench: Bench, history: SqlStore, operator: Any = None, **kwargs: Any) -> StationRunner:
    operator = operator if operator is not None else SimOperator(name="sim")
    return StationRunner(flow, REGISTRY, bench, operator, history, operator_name="tester", **kwargs)


def _operators(history: SqlStore, serial: str) -> list[tuple[str, str | None]]:
    return [(a.stage, a.operator) for a in history.unit(serial).attempts]


# -- signing in ---------------------------------------------------------------------------------------


def test_attempts_name_the_operator_signed_in_when_they_were_recorded(tmp_path: Path) -> None:
    """Before any sign-in the attempts name the station's operator; after one, the operator signed in, in the
    store and in the UnitStarted event, until the next sign-in."""
    flow = build(tmp_path, FLAKY_THEN_MEASURE.replace("fails: 1", "fails: 0"))
    history, started = memory_store(), []
    runner = _runner(flow, Bench(), history, subscribers=[started.append])
    assert runner.signed_in is None
    runner.run([UnitSpec("SN1")])
    runner.sign_in("  Ada Lovelace ")
    assert runner.signed_in == "Ada Lovelace"
    runner.run([UnitSpec("SN2")])
    runner.sign_in("BADGE-0042")
    runner.run([UnitSpec("SN3")])
    assert _operators(history, "SN1") == [("rf_tx", "tester"), ("after", "tester")]
    assert _operators(history, "SN2") == [("rf_tx", "Ada Lovelace"), ("after", "Ada Lovelace")]
    assert _operators(history, "SN3") == [("rf_tx", "BADGE-0042"), ("after", "BADGE-0042")]
    units = [(e.serial, e.operator) for e in started if isinstance(e, UnitStarted)]
    assert units == [("SN1", "tester"), ("SN2", "Ada Lovelace"), ("SN3", "BADGE-0042")]


@pytest.mark.parametrize(
    ("name", "said"),
    [("", "empty"), ("   ", "empty"), ("Ada\x1b[31m", "control"), ("x" * 65, "at most 64"), ("Ada\nBob", "control")],
)
def test_a_bad_sign_in_is_refused_with_a_clear_message(tmp_path: Path, name: str, said: str) -> None:
    """An empty, unprintable or too long name is a ValueError saying what is wrong; who was signed in stays."""
    flow = build(tmp_path, FLAKY_THEN_MEASURE)
    runner = _runner(flow, Bench(), memory_store())
    runner.sign_in("Ada")
    with pytest.raises(ValueError, match="operator sign-in") as raised:
        runner.sign_in(name)
    assert said in str(raised.value) and "\n" not in str(raised.value)
    assert runner.signed_in == "Ada"


# -- confirming a failure -----------------------------------------------------------------------------


def test_the_operator_retries_a_failed_stage_and_the_unit_goes_on(tmp_path: Path) -> None:
    """A stage failed after its retries is put to the operator with what failed; RETRY runs it once more
    (attempt 2), the unit goes on, the choice is in the audit log under the operator signed in, and the unit's
    state read back from its record agrees."""
    flow = build(tmp_path, FLAKY_THEN_MEASURE)
    history, operator = memory_store(), Deciding([FailureChoice.RETRY])
    runner = _runner(flow, Bench(), history, operator)
    runner.sign_in("Grace")
    [result] = runner.run([UnitSpec("SN1")])
    assert result.status == UnitStatus.SHIPPED
    assert operator.asked == [("rf_tx", "rf_tx: failure 1 of 1")]
    unit = history.unit("SN1")
    assert [(a.stage, a.attempt, a.outcome) for a in unit.attempts] == [
        ("rf_tx", 1, Outcome.FAIL), ("rf_tx", 2, Outcome.PASS), ("after", 1, Outcome.PASS)
    ]  # fmt: skip
    assert [(d.by, d.action, d.subject, d.reason) for d in unit.decisions] == [
        ("Grace", "failure-retried", "SN1", "attempt 1: rf_tx: failure 1 of 1")
    ]
    replayed = state_of(flow, history, "SN1")
    assert replayed.status == UnitStatus.IN_ROUTE and replayed.passed == {"rf_tx", "after"}


def test_the_operator_confirms_the_failure_and_the_unit_is_routed(tmp_path: Path) -> None:
    """FAIL lets the failure route the unit as it always has (scrap here), and is kept in the audit log."""
    flow = build(tmp_path, FLAKY_THEN_MEASURE.replace("fails: 1", "fails: 5"))
    history, operator = memory_store(), Deciding([FailureChoice.RETRY, FailureChoice.FAIL])
    [result] = _runner(flow, Bench(), history, operator).run([UnitSpec("SN1")])
    assert result.status == UnitStatus.SCRAPPED
    unit = history.unit("SN1")
    assert [(a.attempt, a.outcome) for a in unit.attempts] == [(1, Outcome.FAIL), (2, Outcome.FAIL)]
    assert [(d.by, d.action) for d in unit.decisions] == [
        ("tester", "failure-retried"),
        ("tester", "failure-confirmed"),
    ]
    assert state_of(flow, history, "SN1").status == UnitStatus.SCRAPPED


def test_retries_of_the_recipe_come_before_the_question(tmp_path: Path) -> None:
    """The stage's own retries run unasked; the operator is asked once they are spent."""
    flow = build(
        tmp_path,
        """\
        recipe: retried
        version: 1
        stages:
          - {id: rf_tx, step: lab.flaky, with: {fails: 2}, retry: {max: 1}}
        """,
    )
    history, operator = memory_store(), Deciding([FailureChoice.RETRY])
    [result] = _runner(flow, Bench(), history, operator).run([UnitSpec("SN1")])
    assert result.status == UnitStatus.SHIPPED
    assert operator.asked == [("rf_tx", "rf_tx: failure 2 of 2")]
    assert [a.outcome for a in history.unit("SN1").attempts] == [Outcome.FAIL, Outcome.FAIL, Outcome.PASS]


def test_an_operator_that_cannot_be_asked_confirms_the_failure_unasked(tmp_path: Path) -> None:
    """The simulated operator has no confirm_failure: the failure routes the unit at once, nothing is audited."""
    flow = build(tmp_path, FLAKY_THEN_MEASURE)
    history = memory_store()
    [result] = _runner(flow, Bench(), history).run([UnitSpec("SN1")])
    assert result.status == UnitStatus.SCRAPPED
    assert len(history.unit("SN1").attempts) == 1 and history.unit("SN1").decisions == []


def test_an_irreversible_stage_that_failed_is_never_offered_again() -> None:
    """A failed irreversible stage may have reached the unit: the operator is not asked to run it again."""
    flow = direct_flow([stage("burn", Flaky, Flaky.Params(fails=1), irreversible=True), stage("after", Measure)])
    history, operator = memory_store(), Deciding([FailureChoice.RETRY])
    [result] = _runner(flow, Bench(), history, operator).run([UnitSpec("SN1")])
    assert result.status == UnitStatus.SCRAPPED and operator.asked == []


def _terminal(typed: str, cancelled: threading.Event | None = None) -> tuple[TerminalOperator, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    return TerminalOperator(console, "tester", stream=io.StringIO(typed)).for_unit("SN7", 2, cancelled=cancelled), out


@pytest.mark.parametrize(
    ("typed", "choice"),
    [("r\n", FailureChoice.RETRY), ("F\n", FailureChoice.FAIL), ("x\nr\n", FailureChoice.RETRY),
     ("", FailureChoice.FAIL)],
)  # fmt: skip
def test_the_terminal_asks_retry_or_fail(typed: str, choice: FailureChoice) -> None:
    """The terminal names the slot, unit, stage and what failed, and takes r or f; the end of the input fails."""
    operator, out = _terminal(typed)
    assert operator.confirm_failure("rf_tx", "rf_tx: tx_power_dbm = 30 dBm (limit 20 to 24 dBm)") is choice
    assert (
        "slot 2 unit SN7 [rf_tx] failed: rf_tx: tx_power_dbm = 30 dBm (limit 20 to 24 dBm) — retry or fail? [r/f]"
        in (out.getvalue())
    )


def test_a_stop_while_the_terminal_asks_confirms_the_failure() -> None:
    """A stop of the run ends the question at once: the failure stands (a stop never retries)."""
    cancelled = threading.Event()
    cancelled.set()
    operator, _ = _terminal("r\n", cancelled)
    assert operator.confirm_failure("rf_tx", "rf_tx: bad") is FailureChoice.FAIL


def test_units_show_prints_the_operator_s_choice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`floorflow units show SERIAL` lists the choice with who made it and what failed."""
    flow = build(tmp_path, FLAKY_THEN_MEASURE)
    url = f"sqlite:///{tmp_path / 'floorflow.db'}"
    with open_store(url) as history:
        runner = _runner(flow, Bench(), history, Deciding([FailureChoice.RETRY]))
        runner.sign_in("Grace")
        runner.run([UnitSpec("SN1")])
    capsys.readouterr()
    assert main(["units", "show", "SN1", "--store", url]) == 0
    shown = capsys.readouterr().out
    assert "failure-retried" in shown and "Grace" in shown and "failure 1 of 1" in shown


# -- a held lot at the socket ---------------------------------------------------------------------------


def test_a_unit_of_a_held_lot_is_refused_at_its_socket(tmp_path: Path) -> None:
    """`floorflow station`: a unit whose lot is on hold is refused at its socket with the hold's reason and how
    it is lifted, before any step runs; the next unit in that socket runs."""
    store = f"sqlite:///{tmp_path / 'floorflow.db'}"
    with open_store(store) as records:
        _, refused = records.claim("HELD1", station="fixture", lot="LOT-H", product=None, decide=admit)
        assert refused is None
        records.finish("HELD1", UnitStatus.IN_ROUTE, None)
        records.hold_lot("LOT-H", "recall 9: cracked housings")
    command = [sys.executable, "-m", "engine.cli", "station", THERMOSTAT, "--station", "fixture", "--sim"]
    done = subprocess.run(
        [*command, "--store", store], input="1 HELD1\n1 OK1\n", capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 5, done.stdout + done.stderr
    [refused_line] = [line for line in done.stdout.splitlines() if line.startswith("slot 1 HELD1 refused: ")]
    assert "refused by the hold rule" in refused_line and "recall 9: cracked housings" in refused_line
    assert "hold is lifted" in refused_line
    assert "HELD1 load_test_app" not in done.stdout  # no step ran
    with open_store(store) as records:
        assert records.unit("HELD1").attempts == []
        assert records.unit("OK1").status == UnitStatus.IN_ROUTE


# -- a picture with a manual check ----------------------------------------------------------------------

CHECKLIST = """\
recipe: look
version: 1
stages:
  - id: visual
    step: manual.checklist
    with: {checks: [scratches, label], picture: pics/golden.png}
"""


def _checklist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, picture: bool) -> tuple[Flow, Path]:
    """The checklist recipe in tmp_path/line, loaded by a path relative to tmp_path (the working directory)."""
    line = tmp_path / "line"
    (line / "pics").mkdir(parents=True)
    (line / "recipe.yaml").write_text(CHECKLIST)
    if picture:
        (line / "pics" / "golden.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    monkeypatch.chdir(tmp_path)
    flow, problems = check_recipe(Path("line/recipe.yaml"), Registry.discover())
    assert flow is not None and not [p for p in problems if p.severity == "error"]
    return flow, line / "pics" / "golden.png"


def test_a_manual_check_shows_its_picture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each check of a manual.checklist with a picture is asked with the picture's absolute path, found next
    to the recipe file whatever the working directory."""
    flow, picture = _checklist(tmp_path, monkeypatch, picture=True)
    operator = FakeOperator()
    runner = StationRunner(flow, Registry.discover(), SimLine(flow), operator, memory_store())
    [result] = runner.run([UnitSpec("SN1")])
    assert result.status == UnitStatus.SHIPPED
    assert operator.pictures == {"scratches": picture.resolve(), "label": picture.resolve()}
    assert operator.pictures["label"].is_absolute()


def test_a_missing_picture_is_a_station_error_before_any_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A picture that is not a file next to the recipe ends the attempt in ERROR, naming it; nobody is asked."""
    flow, _ = _checklist(tmp_path, monkeypatch, picture=False)
    operator = FakeOperator()
    [result] = StationRunner(flow, Registry.discover(), SimLine(flow), operator, memory_store()).run([UnitSpec("SN1")])
    assert result.status == UnitStatus.ERROR
    assert "picture 'pics/golden.png' is not a file" in (result.reason or "") and operator.asked == []


def test_the_terminal_shows_the_picture_s_path(tmp_path: Path) -> None:
    """The terminal prints the picture's path with the check."""
    operator, out = _terminal("y\n")
    picture = tmp_path / "golden.png"
    assert operator.ask("visual", "scratches", "No scratches?", picture) == Answer(True)
    assert f"(picture: {picture})" in out.getvalue()
