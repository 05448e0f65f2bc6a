"""A week of the phone line's records, written into a store, for the line planner's session in docs/simulate.md.

What a line's store holds after a week: each unit's attempts at the stages of
``workflows/phone-wim.yaml``, each with its times and outcome. The times and failure chances are
the line's own as this example makes them up (``LINE`` below: the RF stages slower than the
shipped default profile says, the manual tests quicker); ``floorflow profile`` reads them back.

    python examples/planner/week.py sqlite:///week.db [--units 3000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from engine.outcome import Outcome
from engine.recipe.check import check_recipe
from engine.record import Attempt, RecipeRef
from engine.registry import Registry
from engine.store import open_store

RECIPE = Path(__file__).resolve().parents[2] / "workflows" / "phone-wim.yaml"
T0 = 1_796_000_000.0
# step type: (how its seconds are drawn, the chance an attempt fails)
LINE = {
    "flash.gang": (lambda r: r.lognormvariate(5.70, 0.08), 0.004),  # about 300 s
    "manual.checklist": (lambda r: r.triangular(15, 45, 25), 0.003),
    "flash.boot_ram": (lambda r: r.triangular(45, 90, 60), 0.005),
    "rf.calibrate": (lambda r: r.lognormvariate(4.93, 0.15), 0.04),  # about 140 s
    "rf.measure": (lambda r: r.triangular(20, 60, 30), 0.025),
    "provision.identity": (lambda r: r.triangular(10, 25, 15), 0.002),
    "device.calibrate_sensors": (lambda r: r.triangular(30, 60, 40), 0.01),
    "device.customize": (lambda r: r.triangular(20, 45, 30), 0.002),
    "label.print": (lambda r: 8.0, 0.002),
    "boot.wait": (lambda r: r.triangular(30, 90, 45), 0.003),
    "lifecycle.advance": (lambda r: 3.0, 0.001),
    "qa.ready_to_ship": (lambda r: r.triangular(10, 40, 20), 0.003),
    "sample.inspect": (lambda r: r.triangular(300, 900, 600), 0.01),
}
RETRIES = 1
"""A failed attempt is tried once more; a unit whose stage fails twice leaves the line."""


def week(url: str, units: int, seed: int) -> int:
    """Write ``units`` units' attempts into the store at ``url``; the attempts written."""
    flow, problems = check_recipe(RECIPE, Registry.discover())
    if flow is None:
        raise SystemExit("\n".join(map(str, problems)))
    recipe = RecipeRef(flow.recipe, flow.version, flow.content_hash)
    stages = [flow.stages[sid] for sid in flow.route_ids if flow.stages[sid].sampling is None]
    rng, written = random.Random(seed), 0
    with open_store(url) as store:
        for n in range(units):
            now = T0 + n * 120.0
            for stage in stages:
                draw, fail = LINE[stage.step]
                for number in range(1, RETRIES + 2):
                    took = draw(rng)
                    outcome = Outcome.FAIL if rng.random() < fail else Outcome.PASS
                    store.add(Attempt(f"PH{n:06d}", stage.id, stage.step, number, outcome, now, now + took, recipe,
                                      lot=f"LOT-{n // 500:03d}", station=stage.station, slot=n % 4 + 1))  # fmt: skip
                    now += took
                    written += 1
                    if outcome is Outcome.PASS:
                        break
                else:
                    break  # failed twice: the unit leaves the line
        store.flush()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("store", help="the store to write, e.g. sqlite:///week.db")
    parser.add_argument("--units", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"{week(args.store, args.units, args.seed):,} attempts of {args.units:,} units written to {args.store}")


if __name__ == "__main__":
    main()
