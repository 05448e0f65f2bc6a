"""The simulated station: one SimDevice per unit serial, and the station's simulated instruments."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.flow import Flow
from engine.outcome import StationError
from steps.common.identities import JournalIdentityAllocator
from steps.sim.config import SimConfig, parse_config
from steps.sim.device import SimDevice
from steps.sim.model import LineModel, line_model
from steps.sim.persist import StateDir
from steps.sim.station import SimImageStore, SimLabelPrinter, SimMeter, SimRfTester


class SimLine:
    """A Line whose units and instruments are simulated; see ``steps.sim`` for the config keys."""

    def __init__(self, flow: Flow, config: Mapping[str, Any] | None = None) -> None:
        self.flow = flow
        self.config: SimConfig = parse_config(config, flow)
        self.model: LineModel = line_model(flow, self.config)
        self.state = StateDir(Path(self.config.state_dir)) if self.config.state_dir else None
        journal = self.state.root / "identities.tsv" if self.state is not None else None
        self.identities = JournalIdentityAllocator(self.config.allocator, journal)
        self.label_printer = SimLabelPrinter()
        self.rf_tester = SimRfTester()
        self.meter = SimMeter()
        self.image_store = SimImageStore()
        resources: dict[str, Any] = {
            "identities": self.identities,
            "label_printer": self.label_printer,
            "rf_tester": self.rf_tester,
            "meter": self.meter,
            "image_store": self.image_store,
        }
        for name in self.config.offline:
            resources[name].offline = True
        self._resources = MappingProxyType(resources)
        self._devices: dict[str, SimDevice] = {}
        self._lock = threading.Lock()

    def open_unit(self, serial: str, slot: int) -> SimDevice:
        """The unit's device: the same object for a serial every time, so the unit keeps its state."""
        faults = self.config.unit(serial)
        if faults.missing:
            raise StationError(f"no device for {serial} in slot {slot}: nothing answers on the fixture")
        with self._lock:
            device = self._devices.get(serial)
            if device is None:
                device = SimDevice(serial, self.model, faults)
                if self.state is not None:
                    self.state.load(device)
                    device.on_change = self.state.save
                self._devices[serial] = device
            elif device.is_open and device.slot not in (None, slot):
                raise StationError(f"unit {serial} is already open in slot {device.slot}")
            device.reopen(slot)
        return device

    def device(self, serial: str) -> SimDevice:
        """The device of a unit already opened on this line (for tests and reports)."""
        with self._lock:
            return self._devices[serial]

    def resources(self) -> Mapping[str, Any]:
        return self._resources

    def close(self) -> None:
        with self._lock:
            devices = list(self._devices.values())
        for device in devices:
            device.close()
