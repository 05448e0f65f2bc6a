"""The route interlock decides with no lock held, and claims only a unit still as it was read (SQLite, PostgreSQL).

``SqlStore.claim`` reads the unit, lets the runner decide on it outside any transaction, then claims it
in a short write transaction only if nothing the decision read has changed; otherwise the runner
decides again on what is there now.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import storekit
from storekit import attempt, claim

from engine.outcome import Outcome
from engine.record import UnitRecord
from engine.store import StoreError, open_store, sqlstore

store_url = storekit.store_url

WAIT_S = 20.0
"""How long a store call made while another decides may take: far longer than it needs unless it is blocked."""


def _elsewhere(work: Callable[[], object]) -> list[object]:
    """Run ``work`` in a thread of its own; what it returned (or raised), once it ended within WAIT_S."""
    done: list[object] = []

    def run() -> None:
        try:
            done.append(work())
        except Exception as exc:
            done.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(WAIT_S)
    assert not thread.is_alive(), "the other station was kept waiting while this one decided"
    return done


def test_another_station_writes_and_claims_while_one_decides(store_url: str) -> None:
    """While one station replays the unit's history to decide, nothing of the store is locked: another station
    adds an attempt, holds a lot and claims that very unit meanwhile; the first then finds it claimed and is
    refused by the route interlock, naming the other station."""
    with open_store(store_url) as first, open_store(store_url) as second:
        decided: list[int] = []

        def add_an_attempt() -> None:
            second.add(attempt("SN1", "boot"))
            second.flush()

        def slow_decide(record: UnitRecord, hold: str | None) -> str | None:
            decided.append(len(record.attempts))
            if len(decided) == 1:
                assert _elsewhere(add_an_attempt) == [None]
                assert _elsewhere(lambda: second.hold_lot("LOT-9", "recall")) == [None]
                assert _elsewhere(lambda: claim(second, "SN1", station="other")) == [None]
            return None

        _, refused = first.claim("SN1", station="this", lot=None, product=None, decide=slow_decide)
    assert decided == [0]  # decided once; the unit was then held by the other station, so never again
    assert refused is not None and refused.startswith("route interlock: the unit is being run at station other")


@pytest.mark.parametrize("change", ["attempt", "hold", "quarantine"])
def test_a_unit_changed_while_deciding_is_decided_again(store_url: str, change: str) -> None:
    """A new attempt of the unit, a hold of its lot or a quarantine committed between the reading and the claim
    is seen: the decision is asked again, on the unit as it now is, and only then is the unit claimed."""
    with open_store(store_url) as first, open_store(store_url) as second:
        seen: list[tuple[int, str | None, str]] = []

        def decide(record: UnitRecord, hold: str | None) -> str | None:
            seen.append((len(record.attempts), hold, record.status))
            if len(seen) == 1:
                if change == "attempt":
                    second.add(attempt("SN1", "boot", Outcome.FAIL))
                    second.flush()
                elif change == "hold":
                    second.hold_lot("LOT-1", "recall 3")
                else:
                    second.add(attempt("SN1", "burn", Outcome.ERROR), quarantine="burn interrupted")
            return None

        if change == "quarantine":  # a quarantine is of a unit the store has a row of
            assert claim(second, "SN1") is None
            second.finish("SN1", "in-route", None)
        record, refused = first.claim("SN1", station="a", lot="LOT-1", product=None, decide=decide)
        assert refused is None
        after = {"attempt": (1, None, "in-route"), "hold": (0, "recall 3", "in-route")}
        assert seen == [(0, None, "in-route"), after.get(change, (1, None, "quarantined"))]
        assert len(record.attempts) == seen[-1][0]
        assert claim(second, "SN1", station="b") is not None  # the first holds it now


def test_a_unit_that_never_stops_changing_is_a_store_error(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A claim whose unit changes every time it is decided gives up after CLAIM_TRIES decisions, saying so, and
    leaves no trace of the unit."""
    monkeypatch.setattr(sqlstore, "CLAIM_TRIES", 3)
    with open_store(store_url) as first, open_store(store_url) as second:
        decisions: list[int] = []

        def decide(record: UnitRecord, hold: str | None) -> str | None:
            decisions.append(len(record.attempts))
            second.add(attempt("SN1", f"s{len(decisions)}"))
            second.flush()
            return None

        with pytest.raises(StoreError, match="unit SN1 changed every time it was about to be claimed"):
            first.claim("SN1", station="a", lot=None, product=None, decide=decide)
        assert decisions == [0, 1, 2]
        assert first.units() == []  # a unit never claimed is not listed, however often it was looked at
        assert claim(second, "SN1") is None  # nothing was claimed
