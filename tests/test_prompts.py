"""An operator's questions told to the line: prompt waiting, written before the question is asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.context import Answer, FailureChoice
from engine.messages import Kind, Message, Source
from engine.run.prompts import announced


class _Person:
    name = "Ana"
    waits_for_a_person = True

    def __init__(self, told: list[Message]) -> None:
        self.told = told
        self.asked: list[tuple[Any, ...]] = []

    def ask(self, stage: str, check: str, prompt: str, picture: Path | None = None) -> Answer:
        self.asked.append((stage, check, prompt, picture, len(self.told)))
        return Answer(True)

    def confirm_failure(self, stage: str, failed: str) -> FailureChoice:
        self.asked.append((stage, failed, len(self.told)))
        return FailureChoice.RETRY


class _Sim:
    name = "sim"

    def ask(self, stage: str, check: str, prompt: str, picture: Path | None = None) -> Answer:
        return Answer(True)


class _Line:
    line_source = Source("line1", "final")

    def __init__(self) -> None:
        self.told: list[Message] = []

    def tell(self, message: Message) -> None:
        self.told.append(message)


def test_a_persons_question_is_told_to_the_line_before_it_is_asked() -> None:
    line = _Line()
    person = _Person(line.told)
    operator = announced(person, line, "SN1", 3)
    assert operator.ask("look", "label_straight", "Is the label straight?") == Answer(True)
    assert person.asked == [("look", "label_straight", "Is the label straight?", None, 1)]  # told first
    (message,) = line.told
    assert message.kind is Kind.PROMPT_WAITING and message.topic == "line1/final/3/prompt-waiting"
    body = json.loads(message.payload)["MessageBody"]
    assert body == {
        "UnitIdentifier": "SN1",
        "PositionNumber": 3,
        "TestName": "look",
        "Question": "label_straight",
        "Text": "Is the label straight?",
    }
    assert operator.name == "Ana"


def test_a_failure_to_confirm_is_told_too_and_answered_by_the_person() -> None:
    line = _Line()
    person = _Person(line.told)
    operator = announced(person, line, "SN1", 2)
    confirm = operator.confirm_failure  # type: ignore[attr-defined]
    assert confirm("rf_tx", "tx_power_dbm = 30 dBm") is FailureChoice.RETRY
    assert person.asked == [("rf_tx", "tx_power_dbm = 30 dBm", 1)]
    assert json.loads(line.told[0].payload)["MessageBody"]["Text"] == "tx_power_dbm = 30 dBm"


def test_nothing_is_told_for_the_simulated_operator_nor_by_a_record_that_does_not_tell_the_line() -> None:
    line = _Line()
    sim = _Sim()
    assert announced(sim, line, "SN1", 1) is sim
    assert not hasattr(announced(sim, line, "SN1", 1), "confirm_failure")
    person = _Person([])
    assert announced(person, object(), "SN1", 1) is person


def test_a_station_at_a_terminal_tells_the_line_its_prompts_through_the_store(tmp_path: Path) -> None:
    """The runner announces the terminal operator's questions: the store's outbox holds a prompt waiting for
    the manual check, written before the answer's attempt."""
    import io

    from rich.console import Console

    from engine.recipe.check import load_flow
    from engine.registry import Registry
    from engine.run.operator import TerminalOperator
    from engine.run.runner import StationRunner
    from engine.run.slots import UnitSpec
    from engine.store import open_store
    from steps.sim import SimLine

    root = Path(__file__).resolve().parent.parent
    registry = Registry.discover()
    flow = load_flow(root / "tests/recipes/station-screen.yaml", registry, recipe_root=root)
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    store.tell_line(Source("line1", "bench"))
    answers = io.StringIO("y\n")
    operator = TerminalOperator(Console(file=io.StringIO()), "Ana", stream=answers)
    line = SimLine(flow)
    try:
        runner = StationRunner(flow, registry, line, operator, store, station="bench")
        assert [r.status for r in runner.run([UnitSpec("SN1")])] == ["shipped"]
        store.flush()
        kinds = [message.kind for _, message in store.outbox_after(0, 100)]
    finally:
        line.close()
        store.close()
    assert Kind.PROMPT_WAITING in kinds
    waiting = kinds.index(Kind.PROMPT_WAITING)
    assert kinds[waiting + 1] is Kind.ATTEMPT_ENDED  # the look's attempt, answered after the prompt was told
