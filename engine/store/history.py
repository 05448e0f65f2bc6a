"""The runner's view of the store: where a unit's record lives between runs, and the lots' holds.

A unit's state (stages passed, lifecycle, irreversible stages entered) is derived from its
recorded attempts, never kept in the runner. The one History is the SQL store
(``engine.store.SqlStore``: a SQLite file, PostgreSQL, or SQLite in memory, ``sqlite://``, where
nothing is to last); the JSON files of ``--json-out`` are written by a subscriber to the runner's
events (``engine.report.mirror``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from engine.record import Attempt, UnitRecord

Decide = Callable[[UnitRecord, "str | None"], "str | None"]
"""Given the unit's record and its lot's hold, why its stage may not run here (None: it may)."""


class History(Protocol):
    def unit(self, serial: str) -> UnitRecord:
        """The unit's record (an empty one for a unit never seen)."""
        ...

    def claim(
        self,
        serial: str,
        *,
        station: str | None,
        lot: str | None,
        product: str | None,
        decide: Decide,
        socket: int = 0,
        operator: str | None = None,
    ) -> tuple[UnitRecord, str | None]:
        """The route interlock: ``decide`` whether the unit may run here (at ``socket``, run by ``operator``);
        claim it if so.

        ``decide`` is called with no lock held, on the unit's record as read, perhaps more than once:
        the claim is taken only if nothing it was given has changed since, else it decides again on
        what is there now. A unit another station holds is refused without deciding. Returns the
        unit's record and the refusal (None: claimed, no other station may run it until ``finish``).
        """
        ...

    def intend(self, attempt: Attempt) -> int:
        """Journal that an irreversible step is about to run (``attempt`` as it starts); return its id.

        Returns only once the intent would survive a crash or power loss.
        """
        ...

    def add(self, attempt: Attempt, *, intent: int | None = None, quarantine: str | None = None) -> None:
        """Record an attempt; with ``intent``, its irreversible step's outcome, and ``quarantine`` the unit."""
        ...

    def finish(
        self, serial: str, status: str, reason: str | None, lifecycle: str | None = None, socket: int = 0
    ) -> None:
        """The unit leaves the station (its ``socket``): release its claim, record where its route stands.

        Returns only once this, and every attempt added before it, would survive a crash or power loss.
        """
        ...

    def lot_hold(self, lot: str) -> str | None:
        """Why the lot is on hold, or None."""
        ...

    def hold_lot(self, lot: str, reason: str) -> None:
        """Put the lot on hold (a first hold is kept); returns once the hold would survive a crash or power loss."""
        ...

    def lot_failed(self, lot: str, stage: str) -> int:
        """Count one more sampled unit of the lot failing ``stage``; return the count so far."""
        ...

    def note_decision(self, by: str, action: str, subject: str, reason: str | None) -> None:
        """Keep a person's decision in the audit log; returns once it would survive a crash or power loss."""
        ...
