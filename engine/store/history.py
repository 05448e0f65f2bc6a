"""Where a unit's record lives between runs, and the lots' holds.

A unit's state (stages passed, lifecycle, irreversible stages entered) is derived from its
recorded attempts, never kept in the runner. The durable store (``engine.store``, SQLite or
PostgreSQL) is the History of a station; ``MemoryHistory`` keeps records in the process;
``JsonDirHistory`` keeps one JSON file per unit in a directory, read back on the next run, written
whole and atomically (a new file renamed over the old one) so a crash never leaves a half-written
record. ``JsonMirror`` writes those files (``--json-out DIR``) next to any other History.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from engine.files import write_atomically
from engine.record import Attempt, UnitRecord

QUARANTINED = "quarantined"
_NAME_MAX = 200
"""The longest unit file name before ``.json`` (file systems allow 255 bytes)."""

Decide = Callable[[UnitRecord, "str | None"], "str | None"]
"""Given the unit's record and its lot's hold, why its stage may not run here (None: it may)."""


class History(Protocol):
    def unit(self, serial: str) -> UnitRecord:
        """The unit's record (an empty one for a unit never seen)."""
        ...

    def claim(
        self, serial: str, *, station: str | None, lot: str | None, product: str | None, decide: Decide
    ) -> tuple[UnitRecord, str | None]:
        """The route interlock: with the unit locked, ``decide`` whether it may run here; claim it if so.

        Returns the unit's record and the refusal (None: claimed, no other station may run it until
        ``finish``).
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

    def finish(self, serial: str, status: str, reason: str | None, lifecycle: str | None = None) -> None:
        """The unit leaves the station: release its claim, record where its route stands.

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


class MemoryHistory:
    def __init__(self) -> None:
        self._units: dict[str, UnitRecord] = {}
        self._holds: dict[str, str] = {}
        self._failures: dict[str, dict[str, int]] = {}
        self._claimed: set[str] = set()
        self._intents: dict[int, Attempt] = {}
        self._lock = threading.Lock()

    def unit(self, serial: str) -> UnitRecord:
        with self._lock:
            record = self._units.get(serial)
            if record is None:
                record = self._units[serial] = self._load(serial)
            return record

    def _load(self, serial: str) -> UnitRecord:
        return UnitRecord(serial)

    def claim(
        self, serial: str, *, station: str | None, lot: str | None, product: str | None, decide: Decide
    ) -> tuple[UnitRecord, str | None]:
        record = self.unit(serial)
        with self._lock:
            if serial in self._claimed:
                return record, "route interlock: the unit is being run in another slot"
            unit_lot = lot if lot is not None else record.lot
            refused = decide(record, self._holds.get(unit_lot) if unit_lot is not None else None)
            if refused is None:
                self._claimed.add(serial)
                record.lot = unit_lot
                record.product = product or record.product
            return record, refused

    def intend(self, attempt: Attempt) -> int:
        with self._lock:
            ident = len(self._intents) + 1
            self._intents[ident] = attempt
            return ident

    def add(self, attempt: Attempt, *, intent: int | None = None, quarantine: str | None = None) -> None:
        with self._lock:
            record = self._units.get(attempt.serial)
            if record is None:
                record = self._units[attempt.serial] = self._load(attempt.serial)
            record.attempts.append(attempt)
            if attempt.lot is not None:
                record.lot = attempt.lot
            self._intents.pop(intent or 0, None)
            if quarantine is not None:
                record.status, record.reason = QUARANTINED, quarantine

    def finish(self, serial: str, status: str, reason: str | None, lifecycle: str | None = None) -> None:
        record = self.unit(serial)
        with self._lock:
            self._claimed.discard(serial)
            if record.status != QUARANTINED:
                record.status, record.reason = status, reason
            record.lifecycle = lifecycle or record.lifecycle

    def lot_hold(self, lot: str) -> str | None:
        with self._lock:
            return self._holds.get(lot)

    def hold_lot(self, lot: str, reason: str) -> None:
        with self._lock:
            self._holds.setdefault(lot, reason)

    def lot_failed(self, lot: str, stage: str) -> int:
        with self._lock:
            counts = self._failures.setdefault(lot, {})
            counts[stage] = counts.get(stage, 0) + 1
            self._saved_lots()
            return counts[stage]

    def _saved_lots(self) -> None:
        """Keep the lots' holds and failure counts (nothing to do in memory)."""


