"""Who answers manual checks: a person at the terminal, an answers file, or the simulated operator.

``Operator.ask(stage, check, prompt)`` does not name the unit, yet an answers file may answer one
unit differently and a person must be told which slot is asking. So every operator here also has
``for_unit(serial, slot)``: the runner calls it once per unit and puts the bound operator it returns
in that unit's ``StepContext``. An operator used without binding answers as for no particular unit.

An answers file (``load_answers``) scripts the checks for dry runs and unattended stations::

    visual_inspection:
      scratches: pass
      label_straight: {result: fail, comment: label skewed 5 degrees}
    units:                      # per-unit answers, check by check, over the ones above
      SN0003:
        visual_inspection:
          scratches: fail

``units`` is therefore a reserved top-level key: answers for a stage of that name go under a serial.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.prompt import Confirm, Prompt
from rich.text import Text

from engine.context import Answer, Operator
from engine.diagnostics import Diagnostic, Pos, RecipeError, did_you_mean
from engine.flow import Flow
from engine.outcome import StationError
from engine.yamlload import YList, YMap, load_file

UNITS_KEY = "units"
_WORDS = {"pass": True, "fail": False}
_ANSWER_KEYS = ("result", "comment")
_ANSWER_FORMS = "pass, fail, true or false, or {result: pass|fail, comment: TEXT}"

ChecksByStage = Mapping[str, Mapping[str, Answer]]


class StationOperator(Operator, Protocol):
    """An Operator the runner can bind to the unit (and slot) it is asking about."""

    def for_unit(self, serial: str, slot: int | None = None) -> Operator: ...


@dataclass(frozen=True)
class Answers:
    """The answers of one answers file: per stage and check, and per unit over those."""

    stages: ChecksByStage = field(default_factory=dict)
    units: Mapping[str, ChecksByStage] = field(default_factory=dict)
    source: str = "<answers>"

    def lookup(self, serial: str | None, stage: str, check: str) -> Answer | None:
        """The unit's own answer if it has one, else the file's answer for every unit, else None."""
        if serial is not None:
            own = self.units.get(serial, {}).get(stage, {}).get(check)
            if own is not None:
                return own
        return self.stages.get(stage, {}).get(check)


# -- loading -------------------------------------------------------------------------------------


def _pos(value: Any, file: str) -> Pos:
    return value.pos if isinstance(value, YMap | YList) else Pos(file, 1, 1)


class _Reader:
    """Walks an answers file, collecting every problem rather than stopping at the first."""

    def __init__(self, file: str, flow: Flow | None) -> None:
        self.file = file
        self.flow = flow
        self.problems: list[Diagnostic] = []

    def problem(self, pos: Pos, code: str, message: str) -> None:
        self.problems.append(Diagnostic(pos, "error", code, message))

    def stages(self, data: YMap, keys: list[str], where: str) -> ChecksByStage:
        result: dict[str, Mapping[str, Answer]] = {}
        for stage in keys:
            if self.flow is not None and stage not in self.flow.stages:
                hint = did_you_mean(stage, self.flow.stages)
                self.problem(
                    data.where(stage, of_key=True),
                    "answers-unknown-stage",
                    f"unknown stage '{stage}'{where} in recipe '{self.flow.recipe}'{hint}",
                )
                continue
            checks = data[stage]
            if not isinstance(checks, YMap):
                self.problem(
                    data.where(stage),
                    "answers-not-mapping",
                    f"stage '{stage}'{where} must map each check to its answer",
                )
                continue
            asked = self.flow.stages[stage].effects.asks if self.flow is not None else ()
            for check in checks:
                if asked and check not in asked:
                    self.problem(
                        checks.where(check, of_key=True),
                        "answers-unknown-check",
                        f"stage '{stage}'{where} asks no check '{check}'{did_you_mean(check, asked)}",
                    )
            answers = {check: self.answer(checks, check, stage) for check in checks}
            result[stage] = MappingProxyType({c: a for c, a in answers.items() if a is not None})
        return MappingProxyType(result)

    def answer(self, checks: YMap, check: str, stage: str) -> Answer | None:
        value = checks[check]
        what = f"answer to check '{check}' of stage '{stage}'"
        if isinstance(value, bool):
            return Answer(value)
        if isinstance(value, str) and value in _WORDS:
            return Answer(_WORDS[value])
        if not isinstance(value, YMap):
            hint = did_you_mean(value, _WORDS) if isinstance(value, str) else ""
            self.problem(checks.where(check), "answers-value", f"{what} must be {_ANSWER_FORMS}; got {value!r}{hint}")
            return None
        ok = True
        for key in value:
            if key not in _ANSWER_KEYS:
                hint = did_you_mean(key, _ANSWER_KEYS)
                self.problem(value.where(key, of_key=True), "answers-key", f"unknown key '{key}' in {what}{hint}")
                ok = False
        result = value.get("result")
        if "result" not in value:
            self.problem(value.pos, "answers-value", f"{what} has no 'result' (pass or fail)")
            ok = False
        elif not isinstance(result, bool) and result not in _WORDS:
            hint = did_you_mean(result, _WORDS) if isinstance(result, str) else ""
            self.problem(
                value.where("result"),
                "answers-value",
                f"result of the {what} must be pass or fail; got {result!r}{hint}",
            )
            ok = False
        comment = value.get("comment")
        if comment is not None and not isinstance(comment, str):
            self.problem(
                value.where("comment"),
                "answers-comment",
                f"comment of the {what} must be text; got {comment!r} (quote it)",
            )
            ok = False
        if not ok:
            return None
        passed = result if isinstance(result, bool) else _WORDS[str(result)]
        return Answer(passed, comment)

    def units(self, data: YMap) -> Mapping[str, ChecksByStage]:
        units = data[UNITS_KEY]
        if not isinstance(units, YMap):
            self.problem(data.where(UNITS_KEY), "answers-not-mapping", "'units' must map serials to stages")
            return {}
        result: dict[str, ChecksByStage] = {}
        for serial, stages in units.items():
            if not isinstance(stages, YMap):
                self.problem(
                    units.where(serial),
                    "answers-not-mapping",
                    f"unit '{serial}' must map stage ids to their checks",
                )
                continue
            result[serial] = self.stages(stages, list(stages), f" (unit '{serial}')")
        return MappingProxyType(result)


def load_answers(path: Path, flow: Flow | None = None) -> Answers:
    """Read an answers file; with a flow, stage ids are checked against it.

    Raises RecipeError (RecipeSyntaxError for bad YAML) carrying every problem at file:line:col.
    """
    file = str(path)
    data = load_file(path)
    if data is None:  # an empty file, or comments only: answers nothing
        return Answers(source=file)
    if not isinstance(data, YMap):
        raise RecipeError(
            [
                Diagnostic(
                    _pos(data, file),
                    "error",
                    "answers-not-mapping",
                    "an answers file maps stage ids to their checks' answers (and may have 'units:')",
                )
            ]
        )
    reader = _Reader(file, flow)
    stages = reader.stages(data, [k for k in data if k != UNITS_KEY], "")
    units = reader.units(data) if UNITS_KEY in data else {}
    if reader.problems:
        raise RecipeError(reader.problems)
    return Answers(stages, units, file)


# -- operators -----------------------------------------------------------------------------------


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

    def for_unit(self, serial: str, slot: int | None = None) -> ScriptedOperator:
        return ScriptedOperator(self.answers, self.name, serial=serial, slot=slot)

    def ask(self, stage: str, check: str, prompt: str) -> Answer:
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

    def for_unit(self, serial: str, slot: int | None = None) -> SimOperator:
        return SimOperator(self.answers, self.name, serial=serial)

    def ask(self, stage: str, check: str, prompt: str) -> Answer:
        found = self.answers.lookup(self.serial, stage, check) if self.answers is not None else None
        return found if found is not None else Answer(True)


class _EndOfInput(EOFError):
    pass


def _read_line(console: Console, prompt: Text | str, password: bool, stream: TextIO | None) -> str:
    line = console.input(prompt, password=password, stream=stream)
    # input() raises EOFError itself; a stream's readline() says end of input with "", which
    # rich would otherwise take for an invalid answer and ask again, for ever.
    if stream is not None and line == "":
        raise _EndOfInput
    return line


class _PassPrompt(Confirm):
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
    ) -> None:
        self.console = console
        self.name = name
        self.stream = stream
        self.pause: Pause = pause if pause is not None else nullcontext
        self.serial = serial
        self.slot = slot
        self._lock = lock if lock is not None else threading.Lock()

    def for_unit(self, serial: str, slot: int | None = None) -> TerminalOperator:
        # The lock is shared: every unit's operator prompts on the same terminal.
        return TerminalOperator(
            self.console,
            self.name,
            stream=self.stream,
            pause=self.pause,
            serial=serial,
            slot=slot,
            lock=self._lock,
        )

    def ask(self, stage: str, check: str, prompt: str) -> Answer:
        question = Text()
        if self.serial is not None or self.slot is not None:
            question.append(_who(self.serial, self.slot) + " ", style="bold cyan")
        question.append(f"[{stage}] ", style="bold")
        question.append(check)
        if prompt:
            question.append(f": {prompt}")
        question.append(" — pass?")
        with self._lock, self.pause():
            try:
                passed = _PassPrompt.ask(question, console=self.console, stream=self.stream)
                comment = None
                if not passed:
                    said = _CommentPrompt.ask(
                        "comment (Enter for none)",
                        console=self.console,
                        stream=self.stream,
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
        return Answer(passed, comment)


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
