"""The step contract, checked over every step type the registry discovers.

Runs against the installed entry points (``pip install -e .``), so a step type that is written but
not registered, or registered under the wrong name, fails here. ``docs/steps.md`` is the spec: its
table lists the types, their parameters, defaults and references.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal

import pytest

from engine.registry import ENTRY_POINT_GROUP, RegistrationError, Registry
from engine.step import Effects, StepType, param

STEPS_DOC = Path(__file__).resolve().parent.parent / "docs" / "steps.md"

SCALAR_TYPES: tuple[type, ...] = (str, int, float, bool)
SEQUENCE_TYPES: tuple[Any, ...] = (tuple[str, ...], tuple[int, ...])

DISCOVERED: list[type[StepType]] = list(Registry.discover())


def _ids(step_type: type[StepType]) -> str:
    return step_type.name


each_step_type = pytest.mark.parametrize("step_type", DISCOVERED, ids=_ids)


@pytest.fixture(scope="module")
def registry() -> Registry:
    """A registry filled from the installed entry points, as the engine builds it."""
    return Registry.discover()


# -- type helpers ---------------------------------------------------------------------------------


def _field_types(step_type: type[StepType]) -> dict[str, Any]:
    """The resolved annotations of a step type's Params (they are strings under __future__)."""
    hints: dict[str, Any] = typing.get_type_hints(step_type.Params)
    return hints


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in (typing.get_args(tp))


