"""The step contract as checks: what every step type, shipped or third-party, must hold to.

Each rule is a sentence and a check; ``contract_cases`` pairs every rule with every step type given,
and a case's ``check()`` raises ``ContractError`` (an AssertionError, so test runners show it as a
failed assertion) naming the type and what is wrong. ``engine.testing`` offers these to step authors;
floorflow's own contract test runs the same cases over every installed step type.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Literal

from engine.registry import ENTRY_POINT_GROUP
from engine.step import Effects, StepType

SCALAR_TYPES: tuple[type, ...] = (str, int, float, bool)
SEQUENCE_TYPES: tuple[Any, ...] = (tuple[str, ...], tuple[int, ...])
NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


class ContractError(AssertionError):
    """A step type breaks a rule of the step contract."""


@dataclass(frozen=True)
class ContractRule:
    name: str
    says: str
    """The rule in one sentence: what a passing check proves."""
    check: Callable[[type[StepType]], None]


@dataclass(frozen=True)
class ContractCase:
    """One rule applied to one step type: ``check()`` raises ContractError when the type breaks it."""

    step_type: type[StepType]
    rule: ContractRule

    def check(self) -> None:
        self.rule.check(self.step_type)

    def __str__(self) -> str:
        return f"{getattr(self.step_type, 'name', self.step_type.__name__)}:{self.rule.name}"


def _require(holds: bool, step_type: type[StepType], message: str) -> None:
    if not holds:
        raise ContractError(f"step type '{getattr(step_type, 'name', step_type.__name__)}': {message}")


# -- the types a parameter may have -------------------------------------------------------------------


def field_types(step_type: type[StepType]) -> dict[str, Any]:
    """The resolved annotations of a step type's Params (they are strings under __future__)."""
    hints: dict[str, Any] = typing.get_type_hints(step_type.Params)
    return hints


