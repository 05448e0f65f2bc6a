"""``uart.functional``: run the factory test application's self-tests over the serial console.

On Azure Sphere the sideloaded test application exercises the board's peripherals and reports each
self-test over the UART; the stage passes when every named self-test passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.step import StepType, param


@dataclass(frozen=True)
class Params:
    tests: tuple[str, ...] = param("Names of the self-tests to run and require a pass from.")
    baudrate: int = param("Baud rate of the unit's serial console.", default=115200)


class UartFunctional(StepType):
    name = "uart.functional"
    summary = "Run self-tests on the unit over its UART and collect their results."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"tests": ("gpio",)}
