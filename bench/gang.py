"""Gang flash of many simulated units at once: does the station flash them in parallel?

A one-stage recipe (``flash.gang`` with read-back verification) runs on the simulated line with one
slot per device: every unit's image goes through pyusb to its own simulated device on the
simulated USB backend (``usb_mb_s`` sets the simulated transfer rate of each device's port), is
hashed by the device as it arrives and read back. The records go to the SQL store in memory
(``sqlite://``), as ``floorflow run`` keeps them when told to keep nothing.

Each round times two ``runner.run`` calls on fresh lines with the same configuration: the gang (all
``--devices`` units, one slot each) and one unit flashed alone on the same bus (one unit, one slot);
the order of the two alternates from round to round. ``gang_over_solo`` is the gang's wall time
over the lone unit's, the median of the rounds' ratios: near 1 when the gang's units really flash at
the same time, near N (the number of devices) when they flash one after the other.

``--serialise`` is the check that the benchmark can fail: it puts one lock around every
``flash.gang`` run, so units flash one after another while the station still runs them in slots of
their own; ``gang_over_solo`` then comes out near N. (``wall_over_slowest``, the wall time over the
slowest device's own flash time, is printed too, labelled as what it is: it measures what the runner
adds around the slowest attempt, and stays near 1 even with the lock, since each device's attempt
then includes its wait for the lock.)

    python bench/gang.py [--devices 64] [--image-mib 32] [--usb-mb-s 12] [--runs 5] [--serialise]

The simulated bus runs at 12 MB/s per device, about what flashing a phone's FFU over USB 2.0
achieves (eMMC writes are the limit); images of real lines are gigabytes, 32 MiB keeps a run short.

The last line printed is one JSON object: ``{"devices": …, "gang_over_solo": …, "gang_wall_s": …,
"solo_wall_s": …, "wall_over_slowest": …, …}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from engine.context import StepContext
from engine.events import Event, StepEnded
from engine.flow import Flow
from engine.outcome import Outcome, UnitStatus
from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.run.operator import SimOperator
from engine.run.runner import StationRunner, UnitSpec
from engine.store import MEMORY, open_store
from steps.flash_gang import FlashGang
from steps.sim import SimLine

TARGET = 1.25
"""The gang's wall time over one unit's alone, at most."""

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


@contextmanager
def serialised() -> Iterator[None]:
    """Every ``flash.gang`` run holds one process-wide lock: the units flash one after another."""
    lock = threading.Lock()
    unlocked = FlashGang.run

    def run(self: FlashGang, ctx: StepContext) -> None:
        with lock:
            unlocked(self, ctx)

    FlashGang.run = run  # type: ignore[method-assign]  # the benchmark's own check, undone on exit
    try:
        yield
    finally:
        FlashGang.run = unlocked  # type: ignore[method-assign]


def flash(
    flow: Flow, registry: Registry, tmp: str, serials: list[str], line_config: dict[str, object]
) -> tuple[float, float]:
    """(wall s, slowest device s) of flashing ``serials`` at once on a fresh line, one slot each."""
    line = SimLine(flow, {**line_config, "state_dir": f"{tmp}/sim-{serials[0]}"})
    durations: list[float] = []

    def collect(event: Event) -> None:
        if isinstance(event, StepEnded):
            if event.outcome is not Outcome.PASS:
                raise SystemExit(f"error: {event.serial} {event.outcome}: {event.error}")
            durations.append(event.duration_s)

    store = open_store(MEMORY)
    runner = StationRunner(flow, registry, line, SimOperator(), store, [collect])
    units = [UnitSpec(serial) for serial in serials]
    try:
        start = time.perf_counter()
        results = runner.run(units, len(units))
        wall = time.perf_counter() - start
    finally:
        line.close()
        store.close()
    if [r.status for r in results] != [UnitStatus.SHIPPED] * len(units) or len(durations) != len(units):
        raise SystemExit(f"error: not every unit flashed: {[(r.serial, r.status, r.reason) for r in results]}")
    return wall, max(durations)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=64)
    parser.add_argument("--image-mib", type=int, default=32)
    parser.add_argument("--usb-mb-s", type=float, default=12.0, help="simulated USB transfer rate per device")
    parser.add_argument("--runs", type=int, default=5, help="rounds, each one gang and one lone unit")
    parser.add_argument("--serialise", action="store_true", help="a lock makes the units flash one after another")
    args = parser.parse_args(argv)
    if args.devices < 2 or args.runs < 1 or args.image_mib < 1:
        parser.error("--devices must be at least 2, --runs and --image-mib at least 1")
    registry = Registry.discover()
    line_config: dict[str, object] = {"image_kib": args.image_mib * 1024, "usb_mb_s": args.usb_mb_s}
    gang_walls, solo_walls, ratios, over_slowest = [], [], [], []
    with (
        tempfile.TemporaryDirectory(prefix="floorflow-gang-") as tmp,
        serialised() if args.serialise else nullcontext(),
    ):
        recipe = Path(tmp) / "gang.yaml"
        recipe.write_text(RECIPE.replace("DEVICES", str(args.devices)))
        flow, problems = check_recipe(recipe, registry)
        if flow is None:
            raise SystemExit("error: the benchmark recipe does not compile:\n" + "\n".join(map(str, problems)))
        for run in range(args.runs):
            units = {"gang": [f"GANG{run:02d}{n:03d}" for n in range(args.devices)], "alone": [f"SOLO{run:02d}000"]}
            order = ["alone", "gang"] if run % 2 == 0 else ["gang", "alone"]  # neither always goes first
            timed = {name: flash(flow, registry, tmp, units[name], line_config) for name in order}
            (gang_wall, slowest), (solo_wall, _) = timed["gang"], timed["alone"]
            gang_walls.append(gang_wall)
            solo_walls.append(solo_wall)
            ratios.append(gang_wall / solo_wall)
            over_slowest.append(gang_wall / slowest)
            print(
                f"round {run + 1}: {args.devices} devices, {args.image_mib} MiB each: gang {gang_wall:.3f} s, "
                f"one alone {solo_wall:.3f} s, gang/alone {gang_wall / solo_wall:.3f}; "
                f"slowest device's own flash {slowest:.3f} s",
                flush=True,
            )
    ratio = statistics.median(ratios)
    serial = args.image_mib * 1024 * 1024 / (args.usb_mb_s * 1e6) * args.devices
    verdict = "met" if ratio <= TARGET else "NOT met"
    lock = " (flashing serialised by a lock: --serialise)" if args.serialise else ""
    print(
        f"median gang/alone {ratio:.3f}{lock}: target <= {TARGET} ({verdict}); near 1 in parallel, near "
        f"{args.devices} one after another (the bus alone would take {serial:.1f} s for {args.devices} devices)"
    )
    print(f"median wall/slowest device's flash {statistics.median(over_slowest):.3f} (the runner's overhead around it)")
    figures = {
        "devices": args.devices,
        "gang_over_solo": round(ratio, 3),
        "gang_wall_s": round(statistics.median(gang_walls), 3),
        "solo_wall_s": round(statistics.median(solo_walls), 3),
        "wall_over_slowest": round(statistics.median(over_slowest), 3),
        "image_mib": args.image_mib,
        "runs": args.runs,
        "serialised": args.serialise,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
