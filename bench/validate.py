"""Time a cold ``floorflow validate RECIPE`` for each example recipe.

Every run is a fresh process of the installed console script (the way pre-commit and CI call it),
so the times include interpreter start-up and imports. For comparison the table also shows a bare
``python -c pass``: the floor no recipe can go below.

    python bench/validate.py [--runs N] [--recipes PATH ...]

The last line printed is one JSON object:
``{"validate_s": {RECIPE_NAME: seconds, ...}, "max_s": ..., "python_startup_s": ...}``.
Exit status: 0, or 1 when a validate run fails (its output is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.35


def floorflow_command() -> list[str]:
    """The installed console script next to the interpreter, else ``python -m engine.cli``."""
    bindir = Path(sys.executable).parent
    for name in ("floorflow", "floorflow.exe"):
        script = bindir / name
        if script.is_file() and os.access(script, os.X_OK):
            return [str(script)]
    return [sys.executable, "-m", "engine.cli"]


def time_runs(cmd: list[str], runs: int) -> list[float]:
    """Wall seconds of each of ``runs`` fresh runs of ``cmd``; exits 1 when one fails."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            print(f"error: `{' '.join(cmd)}` exited {proc.returncode}", file=sys.stderr)
            sys.stderr.write(proc.stdout)
            sys.stderr.write(proc.stderr)
            sys.exit(1)
        times.append(elapsed)
    return times


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
    print(f"command: {' '.join(command)} validate RECIPE   ({args.runs} runs each)\n")

    rows: list[tuple[str, list[float]]] = [("python -c pass", time_runs([sys.executable, "-c", "pass"], args.runs))]
    names = recipe_names(paths)
    for name, path in zip(names, paths, strict=True):
        rows.append((name, time_runs([*command, "validate", str(path)], args.runs)))

    width = max(len("recipe"), *(len(name) for name, _ in rows))
    print(f"{'recipe':<{width}}  {'median s':>9}  {'min s':>7}  {'max s':>7}")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 7}  {'-' * 7}")
    for name, times in rows:
        print(f"{name:<{width}}  {statistics.median(times):>9.3f}  {min(times):>7.3f}  {max(times):>7.3f}")

    startup = statistics.median(rows[0][1])
    validate = {name: round(statistics.median(times), 4) for name, times in rows[1:]}
    worst = max(validate.values())
    verdict = "met" if worst <= TARGET_S else "NOT met"
    print(
        f"\ntarget: <= {TARGET_S:.2f} s median for a typical recipe; "
        f"slowest here {worst:.3f} s ({verdict}); interpreter floor {startup:.3f} s"
    )
    print(json.dumps({"validate_s": validate, "max_s": worst, "python_startup_s": round(startup, 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
