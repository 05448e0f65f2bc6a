"""The ``hardware`` Line: the station's real adapters (USB, UART, SCPI instruments).

They are not written yet, so this Line opens no unit: it says so, and points at ``--sim`` for a
dry run. A package rather than a module, because every top-level module of ``steps`` is a step
type (the packaging test holds one entry point per module).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from engine.flow import Flow
from engine.outcome import StationError


class HardwareLine:
    def __init__(self, flow: Flow, config: Mapping[str, Any] | None = None) -> None:
        self.flow = flow
        self.config = dict(config or {})

    def open_unit(self, serial: str, slot: int) -> NoReturn:
        raise StationError(
            f"no hardware adapter is configured for this station, so unit {serial} (slot {slot}) "
            "cannot be opened; run with --sim for a dry run on simulated hardware"
        )

    def resources(self) -> Mapping[str, Any]:
        return {}

    def close(self) -> None:
        pass