def _strip_none(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if len(args) == 1 else None


def _is_string_literal(tp: Any) -> bool:
    values = typing.get_args(tp)
    return typing.get_origin(tp) is Literal and bool(values) and all(isinstance(v, str) for v in values)


def _is_literal_sequence(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis and _is_string_literal(args[0])


def _is_allowed_base(tp: Any) -> bool:
    if tp in SCALAR_TYPES or tp in SEQUENCE_TYPES:
        return True
    return _is_string_literal(tp) or _is_literal_sequence(tp)


def _is_allowed(tp: Any) -> bool:
    if _is_optional(tp):
        return _is_allowed_base(_strip_none(tp))
    return _is_allowed_base(tp)


def _conforms(value: Any, tp: Any) -> bool:
    """Whether ``value`` is a value of the allowed field type ``tp`` (bool is not an int here)."""
    if _is_optional(tp):
        return value is None or _conforms(value, _strip_none(tp))
    if typing.get_origin(tp) is Literal:
        return value in typing.get_args(tp)
    if tp in SEQUENCE_TYPES or _is_literal_sequence(tp):
        item = typing.get_args(tp)[0]
        return isinstance(value, tuple) and all(_conforms(v, item) for v in value)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _example_params(step_type: type[StepType]) -> Any:
    return step_type.Params(**step_type.example)


def _with_sentinel_refs(step_type: type[StepType]) -> Any:
    """The example's params with every image/lifecycle reference set to a distinctive name."""
    hints = _field_types(step_type)
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(step_type.Params):
        ref = f.metadata.get("ref")
        if ref is None:
            continue
        sentinel = f"sentinel_{ref}_{f.name}"
        base = _strip_none(hints[f.name]) if _is_optional(hints[f.name]) else hints[f.name]
        changes[f.name] = (sentinel,) if base in SEQUENCE_TYPES else sentinel
    return dataclasses.replace(_example_params(step_type), **changes)


# -- docs/steps.md --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocParam:
    name: str
    default: str | None
    """The default as written in the table (``true``, ``null``, ```usb```, ``30``), or None."""
    is_list: bool
    ref: str | None


def _doc_table() -> dict[str, list[DocParam]]:
    """The step types of docs/steps.md with their parameters, parsed from its table."""
    table: dict[str, list[DocParam]] = {}
    for line in STEPS_DOC.read_text(encoding="utf-8").split("\n## ")[0].splitlines():
        row = re.match(r"^\|\s*`([a-z0-9_]+\.[a-z0-9_]+)`\s*\|(.*?)\|", line)
        if row is None:
            continue
        params: list[DocParam] = []
        for segment in row.group(2).split(";"):
            segment = segment.strip()
            if not segment or segment == "—":
                continue
            # `name` *ref* (default): description -- or -- `name`: list (default items)
            head = re.match(r"^`(\w+)`\s*(?:\*\w+\*)?\s*(?::\s*(list)\s*)?(?:\(([^)]*)\))?", segment)
            assert head is not None, f"cannot parse parameter {segment!r} of {row.group(1)}"
            marker = re.search(r"\*(image|state)\*", segment)
            ref = {"image": "image", "state": "lifecycle"}[marker.group(1)] if marker else None
            params.append(DocParam(head.group(1), head.group(3), head.group(2) is not None, ref))
        table[row.group(1)] = params
    return table


DOC_TABLE = _doc_table()


def _doc_value(text: str, is_list: bool) -> Any:
    """A default as written in the docs table, as a Python value."""
    if is_list:
        return tuple(item.strip() for item in text.split(","))
    literals: dict[str, Any] = {"true": True, "false": False, "null": None}
    if text in literals:
        return literals[text]
    if text.startswith("`") and text.endswith("`"):
        return text.strip("`")
    return float(text) if "." in text else int(text)


# What docs/steps.md's last column says each type does to the route rules; every other type
# does nothing to them. Built from params, so a reference that does not reach the effects fails.
EXPECTED_EFFECTS: dict[str, Callable[[Any], Effects]] = {
    "device.recover": lambda p: Effects(replaces_storage=True, loads=(p.image,)),
    "flash.gang": lambda p: Effects(replaces_storage=True, loads=(p.image,)),
    "flash.boot_ram": lambda p: Effects(loads_volatile=(p.image,)),
    "boot.wait": lambda p: Effects(clears_volatile=p.reboot),
    "image.sideload": lambda p: Effects(loads=(p.image,)),
    "image.delete": lambda p: Effects(removes=(p.image,)),
    "qa.ready_to_ship": lambda p: Effects(ready_check=True, expects_state=p.state),
    "lifecycle.advance": lambda p: Effects(advances_to=p.to),
    "manual.checklist": lambda p: Effects(asks=p.checks),
    "sample.inspect": lambda p: Effects(asks=p.tests),
}


# -- the contract, per step type ------------------------------------------------------------------


def test_something_is_discovered() -> None:
    """The entry points are installed: discovery finds step types at all."""
    assert DISCOVERED, "no step types discovered; run `pip install -e .`"


@each_step_type
def test_name_matches_entry_point(step_type: type[StepType]) -> None:
    """The step type is registered under its own name, once, from its own module."""
    eps = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.load() is step_type]
    assert [ep.name for ep in eps] == [step_type.name]
    if eps[0].dist is not None and eps[0].dist.name == "floorflow":
        # floorflow's own types follow one module per type, named after the type.
        assert eps[0].module == "steps." + step_type.name.replace(".", "_")


@each_step_type
def test_name_is_dotted(step_type: type[StepType]) -> None:
    """The name is a lower-case dotted name, as recipes write it in `step:`."""
    assert re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+", step_type.name)


@each_step_type
def test_summary_is_one_line(step_type: type[StepType]) -> None:
    """The step type has its own non-empty one-line summary."""
    summary = step_type.__dict__.get("summary")
    assert isinstance(summary, str)
    assert summary.strip()
    assert "\n" not in summary


@each_step_type
def test_params_is_frozen_dataclass(step_type: type[StepType]) -> None:
    """Params is a frozen dataclass: instances cannot be changed once built."""
    params_cls = step_type.Params
    assert dataclasses.is_dataclass(params_cls) and isinstance(params_cls, type)
    params = _example_params(step_type)
    for f in dataclasses.fields(params_cls):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(params, f.name, getattr(params, f.name))


@each_step_type
def test_every_field_is_documented(step_type: type[StepType]) -> None:
    """Every parameter carries a non-empty help sentence from `param()`."""
    for f in dataclasses.fields(step_type.Params):
        doc = f.metadata.get("doc")
        assert isinstance(doc, str) and doc.strip(), f"{step_type.name}.{f.name} has no doc"
        assert doc.rstrip().endswith("."), f"{step_type.name}.{f.name}: doc is not a sentence"


@each_step_type
def test_field_types_are_allowed(step_type: type[StepType]) -> None:
    """Every parameter has a type the schema generator and recipe loader understand."""
    for name, tp in _field_types(step_type).items():
        assert _is_allowed(tp), f"{step_type.name}.{name}: type {tp!r} is not allowed"


@each_step_type
def test_defaults_fit_their_types(step_type: type[StepType]) -> None:
    """Every default is a value of its field's type, and optional fields default to None."""
    hints = _field_types(step_type)
    for f in dataclasses.fields(step_type.Params):
        if f.default is dataclasses.MISSING:
            assert f.default_factory is dataclasses.MISSING, f"{f.name}: use a plain default"
            continue
        assert _conforms(f.default, hints[f.name]), f"{step_type.name}.{f.name}: {f.default!r}"
        if _is_optional(hints[f.name]):
            assert f.default is None, f"{step_type.name}.{f.name}: optional, default not None"


@each_step_type
def test_refs_are_known_kinds_on_names(step_type: type[StepType]) -> None:
    """A `ref` is image or lifecycle, and only on fields that hold names (str or tuple of str)."""
    hints = _field_types(step_type)
    for f in dataclasses.fields(step_type.Params):
        ref = f.metadata.get("ref")
        if ref is None:
            continue
        assert ref in ("image", "lifecycle")
        base = _strip_none(hints[f.name]) if _is_optional(hints[f.name]) else hints[f.name]
        assert base in (str, tuple[str, ...]), f"{step_type.name}.{f.name}: ref on {base!r}"


@each_step_type
def test_example_builds_params(step_type: type[StepType]) -> None:
    """The example is a plain `with:` mapping whose values fit Params and build it."""
    example = step_type.example
    assert type(example) is dict, "example must be a plain dict"
    hints = _field_types(step_type)
    assert set(example) <= set(hints), f"unknown keys {set(example) - set(hints)}"
    for key, value in example.items():
        assert _conforms(value, hints[key]), f"{step_type.name}: example {key}={value!r}"
    assert isinstance(step_type.Params(**example), step_type.Params)


@each_step_type
def test_example_is_minimal(step_type: type[StepType]) -> None:
    """The example gives the required parameters and nothing else, so it stays minimal."""
    required = {
        f.name
        for f in dataclasses.fields(step_type.Params)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    assert set(step_type.example) == required


@each_step_type
def test_effects_returns_effects(step_type: type[StepType]) -> None:
    """effects() of the example params is an Effects value."""
    assert isinstance(step_type.effects(_example_params(step_type)), Effects)


@each_step_type
def test_effects_name_only_referenced_values(step_type: type[StepType]) -> None:
    """Every image or state named in the effects comes from a field the checker verifies."""
    params = _with_sentinel_refs(step_type)
    effects = step_type.effects(params)
    refs: dict[str, set[str]] = {"image": set(), "lifecycle": set()}
    for f in dataclasses.fields(params):
        ref = f.metadata.get("ref")
        value = getattr(params, f.name)
        if ref is not None and value is not None:
            refs[ref].update(value if isinstance(value, tuple) else (value,))
    named_images = set(effects.loads) | set(effects.loads_volatile) | set(effects.removes)
    assert named_images <= refs["image"], f"unreferenced images {named_images - refs['image']}"
    if effects.advances_to is not None:
        assert effects.advances_to in refs["lifecycle"]
    if effects.expects_state is not None:
        assert effects.expects_state in refs["lifecycle"]


@pytest.mark.parametrize("name", sorted(DOC_TABLE))
def test_effects_follow_docs(name: str, registry: Registry) -> None:
    """A documented type does to the route rules what docs/steps.md says, using its params."""
    step_type = registry.get(name)
    params = _with_sentinel_refs(step_type)
    expected = EXPECTED_EFFECTS.get(name, lambda p: Effects())(params)
    assert step_type.effects(params) == expected


def test_boot_wait_clears_volatile_only_on_reboot(registry: Registry) -> None:
    """boot.wait forgets RAM-booted images only when it reboots the unit."""
    boot_wait = registry.get("boot.wait")
    assert boot_wait.effects(boot_wait.Params(reboot=True)).clears_volatile is True
    assert boot_wait.effects(boot_wait.Params(reboot=False)).clears_volatile is False


# -- the registry and the docs --------------------------------------------------------------------


def test_docs_table_is_parsed() -> None:
    """The docs table parses into many types, so the docs tests below are not vacuous."""
    assert len(DOC_TABLE) >= 10
    assert [p.name for p in DOC_TABLE["flash.gang"]] == ["image", "verify", "fixture_slots"]


def test_discover_finds_documented_types(registry: Registry) -> None:
    """Every step type listed in docs/steps.md is installed and discovered."""
    missing = sorted(set(DOC_TABLE) - set(registry.names()))
    assert not missing, f"documented but not discovered: {missing}"


@pytest.mark.parametrize("name", sorted(DOC_TABLE))
def test_params_match_docs(name: str, registry: Registry) -> None:
    """A documented type's parameters, defaults and references are those of the docs table."""
    step_type = registry.get(name)
    fields = {f.name: f for f in dataclasses.fields(step_type.Params)}
    documented = DOC_TABLE[name]
    assert list(fields) == [p.name for p in documented]
    for doc_param in documented:
        f = fields[doc_param.name]
        assert f.metadata.get("ref") == doc_param.ref, f"{name}.{f.name}: ref"
        if doc_param.default is None:
            assert f.default is dataclasses.MISSING, f"{name}.{f.name} should be required"
        else:
            expected = _doc_value(doc_param.default, doc_param.is_list)
            assert f.default == expected, f"{name}.{f.name}: default"


def test_registry_refuses_duplicate_name() -> None:
    """Two different step types cannot share a name in one registry."""

    class First(StepType):
        name = "test.duplicate"
        summary = "First."

        @dataclass(frozen=True)
        class Params:
            pass

    class Second(StepType):
        name = "test.duplicate"
        summary = "Second."

        @dataclass(frozen=True)
        class Params:
            value: int = param("A value.", default=0)

    registry = Registry()
    registry.register(First, origin="first")
    registry.register(First, origin="first")  # the same class again is not a conflict
    with pytest.raises(RegistrationError, match=r"test\.duplicate"):
        registry.register(Second, origin="second")
    assert registry.get("test.duplicate") is First


def test_registry_refuses_duplicate_of_discovered_type() -> None:
    """A plugin cannot take over the name of a step type floorflow already ships."""
    fresh = Registry.discover()
    shipped = fresh.get("flash.gang")
    impostor = type("Impostor", (shipped,), {})
    with pytest.raises(RegistrationError):
        fresh.register(impostor, origin="plugin")
    assert fresh.get("flash.gang") is shipped


def test_two_entry_points_with_one_name_are_refused() -> None:
    """Two packages declaring the same step name are refused at discovery, before either is imported."""
    from importlib.metadata import EntryPoint

    from engine.registry import ENTRY_POINT_GROUP

    registry = Registry()
    registry._declare(EntryPoint("flash.gang", "steps.flash_gang:FlashGang", ENTRY_POINT_GROUP))
    with pytest.raises(RegistrationError, match="registered twice"):
        registry._declare(EntryPoint("flash.gang", "vendor_steps.flash:Gang", ENTRY_POINT_GROUP))


def test_step_types_are_imported_only_when_asked_for() -> None:
    """Discovery imports no step module; get() imports the one asked for and checks its name."""
    registry = Registry.discover()
    assert "flash.gang" in registry and "flash.gang" in registry.names()
    assert not registry._types
    assert registry.get("flash.gang").name == "flash.gang"
    assert list(registry._types) == ["flash.gang"]
