"""Step parameters with a closed set of values: an enum in the schema, a did-you-mean in validate."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from engine.recipe.check import check_recipe
from engine.recipe.params import build_params, suggest
from engine.recipe.schemagen import type_schema
from engine.registry import Registry
from engine.step import StepType
from steps.common.radio import BAND_NAMES, band


class _Speed(enum.Enum):
    SLOW = "slow"
    FAST = "fast"


@dataclass(frozen=True)
class _SpeedParams:
    speed: _Speed = field(default=_Speed.SLOW, metadata={"doc": "How fast."})


class _SpeedStep(StepType):
    name = "probe.speed"
    summary = "A step type with an Enum parameter."
    Params = _SpeedParams


def test_an_enum_typed_parameter_is_an_enum_in_the_schema_and_checked() -> None:
    """An Enum-typed parameter becomes a schema enum of its values; a value becomes its member, and
    a value outside it is refused with a did-you-mean."""
    assert type_schema(_Speed) == {"enum": ["slow", "fast"]}
    params, problems = build_params(_SpeedStep, {"speed": "fast"})
    assert problems == [] and params.speed is _Speed.FAST
    params, problems = build_params(_SpeedStep, {"speed": "fsat"})
    assert params is None
    assert [p.message for p in problems] == [
        "parameter 'speed' of 'probe.speed': unknown speed 'fsat' (did you mean 'fast'?); one of slow, fast"
    ]


def test_every_band_the_rf_steps_take_is_one_the_tester_knows() -> None:
    """The band enum and the radio tester's profiles agree: each band of the enum has a profile."""
    assert all(band(name).name == name for name in BAND_NAMES)
    measure = Registry.discover().get("rf.measure")
    assert build_params(measure, {"band": "lte-b3", "channels": [1]})[1] == []


def test_an_abbreviation_is_suggested_by_its_letters_in_order() -> None:
    """`ble` suggests bluetooth and `wifi5` wifi-5g (no near miss by spelling); nothing for `zz`."""
    assert suggest("ble", BAND_NAMES) == " (did you mean 'bluetooth'?)"
    assert suggest("wifi5", BAND_NAMES) == " (did you mean 'wifi-5g'?)"
    assert suggest("zz", BAND_NAMES) == ""


def test_a_band_through_params_is_checked_when_the_recipe_is_compiled(tmp_path: Path) -> None:
    """A band given through ${params.…} passes the schema (a reference) and is refused when the
    stage's parameters are built, with the same message."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "recipe: r\nversion: 1\nparams: {radio: ble}\nstages:\n"
        '  - {id: bt, step: rf.measure, with: {band: "${params.radio}", channels: [0]}}\n'
    )
    _flow, problems = check_recipe(recipe, Registry.discover())
    assert [(d.code, d.pos.line) for d in problems] == [("step-param", 5)]
    assert "unknown band 'ble' (did you mean 'bluetooth'?)" in problems[0].message
