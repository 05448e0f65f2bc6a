"""``--json-out DIR``: each unit's record, as the store holds it, also written as ``DIR/SERIAL.json``.

A subscriber to the runner's events: after each attempt (``StepEnded``) and when the unit leaves
the station (``UnitEnded``) it reads the unit's record back from the store and replaces its file
whole and atomically (a new file renamed over the old one), so a crash never leaves a half-written
record; the file written as the unit leaves is synced to disk. The file's status is how the run of
the unit ended (``error``, ``aborted``, … as well as the record's own), unless the unit is
quarantined. A unit refused, or never started (its slot out of service), leaves its file as it was.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from engine.events import Event, StepEnded, UnitEnded, UnitStarted
from engine.files import write_atomically
from engine.outcome import UnitStatus
from engine.record import UnitRecord
from engine.report import strictjson

NAME_MAX = 200
"""The longest unit file name before ``.json`` (file systems allow 255 bytes)."""


def path_of(directory: Path, serial: str) -> Path:
    """Where the unit's file is: its serial percent-encoded, so distinct serials ("SN/1", "SN_1") get
    distinct files; a name too long for the file system (non-ASCII serials encode to 3 to 12
    characters each) is cut and told apart by a hash of the serial."""
    name = quote(serial, safe="-_")
    if len(name) > NAME_MAX:
        name = f"{name[: NAME_MAX - 17]}~{hashlib.sha256(serial.encode()).hexdigest()[:16]}"
    return directory / f"{name}.json"


class JsonMirror:
    """Writes ``DIR/SERIAL.json`` from ``unit`` (the store's ``SqlStore.unit``) as the runner's events come."""

    def __init__(self, unit: Callable[[str], UnitRecord], directory: Path) -> None:
        self.unit = unit
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._started: Counter[str] = Counter()
        """Serials started and not yet ended, by how many slots (one unit given to two slots: one is refused)."""
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepEnded):
            self.write(self.unit(event.serial), sync=False)
        elif isinstance(event, UnitStarted):
            with self._lock:
                self._started[event.serial] += 1
        elif isinstance(event, UnitEnded):
            with self._lock:
                running = self._started.pop(event.serial, 0)
                if running > 1:
                    self._started[event.serial] = running - 1
            if running and event.status != UnitStatus.REFUSED:
                self._ended(event)

    def _ended(self, event: UnitEnded) -> None:
        record = self.unit(event.serial)
        if record.status != UnitStatus.QUARANTINED:
            record.status, record.reason = event.status, event.reason
        self.write(record, sync=True)

    def write(self, record: UnitRecord, *, sync: bool) -> None:
        text = strictjson.dumps(record.as_json(), indent=2) + "\n"
        write_atomically(path_of(self.directory, record.serial), text.encode(), sync=sync)
