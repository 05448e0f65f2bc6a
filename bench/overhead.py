"""Per-step overhead of the engine, next to OpenHTF's per-phase overhead, in one process.

floorflow: a generated recipe of N trivial stages, each recording one measurement ``v`` judged
against ``limits: {min: 0, max: 2}``, run by one ``StationRunner`` with the in-memory record
(``MemoryHistory``), no subscribers, a null Line and the simulated operator. Each run is a fresh
unit through all N stages.

OpenHTF: the equivalent test, N phases each measuring ``v`` with
``htf.measures(htf.Measurement('v').in_range(0, 2))``, run by ``htf.Test(*phases).execute(test_start=...)``
with no output callbacks and OpenHTF's console output and logging silenced.

    python bench/overhead.py [--steps N] [--runs N]

Figures are the median of ``--runs`` runs, in microseconds per step (per phase), wall time of the
whole run divided by N. The last line printed is one JSON object:
``{"us_per_step_memory": ..., "openhtf_us_per_phase": ..., "ratio_vs_openhtf": ...}``; the OpenHTF
figures are null when openhtf cannot be imported (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.context import StepContext
from engine.flow import Flow
from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.run.operator import SimOperator
from engine.run.runner import StationRunner, UnitSpec
from engine.step import StepType, param
from engine.store.history import History, MemoryHistory

TARGET_US = 15.0
"""The engine's budget per step (memory record, no subscribers)."""

STEP_NAME = "bench.measure"


@dataclass(frozen=True)
class _Params:
    value: float = param("value to record as measurement 'v'", default=1.0)


class _Measure(StepType):
    """Records one measurement; nothing else."""

    name = STEP_NAME
    summary = "Record one value (benchmark)."
    Params = _Params

    def run(self, ctx: StepContext) -> None:
        ctx.measure("v", ctx.params.value)


class _NullDevice:
    def close(self) -> None:
        pass


class _NullLine:
    """A Line with no hardware: every unit gets the same do-nothing device."""

    def __init__(self) -> None:
        self._device = _NullDevice()

    def open_unit(self, serial: str, slot: int) -> _NullDevice:
        return self._device

    def resources(self) -> Mapping[str, Any]:
        return {}

    def close(self) -> None:
        pass


def recipe_text(steps: int) -> str:
    stage = "  - {{id: s{i}, step: " + STEP_NAME + ", measurements: {{v: {{limits: {{min: 0, max: 2}}}}}}}}\n"
    return "recipe: bench-overhead\nversion: 1\nstages:\n" + "".join(stage.format(i=i) for i in range(steps))


def build_flow(steps: int, registry: Registry) -> Flow:
    with tempfile.TemporaryDirectory(prefix="floorflow-bench-") as tmp:
        path = Path(tmp) / "overhead.yaml"
        path.write_text(recipe_text(steps))
        flow, problems = check_recipe(path, registry)
    if flow is None:
        raise SystemExit("error: the generated recipe does not compile:\n" + "\n".join(str(p) for p in problems))
    return flow


def floorflow_timer(steps: int, history: History | None = None) -> Callable[[str], float]:
    """A runner of the generated recipe: each call runs one fresh unit through it, in microseconds per step.

    With a durable store as ``history``, the time runs until the unit's last attempt is committed.
    """
    registry = Registry()  # private: only the benchmark's step type, no entry points
    registry.register(_Measure, origin="bench/overhead.py")
    flow = build_flow(steps, registry)
    record = MemoryHistory() if history is None else history
    flush = getattr(record, "flush", None)
    # One runner for every run: it attaches its slot models to the flow's state machine once, for the
    # station's life, not per unit (attaching is O(states)); what is timed is the per-unit, per-step work.
    runner = StationRunner(flow, registry, _NullLine(), SimOperator(), record)

    def run(serial: str) -> float:  # a fresh unit each run: no recorded attempts to replay
        gc.collect()  # start each run (both engines) without the previous run's garbage
        start = time.perf_counter()
        results = runner.run([UnitSpec(serial)], 1)
        if flush is not None:
            flush()  # already so: the unit's finish() commits every attempt before it
        elapsed = time.perf_counter() - start
        if [r.status for r in results] != ["shipped"]:
            raise SystemExit(f"error: unit {serial} did not ship: {results}")
        unit = record.unit(serial)
        if len(unit.attempts) != steps or any(len(a.measurements) != 1 for a in unit.attempts):
            raise SystemExit(f"error: unit {serial}: expected {steps} recorded attempts of one measurement each")
        if unit.status != "shipped":
            raise SystemExit(f"error: unit {serial} is {unit.status} in its record, not shipped")
        return elapsed / steps * 1e6

    return run


