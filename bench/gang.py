"""Gang flash of many simulated units at once: does the station flash them in parallel?

A one-stage recipe (``flash.gang`` with read-back verification) runs on the simulated line with one
slot per device: every unit's image goes through pyusb to its own simulated device on the
simulated USB backend (``usb_mb_s`` sets the simulated bus speed), is hashed by the device as it
arrives and read back. Each unit's flash time is its attempt's duration as the runner measured it;
wall time is the whole ``runner.run`` call.

    python bench/gang.py [--devices 64] [--image-mib 32] [--usb-mb-s 12] [--runs 5]

The simulated bus runs at 12 MB/s per device, about what flashing a phone's FFU over USB 2.0
achieves (eMMC writes are the limit); images of real lines are gigabytes, 32 MiB keeps a run short.

``wall_over_slowest`` is wall time over the slowest device's flash time (median of the runs): 1.0
means every device flashed at the same time as every other, N means one after the other. The last
line printed is one JSON object: ``{"devices": …, "wall_over_slowest": …, …}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from engine.events import Event, StepEnded
from engine.outcome import Outcome
from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.run.operator import SimOperator
from engine.run.runner import StationRunner, UnitSpec
from engine.store.history import MemoryHistory
from steps.sim import SimLine

TARGET = 1.1

RECIPE = """\
recipe: bench-gang
version: 1
images:
  golden: {file: golden.ffu, kind: ffu, platform: mobile-os, type: retail}
stations:
  smt: {slots: DEVICES}
stages:
  - id: flash
    step: flash.gang
    station: smt
    with: {image: golden, verify: true}
"""


def run_once(devices: int, image_mib: int, usb_mb_s: float, run: int) -> tuple[float, float, float]:
    """(wall s, slowest device s, mean device s) of one gang flash of ``devices`` units."""
    registry = Registry.discover()
    with tempfile.TemporaryDirectory(prefix="floorflow-gang-") as tmp:
        recipe = Path(tmp) / "gang.yaml"
        recipe.write_text(RECIPE.replace("DEVICES", str(devices)))
        flow, problems = check_recipe(recipe, registry)
        if flow is None:
            raise SystemExit("error: the benchmark recipe does not compile:\n" + "\n".join(map(str, problems)))
        line = SimLine(flow, {"image_kib": image_mib * 1024, "usb_mb_s": usb_mb_s, "state_dir": tmp + "/sim"})
        durations: list[float] = []

        def collect(event: Event) -> None:
            if isinstance(event, StepEnded):
                if event.outcome is not Outcome.PASS:
                    raise SystemExit(f"error: {event.serial} {event.outcome}: {event.error}")
                durations.append(event.duration_s)

        runner = StationRunner(flow, registry, line, SimOperator(), MemoryHistory(), [collect])
        units = [UnitSpec(f"GANG{run:02d}{n:03d}") for n in range(devices)]
        try:
            start = time.perf_counter()
            results = runner.run(units, devices)
            wall = time.perf_counter() - start
        finally:
            line.close()
    if [r.status for r in results] != ["shipped"] * devices or len(durations) != devices:
        raise SystemExit(f"error: not every unit flashed: {[(r.serial, r.status, r.reason) for r in results]}")
    return wall, max(durations), statistics.fmean(durations)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=64)
    parser.add_argument("--image-mib", type=int, default=32)
    parser.add_argument("--usb-mb-s", type=float, default=12.0, help="simulated USB transfer rate per device")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    ratios, walls, slowest = [], [], []
    for run in range(args.runs):
        wall, worst, mean = run_once(args.devices, args.image_mib, args.usb_mb_s, run)
        ratios.append(wall / worst)
        walls.append(wall)
        slowest.append(worst)
        print(
            f"run {run + 1}: {args.devices} devices, {args.image_mib} MiB each: wall {wall:.3f} s, "
            f"slowest device {worst:.3f} s, mean device {mean:.3f} s, wall/slowest {wall / worst:.3f}"
        )
    ratio = statistics.median(ratios)
    serial = args.image_mib * 1024 * 1024 / (args.usb_mb_s * 1e6) * args.devices
    print(
        f"median wall/slowest {ratio:.3f} (target <= {TARGET}); one after the other the bus alone "
        f"would take {serial:.1f} s, the gang took {statistics.median(walls):.2f} s"
    )
    figures = {
        "devices": args.devices,
        "wall_over_slowest": round(ratio, 3),
        "wall_s": round(statistics.median(walls), 3),
        "slowest_device_s": round(statistics.median(slowest), 3),
        "image_mib": args.image_mib,
        "runs": args.runs,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
