"""``uart.functional``: run the factory test application's self-tests over the serial console.

On Azure Sphere the sideloaded test application exercises the board's peripherals and reports each
self-test over the UART; the stage passes when every named self-test passes. Only an image of
``type: test`` on the unit is that application: without one, nothing answers the self-tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.context import StepContext
from engine.outcome import StepFailed
from engine.step import Duration, Effects, StepType, Typical, param
from steps.common import open_device, stop_if_cancelled


@dataclass(frozen=True)
class Params:
    tests: tuple[str, ...] = param("Names of the self-tests to run and require a pass from.")
    baudrate: int = param("Baud rate of the unit's serial console.", default=115200)


class UartFunctional(StepType):
    name = "uart.functional"
    summary = "Run self-tests on the unit over its UART and collect their results."
    Params = Params
    example: ClassVar[Mapping[str, Any]] = {"tests": ("gpio",)}
    typical = Typical(Duration.triangular(30, 40, 60), fail=0.01)

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects(needs_image_type="test")

    def run(self, ctx: StepContext) -> None:
        p = ctx.params
        device = open_device(ctx)
        failed: list[str] = []
        for test in p.tests:
            stop_if_cancelled(ctx)
            passed, printed = device.self_test(test, p.baudrate)
            ctx.measure(test, "pass" if passed else "fail")
            if not passed:
                failed.append(printed)
        if failed:
            raise StepFailed(f"{len(failed)} of {len(p.tests)} self-tests failed: {'; '.join(failed)}")
