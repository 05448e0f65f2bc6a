"""Per-step overhead of the engine, next to OpenHTF's per-phase overhead, in one process.

floorflow: a generated recipe of N trivial stages, each recording one measurement ``v`` judged
against ``limits: {min: 0, max: 2}``, run by one ``StationRunner`` per configuration (a null Line,
the simulated operator, moves made by the flow's ``transitions`` machine), a fresh unit each run.
Two configurations are the goals':

``memory``: the store a dry run keeps in memory (``open_store("sqlite://")``), no subscriber, no
``timeout_s`` (no step watched). ``us_per_step_memory`` (goal: at most 15).

``cli``: what ``floorflow run`` does on a terminal: a SQLite store on a file opened as the CLI opens it
(``engine.store.open_store("sqlite:///<tmp>/bench.db")``), the live view the CLI attaches
(``engine.run.console.progress_for(True, ...)``, redrawing from its own thread, to a terminal console
writing to /dev/null) entered around each of its runs, as the CLI enters it around a run, and ``timeout_s``
on every stage, so every step is watched by the run's watchdog (it runs in the slot's thread, as every
step does).
``ratio_vs_openhtf_cli`` (goal: at least 20).

Between them, to show what costs what: ``file`` (the SQLite file, nothing else) and ``file_live`` (the
file and the live view, no step watched).

OpenHTF: the equivalent test, N phases each measuring ``v`` with
``htf.measures(htf.Measurement('v').in_range(0, 2))``, run by ``htf.Test(*phases).execute(test_start=...)``
with no output callbacks and OpenHTF's console output and logging silenced. It runs every phase in a
thread of its own.

    python bench/overhead.py [--steps N] [--rounds N]

Each round runs every configuration once and OpenHTF once, one right after the other, so that a
round compares runs made under the same load on the host. Each configuration is timed as it would run
alone in a ``floorflow run`` process: the other configurations' stores are open but idle (their threads
wait on an empty queue), and the live view redraws only while a configuration that has it runs. A run's
figure is its wall time (until the unit's last attempt is committed) over N, in microseconds per step
(phase). Figures are medians
of the rounds; each ``ratio_vs_openhtf*`` is the median of the rounds' ratios, OpenHTF's time over
floorflow's. The last line printed is one JSON object: ``us_per_step_memory``, ``us_per_step_cli``,
``us_per_step_file``, ``us_per_step_file_live``, ``openhtf_us_per_phase``, ``ratio_vs_openhtf``
(OpenHTF over ``memory``), ``ratio_vs_openhtf_cli``, and ``goals_met``. The OpenHTF figures are null
when openhtf cannot be imported (``pip install -e '.[bench]'``). The exit status is 1 when a goal
is not met (or cannot be measured): the benchmark can fail.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from engine.context import StepContext
from engine.events import Subscriber
from engine.flow import Flow
from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.run.console import Progress, progress_for
from engine.run.operator import SimOperator
from engine.run.runner import StationRunner, UnitSpec
from engine.step import StepType, param
from engine.store import MEMORY, open_store
from engine.store.history import History

TARGET_US = 15.0
"""The engine's budget per step: the store in memory, no subscriber, no step watched."""
TARGET_RATIO_CLI = 20.0
"""How many times cheaper per step than OpenHTF the engine must be as ``floorflow run`` runs it."""
TIMEOUT_S = 30.0
"""The ``timeout_s`` of every stage in the ``cli`` configuration (never reached)."""

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


def recipe_text(steps: int, timeout_s: float | None = None) -> str:
    timeout = "" if timeout_s is None else f", timeout_s: {timeout_s:g}"
    stage = "  - {{id: s{i}, step: " + STEP_NAME + timeout + ", measurements: {{v: {{limits: {{min: 0, max: 2}}}}}}}}\n"
    return "recipe: bench-overhead\nversion: 1\nstages:\n" + "".join(stage.format(i=i) for i in range(steps))


def build_flow(steps: int, registry: Registry, timeout_s: float | None = None) -> Flow:
    with tempfile.TemporaryDirectory(prefix="floorflow-bench-") as tmp:
        path = Path(tmp) / "overhead.yaml"
        path.write_text(recipe_text(steps, timeout_s))
        flow, problems = check_recipe(path, registry)
    if flow is None:
        raise SystemExit("error: the generated recipe does not compile:\n" + "\n".join(str(p) for p in problems))
    return flow


def floorflow_timer(
    steps: int,
    history: History | None = None,
    *,
    subscribers: Sequence[Subscriber] = (),
    timeout_s: float | None = None,
) -> Callable[[str], float]:
    """A runner of the generated recipe: each call runs one fresh unit through it, in microseconds per step.

    The record is ``history`` (by default a store in memory, ``sqlite://``); the time runs until the unit's
    last attempt is committed. With ``timeout_s``, every stage has that timeout.
    """
    registry = Registry()  # private: only the benchmark's step type, no entry points
    registry.register(_Measure, origin="bench/overhead.py")
    flow = build_flow(steps, registry, timeout_s)
    record = open_store(MEMORY) if history is None else history
    flush = getattr(record, "flush", None)
    # One runner for every run: it attaches its slot models to the flow's state machine once, for the
    # station's life, not per unit (attaching is O(states)); what is timed is the per-unit, per-step work.
    runner = StationRunner(flow, registry, _NullLine(), SimOperator(), record, subscribers)

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


