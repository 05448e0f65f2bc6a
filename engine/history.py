"""Where a unit's record lives between runs, and the lots' holds.

A unit's state (stages passed, lifecycle, irreversible stages entered) is derived from its
recorded attempts, never kept in the runner. ``MemoryHistory`` keeps records in the process;
``JsonDirHistory`` keeps one JSON file per unit in a directory (``--json-out DIR``), read back on
the next run, written whole and atomically (a new file renamed over the old one) so a crash never
leaves a half-written record. The durable database store is a later addition to this interface.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from engine.record import Attempt, UnitRecord


class History(Protocol):
    def unit(self, serial: str) -> UnitRecord:
        """The unit's record (an empty one for a unit never seen)."""
        ...

    def add(self, attempt: Attempt) -> None: ...

    def finish(self, serial: str, status: str, reason: str | None) -> None:
        """The unit leaves the station: record where its route stands."""
        ...

    def lot_hold(self, lot: str) -> str | None:
        """Why the lot is on hold, or None."""
        ...

    def hold_lot(self, lot: str, reason: str) -> None: ...

    def lot_failed(self, lot: str, stage: str) -> int:
        """Count one more sampled unit of the lot failing ``stage``; return the count so far."""
        ...


class MemoryHistory:
    def __init__(self) -> None:
        self._units: dict[str, UnitRecord] = {}
        self._holds: dict[str, str] = {}
        self._failures: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    def unit(self, serial: str) -> UnitRecord:
        with self._lock:
            record = self._units.get(serial)
            if record is None:
                record = self._units[serial] = self._load(serial)
            return record

    def _load(self, serial: str) -> UnitRecord:
        return UnitRecord(serial)

    def add(self, attempt: Attempt) -> None:
        with self._lock:
            record = self._units.get(attempt.serial)
            if record is None:
                record = self._units[attempt.serial] = self._load(attempt.serial)
            record.attempts.append(attempt)
            if attempt.lot is not None:
                record.lot = attempt.lot

    def finish(self, serial: str, status: str, reason: str | None) -> None:
        record = self.unit(serial)
        with self._lock:
            record.status, record.reason = status, reason

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
        # Percent-encoding keeps distinct serials in distinct files ("SN/1" and "SN_1").
        return self.directory / f"{quote(serial, safe='-_')}.json"

    def _load(self, serial: str) -> UnitRecord:
        path = self.path_of(serial)
        if not path.exists():
            return UnitRecord(serial)
        return UnitRecord.from_json(json.loads(path.read_text()))

    def add(self, attempt: Attempt) -> None:
        """Record the attempt and rewrite the unit's file, so a crash loses no finished attempt."""
        super().add(attempt)
        record = self.unit(attempt.serial)
        with self._lock:
            _write_atomically(self.path_of(attempt.serial), record.as_json(), sync=False)

    def finish(self, serial: str, status: str, reason: str | None) -> None:
        super().finish(serial, status, reason)
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


def _write_atomically(path: Path, data: Any, sync: bool = True) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