def time_floorflow(steps: int, runs: int) -> list[float]:
    """Microseconds per step of each run."""
    run = floorflow_timer(steps)
    return [run(f"BENCH{k:04d}") for k in range(runs)]


@contextmanager
def _bare_argv() -> Iterator[None]:
    """OpenHTF parses sys.argv when a Test is made; keep the benchmark's own options from it."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


def openhtf_timer(steps: int) -> tuple[Callable[[], float] | None, str]:
    """A runner of the equivalent OpenHTF test (microseconds per phase of a run), and OpenHTF's version.

    No runner when OpenHTF cannot run: then the text says why.
    """
    try:
        import openhtf as htf
        from openhtf.util import console_output, logs
    except Exception as exc:  # ImportError, or a dependency (protobuf) failing at import
        return None, f"openhtf is not importable ({type(exc).__name__}: {exc}); pip install 'openhtf>=1.6'"
    from importlib.metadata import PackageNotFoundError, version

    try:
        label = f"openhtf {version('openhtf')}"
    except PackageNotFoundError:
        label = "openhtf"

    # Silence it: no console banner (CLI_QUIET), no log printing (verbosity 0 gives the "openhtf" logger a
    # NullHandler), and no DEBUG/INFO records at all, so the timing is not of logging. This only makes
    # OpenHTF faster (its defaults keep DEBUG records in the test record), so the ratio is conservative.
    console_output.CLI_QUIET = True
    logs.CLI_LOGGING_VERBOSITY = 0
    logs.configure_logging()
    logging.getLogger(logs.LOGGER_PREFIX).setLevel(logging.WARNING)
    htf.conf.load(capture_source=False)

    def make_phase(i: int) -> Any:
        def phase(test: Any) -> None:
            test.measurements.v = 1.0

        phase.__name__ = f"s{i}"
        return htf.measures(htf.Measurement("v").in_range(0, 2))(phase)

    with _bare_argv():
        test = htf.Test(*(make_phase(i) for i in range(steps)))
    # No output callbacks: none are added, and there is no station server (it only runs when started).
    assert not test.get_option("output_callbacks")

    def run() -> float:
        gc.collect()
        start = time.perf_counter()
        passed = test.execute(test_start=lambda: "DUT")
        elapsed = time.perf_counter() - start
        if not passed:
            raise SystemExit("error: the OpenHTF test did not pass")
        return elapsed / steps * 1e6

    return run, label


def time_openhtf(steps: int, runs: int) -> tuple[list[float] | None, str]:
    """Microseconds per phase of each run, and OpenHTF's version (or why it cannot run)."""
    run, label = openhtf_timer(steps)
    return (None if run is None else [run() for _ in range(runs)]), label


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Per-step overhead: floorflow's StationRunner next to OpenHTF.")
    parser.add_argument("--steps", type=int, default=1000, metavar="N", help="steps (phases) per run (default: 1000)")
    parser.add_argument("--runs", type=int, default=5, metavar="N", help="runs per engine (default: 5)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    print(f"{args.steps} trivial steps, one range-checked measurement each; {args.runs} runs per engine\n")
    rows: list[tuple[str, list[float]]] = [("floorflow (memory record)", time_floorflow(args.steps, args.runs))]
    htf_times, htf_label = time_openhtf(args.steps, args.runs)
    if htf_times is not None:
        rows.append((htf_label, htf_times))

    width = max(len("engine"), *(len(name) for name, _ in rows))
    print(f"{'engine':<{width}}  {'median us/step':>14}  {'first run':>9}  {'min':>7}  {'max':>7}")
    print(f"{'-' * width}  {'-' * 14}  {'-' * 9}  {'-' * 7}  {'-' * 7}")
    for name, times in rows:
        median, first = statistics.median(times), times[0]
        print(f"{name:<{width}}  {median:>14.2f}  {first:>9.2f}  {min(times):>7.2f}  {max(times):>7.2f}")
    if htf_times is None:
        print(f"\nnote: {htf_label}; its figures are null")

    memory = statistics.median(rows[0][1])
    openhtf = statistics.median(htf_times) if htf_times is not None else None
    ratio = openhtf / memory if openhtf is not None else None
    if ratio is not None:
        print(f"\nfloorflow is {ratio:.1f}x cheaper per step than OpenHTF")
    verdict = "met" if memory <= TARGET_US else "NOT met"
    print(f"target: <= {TARGET_US:.0f} us per step (memory record); median {memory:.2f} us ({verdict})")
    print(
        json.dumps(
            {
                "us_per_step_memory": round(memory, 2),
                "openhtf_us_per_phase": round(openhtf, 2) if openhtf is not None else None,
                "ratio_vs_openhtf": round(ratio, 2) if ratio is not None else None,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
