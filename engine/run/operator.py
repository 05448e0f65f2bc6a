"""Who answers manual checks: a person at the terminal, an answers file, or the simulated operator.

``Operator.ask(stage, check, prompt, picture)`` does not name the unit, yet an answers file may answer one
unit differently and a person must be told which slot is asking. So every operator here also has
``for_unit(serial, slot, cancelled=EVENT)``: the runner calls it once per unit and puts the bound
operator it returns in that unit's ``StepContext``; when ``cancelled`` is set (a stop of the run), a
question still open is given up at once. An operator used without binding answers as for no
particular unit. Answers files are read by ``engine.run.answers``.

The person at the terminal is also asked to confirm a stage that failed after its retries
(``confirm_failure``: retry or fail); the answers file and the simulated operator are not asked,
and the failure stands as it always has.
"""

from __future__ import annotations

import os
import select
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Protocol, TextIO, cast

from rich.console import Console
from rich.prompt import Confirm, Prompt
from rich.text import Text

from engine.context import Answer, FailureChoice, Operator
from engine.outcome import StationError
from engine.run.answers import Answers, load_answers

__all__ = [
    "Answers",
    "Pause",
    "ScriptedOperator",
    "SimOperator",
    "StationOperator",
    "TerminalOperator",
    "load_answers",
    "operator_for",
    "stdin_is_terminal",
]


class StationOperator(Operator, Protocol):
    """An Operator the runner can bind to the unit (and slot) it is asking about."""

    def for_unit(self, serial: str, slot: int | None = None, *, cancelled: threading.Event | None = None) -> Operator:
        """The operator for one unit in one slot; its open question ends when ``cancelled`` is set."""
        ...

    # Optional, looked up by name on the operator ``for_unit`` returned:
    # ``confirm_failure(self, stage: str, failed: str) -> FailureChoice``, asked when ``stage`` failed after
    # its retries (``failed`` says what failed, as the live view does): RETRY runs the stage once more, FAIL
    # lets the failure route the unit. An operator without it confirms every failure unasked.


def _who(serial: str | None, slot: int | None) -> str:
    unit = f"unit {serial}" if serial is not None else "no unit"
    return unit if slot is None else f"slot {slot} {unit}"


class ScriptedOperator:
    """Answers from an answers file; a check the file does not answer is a StationError.

    Without answers at all it is the station with nobody to ask: every check is a StationError,
    never a prompt that waits for ever.
    """

    def __init__(
        self,
        answers: Answers | None,
        name: str = "script",
        *,
        serial: str | None = None,
        slot: int | None = None,
    ) -> None:
        self.answers = answers
        self.name = name
        self.serial = serial
        self.slot = slot

    def for_unit(
        self, serial: str, slot: int | None = None, *, cancelled: threading.Event | None = None
    ) -> ScriptedOperator:
        return ScriptedOperator(self.answers, self.name, serial=serial, slot=slot)

    def ask(self, stage: str, check: str, prompt: str, picture: Path | None = None) -> Answer:
        who = _who(self.serial, self.slot)
        if self.answers is None:
            raise StationError(
                f"{who}: no terminal and no answers file: cannot ask the operator check '{check}' of "
                f"stage '{stage}' ({prompt}); run in a terminal, give an answers file, or simulate"
            )
        answer = self.answers.lookup(self.serial, stage, check)
        if answer is None:
            raise StationError(
                f"{who}: the answers file {self.answers.source} has no answer for check '{check}' "
                f"of stage '{stage}' ({prompt})"
            )
        return answer


class SimOperator:
    """The simulated operator: passes every check, unless the answers say otherwise."""

    def __init__(self, answers: Answers | None = None, name: str = "sim", *, serial: str | None = None) -> None:
        self.answers = answers
        self.name = name
        self.serial = serial

    def for_unit(
        self, serial: str, slot: int | None = None, *, cancelled: threading.Event | None = None
    ) -> SimOperator:
        return SimOperator(self.answers, self.name, serial=serial)

    def ask(self, stage: str, check: str, prompt: str, picture: Path | None = None) -> Answer:
        found = self.answers.lookup(self.serial, stage, check) if self.answers is not None else None
        return found if found is not None else Answer(True)


class _EndOfInput(EOFError):
    pass


class _Stopped(Exception):
    """The run was stopped while a question was open."""


def _terminal_fd(stream: object) -> int | None:
    try:
        fd = stream.fileno()  # type: ignore[attr-defined]
        return int(fd) if os.isatty(fd) else None
    except (AttributeError, OSError, ValueError):
        return None


class _Answers:
    """Where a prompt reads its answer: the operator's stream (stdin when None), given up once cancelled.

    A terminal is watched a tenth of a second at a time, so a stop ends the question at once, and
    read with os.read, which in the terminal's line mode returns one whole line (b"" for ^D at the
    start of a line). Any other stream (a file, a test's StringIO) is read as it is: nobody types
    into it, so it never waits.
    """

    def __init__(self, stream: TextIO | None, cancelled: threading.Event | None) -> None:
        self.source = stream if stream is not None else sys.stdin
        self.cancelled = cancelled

    def readline(self) -> str:
        if self.cancelled is None:
            return self.source.readline()
        if self.cancelled.is_set():
            raise _Stopped
        fd = _terminal_fd(self.source)
        if fd is None:
            return self.source.readline()
        waiting = select.poll()  # poll, not select: a station's descriptors can pass 1023
        waiting.register(fd, select.POLLIN)
        while not waiting.poll(100):
            if self.cancelled.is_set():
                raise _Stopped
        return os.read(fd, 65536).decode(getattr(self.source, "encoding", None) or "utf-8", "replace")


