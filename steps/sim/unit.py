"""One simulated unit's state, its link and its injected faults; ``SimDevice`` adds the commands.

The state is what the real unit keeps (storage, RAM, lifecycle, identities, trims, calibration),
plus ``counts``: how many times each lasting operation ran, so tests can prove "ran once".
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from engine.outcome import StationError, StepFailed
from steps.common import CommandRefused
from steps.sim.config import Storage, UnitFaults
from steps.sim.model import LOCKDOWN_STATE, RECOVERY_KIND, LineModel, image_digest
from steps.sim.radio import UnitRadio


class SimUnit:
    def __init__(self, serial: str, model: LineModel, faults: UnitFaults | None = None) -> None:
        faults = faults if faults is not None else UnitFaults()
        self.serial = serial
        self.device_id = hashlib.sha512(f"sim-device/{serial}".encode()).hexdigest().upper()
        self.model = model
        self.faults = faults
        self.counts: Counter[str] = Counter()
        self.is_open = True
        self.connected = False
        self.interface: str | None = None
        self.slot: int | None = None
        self.storage: dict[str, bool] = {}
        """Images on persistent storage, name -> temporary."""
        self.os_image: str | None = None
        self.storage_hash: str | None = None
        self._arrive_with(faults.starts_with)
        self.ram: dict[str, bool] = {}
        self.running = False
        self.console = ""
        default_state = model.lifecycle[0] if model.lifecycle else None
        self.lifecycle = faults.lifecycle if faults.lifecycle is not None else default_state
        self.identities: dict[str, str] = dict(faults.identities)
        self.wifi: list[str] = list(faults.wifi)
        self.capabilities: tuple[str, ...] = faults.capabilities
        self.customization: tuple[str, str | None] | None = None
        self.sensor_cal: dict[str, dict[str, float]] = {}
        self.radio = UnitRadio(serial)
        self.rf_mode: tuple[str, int] | None = None
        self.stage = ""
        self._attempts: Counter[str] = Counter()
        self._rngs: dict[str, random.Random] = {}
        self._lock = threading.RLock()
        self.rx_input_dbm: float | None = None
        """Level the RF tester generates at the unit's port (set by the simulated tester)."""
        self.on_console: Callable[[str], None] | None = None
        """Called with what the unit prints on its console when it boots (the UART firmware)."""
        self.on_change: Callable[[SimUnit], None] | None = None
        """Called after every lasting change (the line saves the unit's state with it)."""

    def _arrive_with(self, start: Storage) -> None:
        """Storage as the steps that write ``start`` leave it: the OS as its write leaves it (a full storage
        write lists its image among the unit's images, a recovery image is the OS alone), the images as
        installing them on it does. Reads back the image's nominal hash until the line sets its file's."""
        if start.os is None:
            return
        os = start.os
        self.os_image = os.name
        self.storage = {} if os.kind == RECOVERY_KIND else {os.name: os.temporary}
        self.storage.update({image.name: image.temporary for image in start.images})
        self.storage_hash = image_digest(os)

    # -- the link and the faults ------------------------------------------------------------------

    def reopen(self, slot: int) -> None:
        with self._lock:
            self.is_open, self.slot = True, slot

    def close(self) -> None:
        with self._lock:
            self.is_open = self.connected = False
            self.rf_mode = None
            self.radio.end_test_mode()

    def _live(self) -> None:
        if not self.is_open:
            raise StationError(f"the link to unit {self.serial} is closed")

    def _changed(self, operation: str | None = None) -> None:
        if operation is not None:
            self.counts[operation] += 1
        if self.on_change is not None:
            self.on_change(self)

    def begin(self, stage: str, cancelled: threading.Event) -> None:
        """A stage starts: count its attempt, stay silent if told to hang, fail if told to fail."""
        with self._lock:
            self._live()
            self.stage = stage
            self._attempts[stage] += 1
            attempt = self._attempts[stage]
        hang = self.faults.hang.get(stage, 0.0)
        if hang and cancelled.wait(hang):
            raise StationError(f"unit {self.serial} did not answer in stage '{stage}' before it was cancelled")
        failing = self.faults.fail.get(stage, 0)
        if attempt <= failing:
            raise StepFailed(
                f"simulated fault: unit {self.serial} fails attempt {attempt} of '{stage}' (first {failing})"
            )

    def reading(self, name: str, value: Any) -> Any:
        """The value this unit shows for ``name`` in the current stage: the configured one, if any."""
        return self.faults.measurements.get((self.stage, name), value)

    def rng(self) -> random.Random:
        """Seeded noise for the current stage, one stream per serial and stage."""
        with self._lock:
            if self.stage not in self._rngs:
                self._rngs[self.stage] = random.Random(f"{self.serial}/{self.stage}")
            return self._rngs[self.stage]

    def _refuse_from(self, state: str, what: str) -> None:
        if self.model.reached(self.lifecycle, state):
            raise CommandRefused(f"unit {self.serial} is {self.lifecycle}: it refuses {what}")

    def _writable(self, what: str) -> None:
        self._live()
        self._refuse_from(LOCKDOWN_STATE, what)
