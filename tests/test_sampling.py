"""Random sample stages take units by rate or by the ANSI/ASQ Z1.4 single sampling plan."""

from __future__ import annotations

import pytest

from engine.flow import Sampling
from engine.sampling import code_letter, is_sampled, rate_of, sample_size


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
