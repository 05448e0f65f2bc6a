"""Operators for manual checks: answers files, the scripted and simulated operators, the terminal."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path
from typing import TextIO

import pytest
from rich.console import Console

from engine.context import Answer, Operator
from engine.diagnostics import Pos, RecipeError
from engine.flow import Flow, Stage
from engine.outcome import StationError
from engine.run.operator import (
    Answers,
    Pause,
    ScriptedOperator,
    SimOperator,
    StationOperator,
    TerminalOperator,
    load_answers,
    operator_for,
)

ANSWERS = """\
visual:
  scratches: pass
  label: {result: fail, comment: label skewed}
  screws: true
rework_antenna:
  reseated: fail
units:
  SN0003:
    visual:
      scratches: fail
"""


def _flow(*ids: str) -> Flow:
    stages = {i: Stage(i, "manual.checklist") for i in ids}
    return Flow("mini", 1, stages, tuple(ids))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(text)
    return path


def _problems(tmp_path: Path, text: str, flow: Flow | None = None) -> list[tuple[Pos, str, str]]:
    path = _write(tmp_path, text)
    with pytest.raises(RecipeError) as caught:
        load_answers(path, flow)
    return [(d.pos, d.code, d.message) for d in caught.value.diagnostics]


def _terminal(typed: str | TextIO, pause: Pause | None = None) -> tuple[TerminalOperator, io.StringIO]:
    """A terminal operator reading ``typed`` and writing to the StringIO returned with it."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=120)
    stream = io.StringIO(typed) if isinstance(typed, str) else typed
    return TerminalOperator(console, "alice", stream=stream, pause=pause), out


# -- answers files ------------------------------------------------------------------------------------


def test_answers_file_reads_every_answer_form(tmp_path: Path) -> None:
    """pass/fail words, booleans and {result, comment} mappings all become Answers."""
    answers = load_answers(_write(tmp_path, ANSWERS), _flow("visual", "rework_antenna"))
    assert answers.lookup("SN0001", "visual", "scratches") == Answer(True)
    assert answers.lookup("SN0001", "visual", "label") == Answer(False, "label skewed")
    assert answers.lookup("SN0001", "visual", "screws") == Answer(True)
    assert answers.lookup(None, "rework_antenna", "reseated") == Answer(False)
    assert answers.lookup("SN0001", "visual", "unknown_check") is None


def test_unit_overrides_replace_one_check_and_keep_the_others(tmp_path: Path) -> None:
    """A unit's own answer wins for that check only; its other checks fall back to the file's."""
    answers = load_answers(_write(tmp_path, ANSWERS))
    assert answers.lookup("SN0003", "visual", "scratches") == Answer(False)
    assert answers.lookup("SN0003", "visual", "label") == Answer(False, "label skewed")
    assert answers.lookup("SN0004", "visual", "scratches") == Answer(True)


def test_unknown_stage_points_at_its_key_and_suggests_the_right_one(tmp_path: Path) -> None:
    """A stage id the flow lacks is an error at the key's line:col, with a did-you-mean."""
    text = "visual:\n  scratches: pass\nrework_antena:\n  reseated: pass\n"
    ((pos, code, message),) = _problems(tmp_path, text, _flow("visual", "rework_antenna"))
    assert pos == Pos(str(tmp_path / "answers.yaml"), 3, 1)
    assert code == "answers-unknown-stage"
    assert "'rework_antena'" in message and "did you mean 'rework_antenna'?" in message


def test_unknown_stage_under_a_unit_names_the_unit(tmp_path: Path) -> None:
    """Stage ids under units: are checked too, and the message says which unit."""
    text = "units:\n  SN0003:\n    visul:\n      scratches: fail\n"
    ((pos, code, message),) = _problems(tmp_path, text, _flow("visual"))
    assert (pos.line, pos.col, code) == (3, 5, "answers-unknown-stage")
    assert "unit 'SN0003'" in message and "did you mean 'visual'?" in message


def test_without_a_flow_any_stage_id_is_accepted(tmp_path: Path) -> None:
    """Stage ids are only checked when the flow is known."""
    answers = load_answers(_write(tmp_path, "anything:\n  x: pass\n"))
    assert answers.lookup(None, "anything", "x") == Answer(True)


def test_bad_answer_values_are_all_reported_at_their_positions(tmp_path: Path) -> None:
    """Every bad answer is reported at once, each at its value, with a hint for a near word."""
    text = (
        "visual:\n"
        "  scratches: passed\n"
        "  label: 3\n"
        "  screws: {result: maybe}\n"
        "  paint: {comment: no result}\n"
        "  glue: {result: pass, coment: x}\n"
        "  seal: {result: fail, comment: 12}\n"
    )
    problems = _problems(tmp_path, text)
    found = [(pos.line, pos.col, code) for pos, code, _ in problems]
    assert found == [
        (2, 14, "answers-value"),
        (3, 10, "answers-value"),
        (4, 20, "answers-value"),
        (5, 10, "answers-value"),
        (6, 24, "answers-key"),
        (7, 33, "answers-comment"),
    ]
    messages = [message for _, _, message in problems]
    assert "did you mean 'pass'?" in messages[0]
    assert "check 'label' of stage 'visual'" in messages[1]
    assert "did you mean 'comment'?" in messages[4]


