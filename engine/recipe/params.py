"""Turn a stage's ``with:`` mapping into its step type's frozen parameter dataclass."""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from engine.diagnostics import did_you_mean
from engine.step import StepType


class NotAChoice(TypeError):
    """A value outside a parameter's closed set of values (a ``Literal`` or an ``Enum``)."""

    def __init__(self, value: Any, choices: tuple[str, ...]) -> None:
        super().__init__(f"{value!r} is not one of {', '.join(choices)}")
        self.value = value
        self.choices = choices

    def explain(self, key: str) -> str:
        """``unknown KEY 'VALUE' (did you mean …?)``, with the values when they are few."""
        few = f"; one of {', '.join(self.choices)}" if len(self.choices) <= _FEW_SHOWN else ""
        return f"unknown {key} {self.value!r}{suggest(str(self.value), self.choices)}{few}"


_FEW_SHOWN = 12
"""A closed set of at most this many values is listed in full when a value is not among them."""


def suggest(value: str, choices: tuple[str, ...]) -> str:
    """A did-you-mean suffix: a near miss, else the shortest choice that holds ``value``'s letters in
    order (an abbreviation: ``ble`` for ``bluetooth``, ``wifi5`` for ``wifi-5g``)."""
    near = did_you_mean(value, choices)
    if near or not value:
        return near
    holding = sorted((c for c in choices if _in_order(value.lower(), c.lower())), key=len)
    if holding and (len(holding) == 1 or len(holding[0]) < len(holding[1])):
        return f" (did you mean '{holding[0]}'?)"
    return ""


def _in_order(letters: str, text: str) -> bool:
    rest = iter(text)
    return all(letter in rest for letter in letters)


class ParamProblem(ValueError):
    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


@functools.cache
def _hints(params_class: type) -> dict[str, Any]:
    return typing.get_type_hints(params_class)


def fields_of(step_type: type[StepType]) -> tuple[dataclasses.Field[Any], ...]:
    return _fields(step_type.Params)


@functools.cache
def _fields(params_class: type) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(params_class)


@functools.cache
def _fields_by_name(params_class: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in _fields(params_class)}


def build_params(step_type: type[StepType], given: Mapping[str, Any] | None) -> tuple[Any, list[ParamProblem]]:
    """The dataclass instance (None when it cannot be built) and every problem found."""
    given = given or {}
    problems: list[ParamProblem] = []
    fields = _fields_by_name(step_type.Params)
    hints = _hints(step_type.Params)
    values: dict[str, Any] = {}
    for key, value in given.items():
        if key not in fields:
            problems.append(
                ParamProblem(
                    key,
                    f"step type '{step_type.name}' has no parameter '{key}'{did_you_mean(key, fields)}",
                )
            )
            continue
        try:
            values[key] = coerce(value, hints[key])
        except NotAChoice as exc:
            problems.append(ParamProblem(key, f"parameter '{key}' of '{step_type.name}': {exc.explain(key)}"))
        except TypeError as exc:
            problems.append(ParamProblem(key, f"parameter '{key}' of '{step_type.name}': {exc}"))
    for name, f in fields.items():
        if name not in given and f.default is dataclasses.MISSING:
            problems.append(
                ParamProblem(
                    None,
                    f"step type '{step_type.name}' needs parameter '{name}' ({f.metadata.get('doc', '')})",
                )
            )
    if problems:
        return None, problems
    return step_type.Params(**values), []


def coerce(value: Any, hint: Any) -> Any:
    """``value`` as the parameter type ``hint`` (lists become tuples); TypeError when it is not."""
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError(f"expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError(f"expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _finite(value)
        raise TypeError(f"expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise TypeError(f"expected text, got {value!r}")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        if value in args:
            return value
        raise NotAChoice(value, tuple(map(str, args)))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        for member in hint:
            if value == member.value:
                return member
        raise NotAChoice(value, tuple(str(member.value) for member in hint))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list, got {value!r}")
        return tuple(coerce(item, args[0]) for item in value)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return coerce(value, inner)
    raise TypeError(f"unsupported parameter type {hint!r}")


def _finite(value: int | float) -> float:
    """``value`` as a float; TypeError when it has none (too large) or is not finite (a bound that never bounds)."""
    try:
        number = float(value)
    except OverflowError:
        raise TypeError(f"expected a finite number, got an integer of {len(str(abs(value)))} digits") from None
    if not math.isfinite(number):
        raise TypeError(f"expected a finite number, got {number!r}")
    return number


def refs(step_type: type[StepType], params: Any) -> list[tuple[str, str, str]]:
    """(field, kind, name) for every value of ``params`` naming an image or lifecycle state."""
    out: list[tuple[str, str, str]] = []
    for f in fields_of(step_type):
        kind = f.metadata.get("ref")
        value = getattr(params, f.name)
        if kind is None or value is None:
            continue
        for name in value if isinstance(value, tuple) else (value,):
            out.append((f.name, kind, name))
    return out
