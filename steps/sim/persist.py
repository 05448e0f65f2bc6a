"""Simulated units that outlive the process: one JSON file per unit in the config's ``state_dir``.

A real unit keeps its storage, lifecycle and identities when it moves to the next station, which
may be another ``floorflow run``. Each file is written whole and renamed over the old one, so a
crash leaves either the old state or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from steps.sim.unit import SimUnit


def snapshot(device: SimUnit) -> dict[str, Any]:
    radio = device.radio
    return {
        "serial": device.serial,
        "lifecycle": device.lifecycle,
        "identities": device.identities,
        "storage": device.storage,
        "os_image": device.os_image,
        "storage_hash": device.storage_hash,
        "ram": device.ram,
        "running": device.running,
        "console": device.console,
        "wifi": device.wifi,
        "capabilities": list(device.capabilities),
        "customization": device.customization,
        "sensor_cal": device.sensor_cal,
        "trims": [[band, channel, value] for (band, channel), value in radio.trims.items()],
        "freq_trims": radio.freq_trims,
        "counts": dict(device.counts),
    }


def restore(device: SimUnit, state: dict[str, Any]) -> None:
    device.lifecycle = state["lifecycle"]
    device.identities = dict(state["identities"])
    device.storage = dict(state["storage"])
    device.os_image = state["os_image"]
    device.storage_hash = state["storage_hash"]
    device.ram = dict(state["ram"])
    device.running = bool(state["running"])
    device.console = state["console"]
    device.wifi = list(state["wifi"])
    device.capabilities = tuple(state["capabilities"])
    custom = state["customization"]
    device.customization = None if custom is None else (custom[0], custom[1])
    device.sensor_cal = {k: dict(v) for k, v in state["sensor_cal"].items()}
    device.radio.trims = {(band, channel): value for band, channel, value in state["trims"]}
    device.radio.freq_trims = dict(state["freq_trims"])
    device.counts.clear()
    device.counts.update(state["counts"])


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, serial: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", serial)[:64]
        tag = hashlib.sha256(serial.encode()).hexdigest()[:8]
        return self.root / f"{safe}-{tag}.json"

    def load(self, device: SimUnit) -> None:
        path = self.path(device.serial)
        if path.exists():
            restore(device, json.loads(path.read_text(encoding="utf-8")))

    def save(self, device: SimUnit) -> None:
        path = self.path(device.serial)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".unit-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(snapshot(device), out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
