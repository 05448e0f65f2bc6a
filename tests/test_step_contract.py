"""The step contract, checked over every step type the registry discovers.

Runs against the installed entry points (``pip install -e .``), so a step type that is written but
not registered, or registered under the wrong name, fails here. The rules are ``engine.testing``'s
``contract_cases``, the ones a third-party step package runs over its own types. ``docs/steps.md`` is
the spec of floorflow's own: its table lists the types, their parameters, defaults and references.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from engine.registry import ENTRY_POINT_GROUP, RegistrationError, Registry
from engine.step import Duration, Effects, StepType, Typical, param
from engine.testing import ContractCase, contract_cases, sentinel_params

STEPS_DOC = Path(__file__).resolve().parent.parent / "docs" / "steps.md"

DISCOVERED: list[type[StepType]] = list(Registry.discover())


@pytest.fixture(scope="module")
def registry() -> Registry:
    """A registry filled from the installed entry points, as the engine builds it."""
    return Registry.discover()


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
    "device.recover": lambda p: Effects(replaces_storage=True, installs_os=True),
    "flash.gang": lambda p: Effects(replaces_storage=True, loads=(p.image,), installs_os=True),
    "flash.boot_ram": lambda p: Effects(loads_volatile=(p.image,)),
    "boot.wait": lambda p: Effects(clears_volatile=p.reboot, boots=True),
    "image.sideload": lambda p: Effects(loads=(p.image,), needs_os=True),
    "image.delete": lambda p: Effects(removes=(p.image,)),
    "qa.ready_to_ship": lambda p: Effects(ready_check=True, expects_state=p.state, expects_images=p.images),
    "lifecycle.advance": lambda p: Effects(advances_to=p.to),
    "manual.checklist": lambda p: Effects(asks=p.checks, talks_to_unit=False),
    "sample.inspect": lambda p: Effects(asks=p.tests, talks_to_unit=False),
    "device.connect": lambda p: Effects(connects=True),
    "rf.measure": lambda p: Effects(needs_capabilities=("rf-test-mode",)),
    "rf.calibrate": lambda p: Effects(needs_capabilities=("rf-test-mode",)),
    "rf.verify_config": lambda p: Effects(needs_capabilities=("rf-test-mode",)),
    "uart.functional": lambda p: Effects(needs_image_type="test"),
}


# -- the contract, per step type ------------------------------------------------------------------


def test_something_is_discovered() -> None:
    """The entry points are installed: discovery finds step types at all."""
    assert DISCOVERED, "no step types discovered; run `pip install -e .`"


@pytest.mark.parametrize("case", contract_cases(DISCOVERED), ids=str)
def test_contract(case: ContractCase) -> None:
    """The step type holds to one rule of the step contract (engine.testing), as a third-party type must."""
    case.check()


@pytest.mark.parametrize("step_type", DISCOVERED, ids=lambda t: t.name)
def test_floorflow_types_live_one_per_module(step_type: type[StepType]) -> None:
    """floorflow's own types follow one module per type, named after the type."""
    eps = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == step_type.name]
    if eps[0].dist is not None and eps[0].dist.name == "floorflow":
        assert eps[0].module == "steps." + step_type.name.replace(".", "_")


@pytest.mark.parametrize("name", sorted(DOC_TABLE))
def test_effects_follow_docs(name: str, registry: Registry) -> None:
    """A documented type does to the route rules what docs/steps.md says, using its params."""
    step_type = registry.get(name)
    params = sentinel_params(step_type)
    expected = EXPECTED_EFFECTS.get(name, lambda p: Effects())(params)
    assert step_type.effects(params) == expected


def _typical_table() -> dict[str, Typical]:
    """The typical figures docs/steps.md lists per step type."""
    section = STEPS_DOC.read_text(encoding="utf-8").split("\n## Typical time and failure chance\n")[1]
    kinds = {"fixed": Duration.fixed, "triangular": Duration.triangular, "lognormal": Duration.lognormal}
    table: dict[str, Typical] = {}
    for line in section.split("\n## ")[0].splitlines():
        row = re.match(r"^\| `([a-z0-9_.]+)` \| (\w+) ([^|]+?) \| ([0-9.]+) \| (yes)? ?\|$", line)
        if row is not None:
            figures = [float(x) for x in re.findall(r"[0-9.]+", row.group(3))]
            time = kinds[row.group(2)](*figures)
            table[row.group(1)] = Typical(time, fail=float(row.group(4)), operator=row.group(5) is not None)
    return table


def test_typical_figures_follow_docs(registry: Registry) -> None:
    """docs/steps.md lists each shipped type's typical time, failure chance and operator as the type declares them."""
    table = _typical_table()
    assert set(table) == set(DOC_TABLE)
    for name, documented in table.items():
        assert registry.get(name).typical == documented, name


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