CONFIGS = ("memory", "file", "file_live", "cli")


@contextmanager
def configurations(steps: int) -> Iterator[dict[str, Callable[[str], float]]]:
    """A timer of each floorflow configuration (see the module's docstring), open for the benchmark."""
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="floorflow-bench-"))
        devnull = stack.enter_context(open(os.devnull, "w"))
        live = progress_for(True, console=Console(file=devnull, force_terminal=True, width=120), slots=1)
        stores = {name: stack.enter_context(open_store(f"sqlite:///{tmp}/{name}.db")) for name in CONFIGS[1:]}
        yield {
            "memory": floorflow_timer(steps, stack.enter_context(open_store(MEMORY))),
            "file": floorflow_timer(steps, stores["file"]),
            "file_live": _entered(live, floorflow_timer(steps, stores["file_live"], subscribers=[live])),
            "cli": _entered(live, floorflow_timer(steps, stores["cli"], subscribers=[live], timeout_s=TIMEOUT_S)),
        }


def _entered(live: Progress, timer: Callable[[str], float]) -> Callable[[str], float]:
    """``timer`` with the live view entered around each of its runs, as ``floorflow run`` enters it around its
    own: redrawing from its thread while the run is timed, and not while another configuration is."""

    def run(serial: str) -> float:
        with live:
            return timer(serial)

    return run


def _row(name: str, times: list[float]) -> str:
    return f"{name:<44}  {statistics.median(times):>14.2f}  {times[0]:>9.2f}  {min(times):>7.2f}  {max(times):>7.2f}"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


LABELS = {
    "memory": "floorflow: store in memory (memory)",
    "file": "floorflow: SQLite file (file)",
    "file_live": "floorflow: SQLite file, live view (file_live)",
    "cli": "floorflow: file, live view, timeout_s (cli)",
}


def _table(times: dict[str, list[float]], htf_times: list[float] | None, htf_label: str) -> None:
    print(f"{'engine':<44}  {'median us/step':>14}  {'1st round':>9}  {'min':>7}  {'max':>7}")
    print(f"{'-' * 44}  {'-' * 14}  {'-' * 9}  {'-' * 7}  {'-' * 7}")
    for name in CONFIGS:
        print(_row(LABELS[name], times[name]))
    if htf_times is not None:
        print(_row(f"{htf_label} (a thread per phase)", htf_times))
    else:
        print(f"\nnote: {htf_label}; its figures are null")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Per-step overhead: floorflow's StationRunner next to OpenHTF.")
    parser.add_argument("--steps", type=int, default=1000, metavar="N", help="steps (phases) per run (default: 1000)")
    parser.add_argument("--rounds", type=int, default=9, metavar="N", help="rounds, one run of each (default: 9)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    print(f"{args.steps} trivial steps, one range-checked measurement each; {args.rounds} interleaved rounds\n")
    htf, htf_label = openhtf_timer(args.steps)
    times: dict[str, list[float]] = {name: [] for name in CONFIGS}
    htf_times: list[float] = []
    ratios: dict[str, list[float]] = {"memory": [], "cli": []}
    with configurations(args.steps) as timers:
        for k in range(args.rounds):
            for name in CONFIGS:
                times[name].append(timers[name](f"{name.upper()}{k:04d}"))
            if htf is not None:
                htf_times.append(htf())
                for name in ratios:
                    ratios[name].append(htf_times[-1] / times[name][-1])

    _table(times, htf_times if htf is not None else None, htf_label)

    memory, cli = statistics.median(times["memory"]), statistics.median(times["cli"])
    openhtf = statistics.median(htf_times) if htf_times else None
    ratio = statistics.median(ratios["memory"]) if htf_times else None
    ratio_cli = statistics.median(ratios["cli"]) if htf_times else None
    memory_met = memory <= TARGET_US
    cli_met = ratio_cli is not None and ratio_cli >= TARGET_RATIO_CLI
    print()
    print(f"goal: <= {TARGET_US:g} us per step (memory); median {memory:.2f} us: {'met' if memory_met else 'NOT met'}")
    shown = "not measured" if ratio_cli is None else f"median of the rounds {ratio_cli:.1f}x"
    print(
        f"goal: >= {TARGET_RATIO_CLI:g}x cheaper than OpenHTF as floorflow run runs (cli); {shown}: "
        f"{'met' if cli_met else 'NOT met'}"
    )
    print(
        json.dumps(
            {
                "us_per_step_memory": round(memory, 2),
                "us_per_step_cli": round(cli, 2),
                "us_per_step_file": round(statistics.median(times["file"]), 2),
                "us_per_step_file_live": round(statistics.median(times["file_live"]), 2),
                "openhtf_us_per_phase": _rounded(openhtf),
                "ratio_vs_openhtf": _rounded(ratio),
                "ratio_vs_openhtf_cli": _rounded(ratio_cli),
                "goals_met": memory_met and cli_met,
            }
        )
    )
    return 0 if memory_met and cli_met else 1


if __name__ == "__main__":
    sys.exit(main())
