"""The answers file: manual checks scripted for dry runs and unattended stations.

An answers file (``load_answers``) answers checks per stage, and per unit over those::

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

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.context import Answer
from engine.diagnostics import Diagnostic, Pos, RecipeError, did_you_mean
from engine.flow import Flow
from engine.yamlload import YList, YMap, load_file

UNITS_KEY = "units"
_WORDS = {"pass": True, "fail": False}
_ANSWER_KEYS = ("result", "comment")
_ANSWER_FORMS = "pass, fail, true or false, or {result: pass|fail, comment: TEXT}"

ChecksByStage = Mapping[str, Mapping[str, Answer]]


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