class JsonDirHistory(MemoryHistory):
    """One ``SERIAL.json`` per unit and ``lots.json`` for holds, in one directory."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        lots = directory / "lots.json"
        if lots.exists():
            saved = json.loads(lots.read_text())
            self._holds.update(saved.get("holds", {}))
            self._failures.update(saved.get("failures", {}))

    def path_of(self, serial: str) -> Path:
        # Percent-encoding keeps distinct serials in distinct files ("SN/1" and "SN_1"); a name too long
        # for the file system (non-ASCII serials encode to 3 to 12 characters each) is cut and told
        # apart by a hash of the serial.
        name = quote(serial, safe="-_")
        if len(name) > _NAME_MAX:
            name = f"{name[: _NAME_MAX - 17]}~{hashlib.sha256(serial.encode()).hexdigest()[:16]}"
        return self.directory / f"{name}.json"

    def _load(self, serial: str) -> UnitRecord:
        path = self.path_of(serial)
        if not path.exists():
            return UnitRecord(serial)
        return UnitRecord.from_json(json.loads(path.read_text()))

    def add(self, attempt: Attempt, *, intent: int | None = None, quarantine: str | None = None) -> None:
        """Record the attempt and rewrite the unit's file, so a crash loses no finished attempt."""
        super().add(attempt, intent=intent, quarantine=quarantine)
        record = self.unit(attempt.serial)
        with self._lock:
            _write_atomically(self.path_of(attempt.serial), record.as_json(), sync=False)

    def finish(self, serial: str, status: str, reason: str | None, lifecycle: str | None = None) -> None:
        super().finish(serial, status, reason, lifecycle)
        record = self.unit(serial)
        with self._lock:
            _write_atomically(self.path_of(serial), record.as_json())

    def hold_lot(self, lot: str, reason: str) -> None:
        super().hold_lot(lot, reason)
        with self._lock:
            self._saved_lots()

    def _saved_lots(self) -> None:
        """Write lots.json; the caller holds the lock."""
        _write_atomically(self.directory / "lots.json", {"holds": self._holds, "failures": self._failures})


class JsonMirror:
    """Another History, plus each unit's record written as ``DIR/SERIAL.json`` after every attempt."""

    def __init__(self, inner: History, directory: Path) -> None:
        self.inner = inner
        self.files = JsonDirHistory(directory)
        self._records: dict[str, UnitRecord] = {}
        self._lock = threading.Lock()

    def unit(self, serial: str) -> UnitRecord:
        return self.inner.unit(serial)

    def claim(
        self, serial: str, *, station: str | None, lot: str | None, product: str | None, decide: Decide
    ) -> tuple[UnitRecord, str | None]:
        record, refused = self.inner.claim(serial, station=station, lot=lot, product=product, decide=decide)
        if refused is None:
            with self._lock:
                self._records[serial] = UnitRecord(
                    record.serial, record.lot, record.status, record.reason, list(record.attempts), record.product
                )
        return record, refused

    def intend(self, attempt: Attempt) -> int:
        return self.inner.intend(attempt)

    def add(self, attempt: Attempt, *, intent: int | None = None, quarantine: str | None = None) -> None:
        self.inner.add(attempt, intent=intent, quarantine=quarantine)
        with self._lock:
            record = self._records.get(attempt.serial)
            if record is None:
                return
            record.attempts.append(attempt)
            if quarantine is not None:
                record.status, record.reason = QUARANTINED, quarantine
            _write_atomically(self.files.path_of(attempt.serial), record.as_json(), sync=False)

    def finish(self, serial: str, status: str, reason: str | None, lifecycle: str | None = None) -> None:
        self.inner.finish(serial, status, reason, lifecycle)
        with self._lock:
            record = self._records.pop(serial, None)
        if record is not None:
            if record.status != QUARANTINED:
                record.status, record.reason = status, reason
            record.lifecycle = lifecycle
            _write_atomically(self.files.path_of(serial), record.as_json())

    def lot_hold(self, lot: str) -> str | None:
        return self.inner.lot_hold(lot)

    def hold_lot(self, lot: str, reason: str) -> None:
        self.inner.hold_lot(lot, reason)

    def lot_failed(self, lot: str, stage: str) -> int:
        return self.inner.lot_failed(lot, stage)


def _write_atomically(path: Path, data: Any, sync: bool = True) -> None:
    write_atomically(path, (json.dumps(data, indent=2) + "\n").encode(), sync=sync)