def test_answers_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    """A list at the top, or a stage given a word instead of checks, is an answers-not-mapping error."""
    ((pos, code, _),) = _problems(tmp_path, "- visual\n")
    assert (pos.line, pos.col, code) == (1, 1, "answers-not-mapping")
    ((pos, code, message),) = _problems(tmp_path, "visual: pass\n")
    assert (pos.line, pos.col, code) == (1, 9, "answers-not-mapping")
    assert "stage 'visual'" in message


def test_empty_answers_file_answers_nothing(tmp_path: Path) -> None:
    """A file with only comments is valid and has no answers."""
    answers = load_answers(_write(tmp_path, "# nothing yet\n"))
    assert answers.lookup("SN1", "visual", "x") is None


# -- scripted and simulated --------------------------------------------------------------------------


def test_scripted_operator_answers_from_the_file_for_its_unit(tmp_path: Path) -> None:
    """The operator bound to a unit gives that unit's overrides."""
    operator = ScriptedOperator(load_answers(_write(tmp_path, ANSWERS)))
    assert operator.for_unit("SN0003", 1).ask("visual", "scratches", "No scratches?") == Answer(False)
    assert operator.for_unit("SN0001", 2).ask("visual", "scratches", "No scratches?") == Answer(True)


def test_scripted_operator_missing_answer_is_a_station_error_naming_unit_stage_and_check(
    tmp_path: Path,
) -> None:
    """A check the file does not answer stops with a StationError saying where and what is missing."""
    operator = ScriptedOperator(load_answers(_write(tmp_path, ANSWERS))).for_unit("SN0007", 2)
    with pytest.raises(StationError) as caught:
        operator.ask("visual", "paint", "Paint even?")
    message = str(caught.value)
    assert "SN0007" in message and "slot 2" in message
    assert "'visual'" in message and "'paint'" in message and "has no answer" in message


def test_no_terminal_and_no_answers_is_a_station_error_not_a_hang() -> None:
    """operator_for without sim, answers or terminal gives an operator that refuses at once."""
    operator = operator_for(sim=False, answers=None, interactive=False, name="line1")
    with pytest.raises(StationError, match="no terminal and no answers file") as caught:
        operator.for_unit("SN0001", 1).ask("visual", "scratches", "No scratches?")
    assert "SN0001" in str(caught.value) and "'scratches'" in str(caught.value)


def test_sim_operator_passes_unless_the_answers_say_otherwise(tmp_path: Path) -> None:
    """The simulated operator passes any check, and follows the answers file where it has one."""
    assert SimOperator().ask("any_stage", "any_check", "?") == Answer(True)
    sim = SimOperator(load_answers(_write(tmp_path, ANSWERS)))
    assert sim.for_unit("SN0003").ask("visual", "scratches", "?") == Answer(False)
    assert sim.for_unit("SN0003").ask("visual", "paint", "?") == Answer(True)


def test_operator_for_picks_by_answers_then_sim_then_terminal() -> None:
    """Answers win (scripted, or simulated with overrides), then sim, then a terminal when there is one."""
    answers = Answers()
    console = Console(file=io.StringIO())
    assert type(operator_for(False, answers, True, "a", console=console)) is ScriptedOperator
    assert type(operator_for(True, answers, True, "a", console=console)) is SimOperator
    assert type(operator_for(True, None, True, "a", console=console)) is SimOperator
    assert type(operator_for(False, None, True, "a", console=console)) is TerminalOperator
    assert operator_for(False, None, True, "alice", console=console).name == "alice"


def test_every_operator_satisfies_the_protocols() -> None:
    """Each operator, and each bound one, is an Operator, and the unbound ones offer for_unit."""
    console = Console(file=io.StringIO())
    operators: list[StationOperator] = [
        ScriptedOperator(None),
        SimOperator(),
        TerminalOperator(console, "alice"),
    ]
    bound: list[Operator] = [op.for_unit("SN1", 1) for op in operators]
    assert [op.name for op in bound] == ["script", "sim", "alice"]


# -- terminal ---------------------------------------------------------------------------------------


def test_terminal_yes_is_a_pass_and_the_prompt_says_who_asks() -> None:
    """'y' passes; the prompt shows slot, unit, [stage] check: prompt and the y/n choice."""
    operator, out = _terminal("y\n")
    assert operator.for_unit("SN0003", 2).ask("visual", "scratches", "No scratches?") == Answer(True)
    assert "slot 2 unit SN0003 [visual] scratches: No scratches? — pass? [y/n]" in out.getvalue()


def test_terminal_no_asks_for_a_comment() -> None:
    """'n' fails and the next line is kept as the comment; an empty comment is None."""
    operator, out = _terminal("n\nlabel skewed\nn\n\n")
    unit = operator.for_unit("SN0003", 2)
    assert unit.ask("visual", "label", "Label straight?") == Answer(False, "label skewed")
    assert unit.ask("visual", "label", "Label straight?") == Answer(False, None)
    assert "comment" in out.getvalue()