def _read_line(console: Console, prompt: Text | str, password: bool, stream: TextIO | None) -> str:
    line = console.input(prompt, password=password, stream=stream)
    # A stream's readline() says end of input with "", which rich would otherwise take for an
    # invalid answer and ask again, for ever.
    if stream is not None and line == "":
        raise _EndOfInput
    return line


class _PassPrompt(Confirm):
    @classmethod
    def get_input(cls, console: Console, prompt: Text | str, password: bool, stream: TextIO | None = None) -> str:
        return _read_line(console, prompt, password, stream)


class _ChoicePrompt(Prompt):
    @classmethod
    def get_input(cls, console: Console, prompt: Text | str, password: bool, stream: TextIO | None = None) -> str:
        return _read_line(console, prompt, password, stream)


class _CommentPrompt(Prompt):
    @classmethod
    def get_input(cls, console: Console, prompt: Text | str, password: bool, stream: TextIO | None = None) -> str:
        return _read_line(console, prompt, password, stream)


Pause = Callable[[], AbstractContextManager[object]]
"""Makes room on the screen for a prompt, e.g. ``LiveProgress.paused`` stops the live table."""


class TerminalOperator:
    """Asks the person at the terminal, one prompt at a time however many slots ask at once.

    ``stream`` is where answers are read (stdin when None); ``pause`` is entered around each prompt.
    End of input is a StationError: nobody is left to answer.
    """

    waits_for_a_person = True
    """Its questions wait for someone: the line is told of each (``engine.run.prompts``)."""

    def __init__(
        self,
        console: Console,
        name: str,
        *,
        stream: TextIO | None = None,
        pause: Pause | None = None,
        serial: str | None = None,
        slot: int | None = None,
        lock: threading.Lock | None = None,
        cancelled: threading.Event | None = None,
    ) -> None:
        self.console = console
        self.name = name
        self.stream = stream
        self.pause: Pause = pause if pause is not None else nullcontext
        self.serial = serial
        self.slot = slot
        self.cancelled = cancelled
        self._lock = lock if lock is not None else threading.Lock()

    def for_unit(
        self, serial: str, slot: int | None = None, *, cancelled: threading.Event | None = None
    ) -> TerminalOperator:
        # The lock is shared: every unit's operator prompts on the same terminal.
        return TerminalOperator(
            self.console,
            self.name,
            stream=self.stream,
            pause=self.pause,
            serial=serial,
            slot=slot,
            lock=self._lock,
            cancelled=cancelled,
        )

    def _about(self, stage: str) -> Text:
        """A question's start: which slot and unit ask, and the stage."""
        question = Text()
        if self.serial is not None or self.slot is not None:
            question.append(_who(self.serial, self.slot) + " ", style="bold cyan")
        question.append(f"[{stage}] ", style="bold")
        return question

    def ask(self, stage: str, check: str, prompt: str, picture: Path | None = None) -> Answer:
        question = self._about(stage)
        question.append(check)
        if prompt:
            question.append(f": {prompt}")
        if picture is not None:
            question.append(f" (picture: {picture})")
        question.append(" — pass?")
        answers = cast(TextIO, _Answers(self.stream, self.cancelled))
        with self._lock, self.pause():
            try:
                passed = _PassPrompt.ask(question, console=self.console, stream=answers)
                comment = None
                if not passed:
                    said = _CommentPrompt.ask(
                        "comment (Enter for none)",
                        console=self.console,
                        stream=answers,
                        default="",
                        show_default=False,
                    )
                    comment = said.strip() or None
            except EOFError:
                self.console.print()
                raise StationError(
                    f"{_who(self.serial, self.slot)}: end of input on the terminal while asking check "
                    f"'{check}' of stage '{stage}': nobody is left to answer"
                ) from None
            except _Stopped:
                self.console.print()
                raise StationError(
                    f"{_who(self.serial, self.slot)}: the run was stopped while check '{check}' of stage "
                    f"'{stage}' was asked: no answer taken"
                ) from None
        return Answer(passed, comment)

    def confirm_failure(self, stage: str, failed: str) -> FailureChoice:
        """Ask whether the stage that failed after its retries runs once more; the end of the input or a stop
        of the run confirms the failure (nobody chose to retry)."""
        question = self._about(stage)
        question.append(f"failed: {failed} — retry or fail?")
        answers = cast(TextIO, _Answers(self.stream, self.cancelled))
        with self._lock, self.pause():
            try:
                said = _ChoicePrompt.ask(
                    question, console=self.console, stream=answers, choices=["r", "f"], case_sensitive=False
                )
            except (EOFError, _Stopped):
                self.console.print()
                return FailureChoice.FAIL
        return FailureChoice.RETRY if said.lower() == "r" else FailureChoice.FAIL


def operator_for(
    sim: bool,
    answers: Answers | None,
    interactive: bool,
    name: str,
    *,
    console: Console | None = None,
    stream: TextIO | None = None,
    pause: Pause | None = None,
) -> StationOperator:
    """The operator a run uses: answers file, else simulation, else the terminal, else nobody.

    ``interactive`` is whether a person can answer (stdin is a terminal); ``console``, ``stream``
    and ``pause`` are for the terminal operator.
    """
    if answers is not None:
        return SimOperator(answers, name) if sim else ScriptedOperator(answers, name)
    if sim:
        return SimOperator(None, name)
    if interactive:
        return TerminalOperator(console if console is not None else Console(), name, stream=stream, pause=pause)
    return ScriptedOperator(None, name)


def stdin_is_terminal() -> bool:
    """Whether a person can answer prompts: the ``interactive`` of ``operator_for``."""
    return sys.stdin is not None and sys.stdin.isatty()
