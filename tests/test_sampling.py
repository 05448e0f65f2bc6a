"""Random sample stages take units by rate or by the ANSI/ASQ Z1.4 single sampling plan."""

from __future__ import annotations

import pytest

from engine.flow import Sampling
from engine.sampling import code_letter, is_sampled, rate_of, recall_threshold, sample_size, single_plan


@pytest.mark.parametrize(
    ("lot", "level", "letter", "size"),
    [
        (8, "II", "A", 2),
        (9, "II", "B", 3),
        (500, "II", "H", 50),
        (501, "II", "J", 80),
        (1200, "II", "J", 80),
        (10000, "II", "L", 200),
        (20, "I", "B", 3),
        (150, "I", "D", 8),
        (600000, "III", "R", 2000),
        (35000, "III", "N", 500),
    ],
)
def test_z14_code_letters_and_sample_sizes(lot: int, level: str, letter: str, size: int) -> None:
    """Lot size and inspection level give Z1.4's code letter and sample size (normal inspection)."""
    assert code_letter(lot, level) == letter
    assert sample_size(lot, level) == size


def test_sample_never_exceeds_the_lot() -> None:
    """A lot smaller than its code letter's sample is inspected whole, not more than whole."""
    assert sample_size(2, "III") == 2


def test_draw_is_the_same_every_time_and_follows_the_rate() -> None:
    """A unit is drawn the same way on every call, and about rate x units are drawn."""
    plan = Sampling(rate=0.1)
    first = [is_sampled(plan, "LOT1", f"SN{i:05d}", "sample_test") for i in range(5000)]
    again = [is_sampled(plan, "LOT1", f"SN{i:05d}", "sample_test") for i in range(5000)]
    assert first == again
    assert 400 < sum(first) < 600


def test_aql_plan_samples_at_n_over_lot_size() -> None:
    """An AQL plan for a lot of 500 at level II samples 50 of 500 units: a rate of 0.1."""
    assert rate_of(Sampling(aql=1.0, level="II", lot_size=500)) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("lot", "aql", "level", "plan"),
    [
        (1000, 1.0, "II", ("J", 80, 2, 3)),
        (1201, 1.0, "II", ("K", 125, 3, 4)),
        (10001, 0.65, "II", ("M", 315, 5, 6)),
        (500, 2.5, "II", ("H", 50, 3, 4)),
        (1000, 4.0, "II", ("J", 80, 7, 8)),
        (90, 1.0, "II", ("E", 13, 0, 1)),
        # Arrows: E at 1.5 points up to D (8 units, 0/1); F at 1.5 points down to G (32 units, 1/2).
        (90, 1.5, "II", ("D", 8, 0, 1)),
        (150, 1.5, "II", ("G", 32, 1, 2)),
        # Q at 0.015 points up to P; a small lot at a low AQL points down to the first 0/1 plan.
        (600000, 0.015, "II", ("P", 800, 0, 1)),
        (50, 0.065, "II", ("L", 50, 0, 1)),
        (3, 1000.0, "II", ("A", 2, 30, 31)),
    ],
)
def test_z14_single_sampling_plans(lot: int, aql: float, level: str, plan: tuple[str, int, int, int]) -> None:
    """Table II-A (normal inspection): the code letter the arrows lead to, n, Ac and Re."""
    assert tuple(single_plan(lot, aql, level)) == plan


def test_aql_plan_sets_the_rate_and_the_rejection_number() -> None:
    """An AQL stage samples n/N of the lot and holds it at Re failures unless told otherwise."""
    by_plan = Sampling(aql=1.0, lot_size=1000)
    assert rate_of(by_plan) == 80 / 1000
    assert recall_threshold(by_plan) == 3
    assert recall_threshold(Sampling(aql=1.0, lot_size=1000, recall_threshold=1)) == 1
    assert recall_threshold(Sampling(rate=0.1)) is None


def test_unknown_aql_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not a Z1\.4 value"):
        single_plan(100, 3.0)
