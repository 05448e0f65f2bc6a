"""The example step types, tested the way floorflow tests its own: the contract, then each step's behaviour.

Run from this folder after `pip install -e .`: `python -m pytest`. The contract needs the package
installed (its entry points are one of the rules); the behaviour tests run each step in a fake context.
"""

from __future__ import annotations

import threading

import pytest
from engine.outcome import Outcome
from engine.testing import ContractCase, FakeDevice, FakeOperator, contract_cases, installed_step_types, run_step

from floorflow_example_steps.cosmetic_grade import CosmeticGrade
from floorflow_example_steps.device_id_check import DeviceIdCheck

GOOD_ID = "AB12" + "0" * 124


@pytest.mark.parametrize("case", contract_cases(installed_step_types("floorflow-example-steps")), ids=str)
def test_contract(case: ContractCase) -> None:
    """Each installed step type of this package holds to each rule of floorflow's step contract."""
    case.check()


def test_both_types_are_installed() -> None:
    """The contract above runs over this package's two step types, not none."""
    assert installed_step_types("floorflow-example-steps") == [CosmeticGrade, DeviceIdCheck]


# -- example.cosmetic_grade ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failing", "grade", "outcome"),
    [
        ({}, "A", Outcome.PASS),
        ({"no_dents": None}, "B", Outcome.PASS),
        ({"no_dents": "deep", "flat": None}, "C", Outcome.FAIL),
    ],
)
def test_grade_follows_the_failed_checks(failing: dict[str, str | None], grade: str, outcome: Outcome) -> None:
    """No failed check grades A, one B, more C; C is worse than the default worst (B), so it fails."""
    operator = FakeOperator(failing)
    run = run_step(CosmeticGrade, {"checks": ["no_dents", "flat", "clean"]}, operator=operator)
    assert run.outcome is outcome
    assert run.measured["cosmetic_grade"] == grade
    assert [check for _, check, _ in operator.asked] == ["no_dents", "flat", "clean"]


def test_a_failed_grade_names_the_checks_and_comments() -> None:
    """The reason of a FAIL names the grade and each failed check with the operator's comment."""
    run = run_step(CosmeticGrade, {"checks": ["a", "b"], "worst": "A"}, operator=FakeOperator({"b": "scuffed"}))
    assert (run.outcome, run.reason) == (Outcome.FAIL, "cosmetic grade B is worse than A: b (scuffed)")


def test_grade_asks_what_its_effects_declare() -> None:
    """effects() declares the checks, so an answers file for the stage is checked against them."""
    assert CosmeticGrade.effects(CosmeticGrade.Params(checks=("x", "y"))).asks == ("x", "y")


# -- example.device_id_check --------------------------------------------------------------------------


class Chip(FakeDevice):
    """A unit whose security chip reports ``device_id``; remembers the stages begun on it."""

    def __init__(self, device_id: str) -> None:
        super().__init__()
        self.device_id = device_id
        self.begun: list[str] = []

    def begin(self, stage: str, cancelled: threading.Event) -> None:
        self.begun.append(stage)

    def read_id(self, kind: str) -> str:
        assert kind == "device-id"
        return self.device_id


def test_a_good_id_passes_and_its_start_is_recorded() -> None:
    """A 128-digit upper-case ID with the product's prefix passes; its first 8 digits are recorded."""
    chip = Chip(GOOD_ID)
    run = run_step(DeviceIdCheck, {"prefix": "ab12"}, device=chip)
    assert run.outcome is Outcome.PASS
    assert run.measured == {"device_id_prefix": "AB120000"}
    assert chip.begun == ["example_device_id_check"]


@pytest.mark.parametrize(
    ("device_id", "params", "reason"),
    [
        (GOOD_ID[:-1], {}, "is not 128 upper-case hexadecimal digits"),
        (GOOD_ID.lower(), {}, "is not 128 upper-case hexadecimal digits"),
        (GOOD_ID, {"prefix": "CD"}, "does not start with CD"),
    ],
)
def test_a_bad_id_fails_with_what_is_wrong(device_id: str, params: dict[str, str], reason: str) -> None:
    """An ID of the wrong length, case or prefix is a FAIL (the unit is bad) saying which."""
    run = run_step(DeviceIdCheck, params, device=Chip(device_id))
    assert run.outcome is Outcome.FAIL
    assert run.reason is not None and run.reason.endswith(reason)


def test_no_device_is_a_station_error() -> None:
    """A station that opened no device for the unit is an ERROR, not a bad unit."""
    run = run_step(DeviceIdCheck, device=None)
    assert run.outcome is Outcome.ERROR
