"""Which units a random-sample stage takes: by rate, or by an ANSI/ASQ Z1.4 single sampling plan.

Z1.4 (normal inspection) maps the lot size and the general inspection level to a code letter, and
the code letter and the AQL to a single sampling plan (Table II-A): sample size n, acceptance
number Ac and rejection number Re. A lot of N units is sampled at n/N, and the lot is rejected (put
on hold) once Re sampled units failed, unless the stage names its own recall threshold. The
decision for one unit is a deterministic hash of lot, unit and stage, so a unit is sampled (or not)
the same way on every station and every rerun.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from typing import NamedTuple

from engine.flow import Sampling

# Upper bound of each lot-size range, and the code letter for levels I, II, III.
_LOT_RANGES = (8, 15, 25, 50, 90, 150, 280, 500, 1200, 3200, 10000, 35000, 150000, 500000)
_LETTERS = {"I": "AABCCDEFGHJKLMN", "II": "ABCDEFGHJKLMNPQ", "III": "BCDEFGHJKLMNPQR"}
_SAMPLE_SIZE = {
    "A": 2, "B": 3, "C": 5, "D": 8, "E": 13, "F": 20, "G": 32, "H": 50,
    "J": 80, "K": 125, "L": 200, "M": 315, "N": 500, "P": 800, "Q": 1250, "R": 2000,
}  # fmt: skip


_LETTER_ORDER = "ABCDEFGHJKLMNPQR"
AQLS = (
    0.010, 0.015, 0.025, 0.040, 0.065, 0.10, 0.15, 0.25, 0.40, 0.65, 1.0, 1.5, 2.5, 4.0, 6.5,
    10.0, 15.0, 25.0, 40.0, 65.0, 100.0, 150.0, 250.0, 400.0, 650.0, 1000.0,
)  # fmt: skip
"""The AQL columns of Table II-A (percent nonconforming, or nonconformities per hundred units)."""
_AC_RE = ((0, 1), (1, 2), (2, 3), (3, 4), (5, 6), (7, 8), (10, 11), (14, 15), (21, 22), (30, 31), (44, 45))
"""Table II-A's plans along a diagonal (one code letter down equals one AQL column right). Between
the first plan (0/1) and the second (1/2) the diagonal holds two arrows: up, then down."""
_FIRST = 14
"""Letter index + AQL index of the first 0/1 plan (A at 6.5, E at 1.0, Q at 0.010)."""


class Plan(NamedTuple):
    letter: str
    sample_size: int
    accept: int
    """Ac: the lot is accepted with this many failed sampled units or fewer."""
    reject: int
    """Re: the lot is rejected once this many sampled units failed."""


def single_plan(lot_size: int, aql: float, level: str = "II") -> Plan:
    """Z1.4 Table II-A, single sampling, normal inspection, following the arrows.

    An arrow sends the plan to another code letter, whose sample size then applies. Where an arrow
    points past the table's first or last row, the nearest plan of the AQL's column is used.
    """
    if aql not in AQLS:
        raise ValueError(f"AQL {aql} is not a Z1.4 value; the values are {', '.join(f'{a:g}' for a in AQLS)}")
    row, column = _LETTER_ORDER.index(code_letter(lot_size, level)), AQLS.index(aql)
    last = len(_LETTER_ORDER) - 1
    while True:
        step = row + column - _FIRST  # 0: the first plan, 1: an up arrow, 2: a down arrow, 3: the second plan
        if step < 0 or (step == 2 and row < last) or (step == 1 and row == 0):
            row += 1  # a down arrow (or the first row's up arrow: there is nothing above)
        elif step == 1 or step > len(_AC_RE) + 1:
            row -= 1  # an up arrow
        else:
            # The last row's down arrow has nothing below: the column's next plan, 1/2, applies.
            accept, reject = _AC_RE[0 if step == 0 else max(step - 2, 1)]
            break
    letter = _LETTER_ORDER[row]
    return Plan(letter, min(lot_size, _SAMPLE_SIZE[letter]), accept, reject)


def code_letter(lot_size: int, level: str = "II") -> str:
    return _LETTERS[level][bisect_left(_LOT_RANGES, lot_size)]


def sample_size(lot_size: int, level: str = "II") -> int:
    """Z1.4 sample size for a lot (never more than the lot itself)."""
    return min(lot_size, _SAMPLE_SIZE[code_letter(lot_size, level)])


DEFAULT_LOT_SIZE = 500


def plan_of(sampling: Sampling) -> Plan | None:
    """The stage's Z1.4 plan; None when it samples by rate."""
    if sampling.rate is not None or sampling.aql is None:
        return None
    return single_plan(sampling.lot_size or DEFAULT_LOT_SIZE, sampling.aql, sampling.level)


def rate_of(sampling: Sampling) -> float:
    if sampling.rate is not None:
        return sampling.rate
    lot_size = sampling.lot_size or DEFAULT_LOT_SIZE
    plan = plan_of(sampling)
    return (plan.sample_size if plan is not None else sample_size(lot_size, sampling.level)) / lot_size


def recall_threshold(sampling: Sampling) -> int | None:
    """Failed sampled units that put the lot on hold: the stage's own number, else the plan's Re."""
    if sampling.recall_threshold is not None:
        return sampling.recall_threshold
    plan = plan_of(sampling)
    return None if plan is None else plan.reject


def is_sampled(sampling: Sampling, lot: str | None, serial: str, stage: str) -> bool:
    return sample_draw(lot, serial, stage) < rate_of(sampling)


def sample_draw(lot: str | None, serial: str, stage: str) -> float:
    """The unit's draw in [0, 1) for a sampled stage: sampled when below the stage's rate."""
    digest = hashlib.sha256(f"{lot}/{serial}/{stage}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