def is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def strip_none(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if len(args) == 1 else None


def _is_string_literal(tp: Any) -> bool:
    values = typing.get_args(tp)
    return typing.get_origin(tp) is Literal and bool(values) and all(isinstance(v, str) for v in values)


def _is_literal_sequence(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis and _is_string_literal(args[0])


def is_allowed(tp: Any) -> bool:
    """Whether the schema generator and the recipe loader understand a parameter of type ``tp``."""
    base = strip_none(tp) if is_optional(tp) else tp
    return base in SCALAR_TYPES or base in SEQUENCE_TYPES or _is_string_literal(base) or _is_literal_sequence(base)


def conforms(value: Any, tp: Any) -> bool:
    """Whether ``value`` is a value of the allowed field type ``tp`` (bool is not an int here)."""
    if is_optional(tp):
        return value is None or conforms(value, strip_none(tp))
    if typing.get_origin(tp) is Literal:
        return value in typing.get_args(tp)
    if tp in SEQUENCE_TYPES or _is_literal_sequence(tp):
        item = typing.get_args(tp)[0]
        return isinstance(value, tuple) and all(conforms(v, item) for v in value)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def sentinel_params(step_type: type[StepType]) -> Any:
    """The example's Params with every image/lifecycle reference set to a distinctive name
    (``sentinel_<ref>_<field>``), so a test sees which fields reach ``effects()``."""
    hints = field_types(step_type)
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(step_type.Params):
        ref = f.metadata.get("ref")
        if ref is not None:
            base = strip_none(hints[f.name]) if is_optional(hints[f.name]) else hints[f.name]
            sentinel = f"sentinel_{ref}_{f.name}"
            changes[f.name] = (sentinel,) if base in SEQUENCE_TYPES else sentinel
    return dataclasses.replace(step_type.Params(**step_type.example), **changes)


# -- the rules --------------------------------------------------------------------------------------------


def _name(t: type[StepType]) -> None:
    name = getattr(t, "name", None)
    _require(isinstance(name, str) and NAME.fullmatch(name) is not None, t, f"name {name!r} is not a dotted name")


def _summary(t: type[StepType]) -> None:
    summary = t.__dict__.get("summary")
    one_line = isinstance(summary, str) and bool(summary.strip()) and "\n" not in summary
    _require(one_line, t, f"needs a one-line summary of its own, not {summary!r}")


def _frozen(t: type[StepType]) -> None:
    params = getattr(t, "Params", None)
    _require(isinstance(params, type) and dataclasses.is_dataclass(params), t, "Params is not a dataclass")
    frozen = getattr(getattr(params, "__dataclass_params__", None), "frozen", False)
    _require(frozen, t, "Params is not frozen: @dataclass(frozen=True)")


def _documented(t: type[StepType]) -> None:
    for f in dataclasses.fields(t.Params):
        doc = f.metadata.get("doc")
        _require(isinstance(doc, str) and bool(doc.strip()), t, f"parameter '{f.name}' has no help: use param()")
        _require(str(doc).rstrip().endswith("."), t, f"parameter '{f.name}': its help is not a sentence")


def _types(t: type[StepType]) -> None:
    for name, tp in field_types(t).items():
        _require(is_allowed(tp), t, f"parameter '{name}' has type {tp!r}: use str, int, float, bool, a Literal, "
                 "a tuple of them, or one of those | None")  # fmt: skip


def _defaults(t: type[StepType]) -> None:
    hints = field_types(t)
    for f in dataclasses.fields(t.Params):
        if f.default is dataclasses.MISSING:
            _require(f.default_factory is dataclasses.MISSING, t, f"parameter '{f.name}': use a plain default")
            continue
        _require(conforms(f.default, hints[f.name]), t, f"parameter '{f.name}': default {f.default!r} is not its type")
        if is_optional(hints[f.name]):
            _require(f.default is None, t, f"parameter '{f.name}' is optional, so its default is None")


def _refs(t: type[StepType]) -> None:
    hints = field_types(t)
    for f in dataclasses.fields(t.Params):
        ref = f.metadata.get("ref")
        if ref is None:
            continue
        _require(ref in ("image", "lifecycle"), t, f"parameter '{f.name}': ref is image or lifecycle, not {ref!r}")
        base = strip_none(hints[f.name]) if is_optional(hints[f.name]) else hints[f.name]
        _require(base in (str, tuple[str, ...]), t, f"parameter '{f.name}': a ref holds names, not {base!r}")


def _example(t: type[StepType]) -> None:
    example = t.example
    _require(type(example) is dict, t, "example is a plain dict, as a recipe's with: would be")
    hints = field_types(t)
    unknown = sorted(set(example) - set(hints))
    _require(not unknown, t, f"example names unknown parameters {unknown}")
    for key, value in example.items():
        _require(conforms(value, hints[key]), t, f"example {key}={value!r} is not of its parameter's type")
    required = {
        f.name
        for f in dataclasses.fields(t.Params)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    _require(set(example) == required, t, f"example gives exactly the required parameters {sorted(required)}")
    t.Params(**example)


def _effects(t: type[StepType]) -> None:
    effects = t.effects(sentinel_params(t))
    _require(isinstance(effects, Effects), t, f"effects() returns {type(effects).__name__}, not Effects")
    refs: dict[str, set[str]] = {"image": set(), "lifecycle": set()}
    params = sentinel_params(t)
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if f.metadata.get("ref") is not None and value is not None:
            refs[f.metadata["ref"]].update(value if isinstance(value, tuple) else (value,))
    images = set(effects.loads) | set(effects.loads_volatile) | set(effects.removes)
    _require(images <= refs["image"], t, f"effects name images {sorted(images - refs['image'])} no image ref gives")
    for state in (effects.advances_to, effects.expects_state):
        _require(state is None or state in refs["lifecycle"], t, f"effects name state {state!r} no lifecycle ref gives")


def _typical(t: type[StepType]) -> None:
    problem = t.typical.problem() if t.typical is not None else None
    _require(problem is None, t, str(problem))


def _entry_point(t: type[StepType]) -> None:
    names = [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.load() is t]
    _require(names == [t.name], t, f"is declared in the '{ENTRY_POINT_GROUP}' entry points as {names}, "
             f"not once as '{t.name}' (is the package installed?)")  # fmt: skip


RULES: tuple[ContractRule, ...] = (
    ContractRule("name", "The name is a lower-case dotted name, as recipes write it in `step:`.", _name),
    ContractRule("summary", "The step type has its own non-empty one-line summary.", _summary),
    ContractRule("params-frozen", "Params is a frozen dataclass: its values cannot change once built.", _frozen),
    ContractRule("params-documented", "Every parameter carries a help sentence from `param()`.", _documented),
    ContractRule("params-types", "Every parameter has a type the schema and the recipe loader understand.", _types),
    ContractRule("params-defaults", "Every default is of its type; an optional parameter defaults to None.", _defaults),
    ContractRule("params-refs", "A `ref` is image or lifecycle, on a parameter that holds names.", _refs),
    ContractRule("example", "The example is a minimal `with:`: the required parameters, building Params.", _example),
    ContractRule("effects", "effects() is an Effects naming only images and states its refs give.", _effects),
    ContractRule("typical", "Typical figures, when declared, are usable (a chance, times of 0 or more).", _typical),
)
INSTALLED_RULE = ContractRule(
    "entry-point", "The step type is declared once, under its own name, in the floorflow.steps entry points.",
    _entry_point,
)  # fmt: skip


def contract_cases(step_types: Iterable[type[StepType]], *, installed: bool = True) -> list[ContractCase]:
    """Every rule for every step type, type by type. ``installed`` adds the entry-point rule (the
    package declaring the types must be installed, e.g. ``pip install -e .``)."""
    rules = (*RULES, INSTALLED_RULE) if installed else RULES
    return [ContractCase(step_type, rule) for step_type in step_types for rule in rules]


def check_contract(step_types: Iterable[type[StepType]], *, installed: bool = True) -> None:
    """Check every rule for every type; raise one ContractError listing each rule broken."""
    broken = []
    for case in contract_cases(step_types, installed=installed):
        try:
            case.check()
        except Exception as exc:  # a rule that cannot even be checked is broken too
            broken.append(f"{case}: {exc}")
    if broken:
        raise ContractError("\n".join(broken))