def test_terminal_asks_again_after_an_answer_that_is_not_y_or_n() -> None:
    """An answer other than y/n is refused and the question asked again."""
    operator, out = _terminal("maybe\nY\n")
    assert operator.ask("visual", "scratches", "") == Answer(True)
    assert out.getvalue().count("[visual] scratches — pass?") == 2


def test_terminal_end_of_input_is_a_station_error() -> None:
    """End of input, at the question or at the comment, is a StationError and never a loop."""
    operator, _ = _terminal("")
    with pytest.raises(StationError, match="end of input") as caught:
        operator.for_unit("SN0009", 3).ask("visual", "scratches", "?")
    assert "SN0009" in str(caught.value) and "'scratches'" in str(caught.value)
    operator, _ = _terminal("n\n")
    with pytest.raises(StationError, match="end of input"):
        operator.ask("visual", "scratches", "?")


def test_terminal_prompts_are_one_at_a_time_and_inside_the_pause() -> None:
    """Concurrent asks from several slots never overlap, and each runs inside the pause hook."""
    inside = 0
    most = 0
    pauses = 0
    guard = threading.Lock()

    class Pause:
        def __enter__(self) -> None:
            nonlocal inside, most, pauses
            with guard:
                inside += 1
                pauses += 1
                most = max(most, inside)

        def __exit__(self, *exc: object) -> None:
            nonlocal inside
            with guard:
                inside -= 1

    operator, out = _terminal("y\n" * 8, pause=Pause)
    answers: list[Answer] = []

    def ask(slot: int) -> None:
        answers.append(operator.for_unit(f"SN{slot}", slot).ask("visual", "scratches", "?"))

    threads = [threading.Thread(target=ask, args=(slot,)) for slot in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert answers == [Answer(True)] * 8
    assert (most, pauses) == (1, 8)
    assert all(f"slot {slot} unit SN{slot} " in out.getvalue() for slot in range(1, 9))


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_terminal_reads_a_real_pseudo_terminal() -> None:
    """Through a pty the operator reads what is typed, and ^D at the start of a line is end of input."""
    leader, follower = os.openpty()
    try:
        with open(follower, closefd=False) as tty_in:  # the read end of the pty, as a terminal
            assert tty_in.isatty()
            os.write(leader, b"n\nbent pin\n\x04")  # ^D at the start of a line: end of input
            operator, _ = _terminal(tty_in)
            assert operator.ask("visual", "pins", "Pins straight?") == Answer(False, "bent pin")
            with pytest.raises(StationError, match="end of input"):
                operator.ask("visual", "pins", "Pins straight?")
    finally:
        os.close(leader)
        os.close(follower)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_a_stop_ends_an_open_question_on_a_real_terminal_at_once() -> None:
    """A question waiting on a terminal nobody types into ends as soon as the unit's cancel event is set: a
    StationError saying the run was stopped, no answer taken; a bound operator still reads typed answers."""
    leader, follower = os.openpty()
    try:
        with open(follower, closefd=False) as tty_in:
            operator, out = _terminal(tty_in)
            cancelled = threading.Event()
            unit = operator.for_unit("SN0004", 4, cancelled=cancelled)
            os.write(leader, b"y\n")
            assert unit.ask("visual", "pins", "Pins straight?") == Answer(True)
            raised: list[BaseException] = []

            def ask() -> None:
                try:
                    unit.ask("visual", "scratches", "No scratches?")
                except BaseException as exc:
                    raised.append(exc)

            asking = threading.Thread(target=ask)
            asking.start()
            deadline = time.monotonic() + 5
            while "scratches: No scratches?" not in out.getvalue() and time.monotonic() < deadline:
                time.sleep(0.01)
            cancelled.set()
            asking.join(5)
            stuck = asking.is_alive()
            if stuck:
                os.write(leader, b"y\n")  # let the thread go before the pty closes
                asking.join(5)
            assert not stuck, "the question did not end when the run was stopped"
            [error] = raised
            assert isinstance(error, StationError)
            assert "slot 4 unit SN0004: the run was stopped while check 'scratches'" in str(error)
    finally:
        os.close(leader)
        os.close(follower)


def test_unknown_check_of_a_stage_points_at_it_and_suggests_the_right_one(tmp_path: Path) -> None:
    """A check the stage never asks (a typo that would silently pass in --sim) is an error with did-you-mean."""
    from engine.step import Effects

    stage = Stage("display_test", "manual.checklist", effects=Effects(asks=("display_pixels", "touch_panel")))
    flow = Flow("mini", 1, {"display_test": stage}, ("display_test",))
    text = "display_test:\n  touch_panel: pass\n  display_pixel: fail\n"
    ((pos, code, message),) = _problems(tmp_path, text, flow)
    assert pos == Pos(str(tmp_path / "answers.yaml"), 3, 3)
    assert code == "answers-unknown-check"
    assert "did you mean 'display_pixels'?" in message
