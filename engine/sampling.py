"""Which units a random-sample stage takes: by rate, or by an ANSI/ASQ Z1.4 single sampling plan.

Z1.4 (normal inspection) maps the lot size and the general inspection level to a code letter, and
the code letter to a sample size; a lot of N units is sampled at n/N. The decision for one unit is
a deterministic hash of lot, unit and stage, so a unit is sampled (or not) the same way on every
station and every rerun.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left

from engine.flow import Sampling

# Upper bound of each lot-size range, and the code letter for levels I, II, III.
_LOT_RANGES = (8, 15, 25, 50, 90, 150, 280, 500, 1200, 3200, 10000, 35000, 150000, 500000)
_LETTERS = {"I": "AABCCDEFGHJKLMN", "II": "ABCDEFGHJKLMNPQ", "III": "BCDEFGHJKLMNPQR"}
_SAMPLE_SIZE = {
    "A": 2, "B": 3, "C": 5, "D": 8, "E": 13, "F": 20, "G": 32, "H": 50,
    "J": 80, "K": 125, "L": 200, "M": 315, "N": 500, "P": 800, "Q": 1250, "R": 2000,
}  # fmt: skip


def code_letter(lot_size: int, level: str = "II") -> str:
    return _LETTERS[level][bisect_left(_LOT_RANGES, lot_size)]


def sample_size(lot_size: int, level: str = "II") -> int:
    """Z1.4 sample size for a lot (never more than the lot itself)."""
    return min(lot_size, _SAMPLE_SIZE[code_letter(lot_size, level)])


def rate_of(sampling: Sampling) -> float:
    if sampling.rate is not None:
        return sampling.rate
    lot_size = sampling.lot_size or 500
    return sample_size(lot_size, sampling.level) / lot_size


def is_sampled(sampling: Sampling, lot: str | None, serial: str, stage: str) -> bool:
    digest = hashlib.sha256(f"{lot}/{serial}/{stage}".encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    return draw < rate_of(sampling)
