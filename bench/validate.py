"""Time a cold ``floorflow validate RECIPE`` for each example recipe, and for the largest recipes.

Every run is a fresh process of the installed console script (the way pre-commit and CI call it),
so the times include interpreter start-up and imports. For comparison the table also shows a bare
``python -c pass``: the floor no recipe can go below. Three large cases from bench/bigrecipe.py
follow: the largest recipe accepted (just under 1 MiB, about 14,000 stages), the same with one
misspelt key (so its errors are explained), and a child of 4,000 ``after:``/``before:`` entries
extending a base of 4,000 stages. The runs are interleaved (one of each, round after round), so a
machine busy for a while slows every case alike.

    python bench/validate.py [--runs N] [--recipes PATH ...] [--no-large]

The last line printed is one JSON object: ``{"validate_s": {RECIPE_NAME: seconds, ...}, "max_s": ...,
"python_startup_s": ..., "largest_recipe_s": ..., "largest_recipe_with_error_s": ...,
"largest_extends_s": ...}`` (medians; the last three left out with --no-large).
Exit status: 0, or 1 when a validate run does not end as it should (its output is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from bigrecipe import extends_recipes, largest_recipe, with_schema_error

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.35
LARGE_TARGET_S = 3.0
EXTENDS_ENTRIES = 4000


class Case(NamedTuple):
    name: str
    cmd: list[str]
    exit_code: int
    """What the run must exit with: 1 for a recipe with errors."""


def floorflow_command() -> list[str]:
    """The installed console script next to the interpreter, else ``python -m engine.cli``."""
    bindir = Path(sys.executable).parent
    for name in ("floorflow", "floorflow.exe"):
        script = bindir / name
        if script.is_file() and os.access(script, os.X_OK):
            return [str(script)]
    return [sys.executable, "-m", "engine.cli"]


def time_run(case: Case) -> float:
    """Wall seconds of one fresh run of the case; exits 1 when it does not exit as it should."""
    start = time.perf_counter()
    proc = subprocess.run(case.cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != case.exit_code:
        print(f"error: `{' '.join(case.cmd)}` exited {proc.returncode}, not {case.exit_code}", file=sys.stderr)
        sys.stderr.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        sys.exit(1)
    return elapsed


def time_interleaved(cases: list[Case], runs: int) -> dict[str, list[float]]:
    """Wall seconds of ``runs`` runs of each case, one of each per round."""
    times: dict[str, list[float]] = {case.name: [] for case in cases}
    for _ in range(runs):
        for case in cases:
            times[case.name].append(time_run(case))
    return times


def large_cases(command: list[str], directory: Path) -> list[Case]:
    """The largest recipe, the same with one schema error, a child of many after:/before: entries."""
    largest = largest_recipe()
    (directory / "largest.yaml").write_text(largest, encoding="utf-8")
    (directory / "largest-error.yaml").write_text(with_schema_error(largest), encoding="utf-8")
    base, child = extends_recipes(EXTENDS_ENTRIES, "extends-base.yaml")
    (directory / "extends-base.yaml").write_text(base, encoding="utf-8")
    (directory / "extends-child.yaml").write_text(child, encoding="utf-8")
    return [
        Case("largest_recipe", [*command, "validate", str(directory / "largest.yaml")], 0),
        Case("largest_recipe_with_error", [*command, "validate", str(directory / "largest-error.yaml")], 1),
        Case("largest_extends", [*command, "validate", str(directory / "extends-child.yaml")], 0),
    ]


def recipe_names(paths: list[Path]) -> list[str]:
    """The file stem of each recipe, or its path where two recipes share a stem."""
    stems = [p.stem for p in paths]
    return [s if stems.count(s) == 1 else str(p) for s, p in zip(stems, paths, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time a cold `floorflow validate RECIPE` (median of fresh processes).",
    )
    parser.add_argument("--runs", type=int, default=5, metavar="N", help="runs per recipe (default: 5)")
    parser.add_argument(
        "--recipes",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="recipes to time (default: workflows/*.yaml, not workflows/base/)",
    )
    parser.add_argument("--no-large", action="store_true", help="time only the example recipes")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    paths: list[Path] = args.recipes or sorted((ROOT / "workflows").glob("*.yaml"))
    if not paths:
        parser.error(f"no recipes found in {ROOT / 'workflows'}")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such recipe: {', '.join(missing)}")

    command = floorflow_command()
    print(f"command: {' '.join(command)} validate RECIPE   ({args.runs} runs each, interleaved)\n")
    cases = [Case("python -c pass", [sys.executable, "-c", "pass"], 0)]
    for name, path in zip(recipe_names(paths), paths, strict=True):
        cases.append(Case(name, [*command, "validate", str(path)], 0))
    with tempfile.TemporaryDirectory(prefix="floorflow-bench-") as tmp:
        large = [] if args.no_large else large_cases(command, Path(tmp))
        times = time_interleaved(cases + large, args.runs)
    print_table(times)

    medians = {name: round(statistics.median(values), 4) for name, values in times.items()}
    startup = medians["python -c pass"]
    validate = {case.name: medians[case.name] for case in cases[1:]}
    worst = max(validate.values())
    verdict = "met" if worst <= TARGET_S else "NOT met"
    print(
        f"\ntarget: <= {TARGET_S:.2f} s median for a typical recipe; "
        f"slowest here {worst:.3f} s ({verdict}); interpreter floor {startup:.3f} s"
    )
    result: dict[str, object] = {"validate_s": validate, "max_s": worst, "python_startup_s": startup}
    if large:
        slowest = max(medians[case.name] for case in large)
        verdict = "met" if slowest <= LARGE_TARGET_S else "NOT met"
        print(f"target: <= {LARGE_TARGET_S:.1f} s median for each large case; slowest {slowest:.3f} s ({verdict})")
        result |= {f"{case.name}_s": medians[case.name] for case in large}
    print(json.dumps(result))
    return 0


def print_table(times: dict[str, list[float]]) -> None:
    width = max(len("recipe"), *(len(name) for name in times))
    print(f"{'recipe':<{width}}  {'median s':>9}  {'min s':>7}  {'max s':>7}")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 7}  {'-' * 7}")
    for name, values in times.items():
        print(f"{name:<{width}}  {statistics.median(values):>9.3f}  {min(values):>7.3f}  {max(values):>7.3f}")


if __name__ == "__main__":
    sys.exit(main())
