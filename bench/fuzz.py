"""Fuzz ``floorflow validate`` with mutated recipes: it must answer every one with diagnostics, never a traceback.

Inputs come from tests/fuzzkit.py: the recipes of workflows/ and tests/recipes/ mutated on the
YAML tree, on the bytes and in ``extends:``, each rebuilt exactly from (seed, index). Each input is
written to a file of its own and checked by the real CLI entry point, ``engine.cli.main``, in
worker processes (one per core, forked once, each input in the same process one after the other:
10,000 fresh interpreters would take most of an hour); every ``--sample-every``-th input is also
run through the installed ``floorflow`` console script, and every tenth is followed in the same
command by a recipe with one error, which must still be reported; every tenth is validated with
``--format json``, whose entries are judged as the text lines are. What counts as a failure is in
tests/fuzzrun.py: a traceback, a line that is neither a well-placed one-line diagnostic nor the
summary, an exit code other than 0, 1 or 2 (a hang is 'timeout', a worker killed by a signal
'died'). A hang the alarm cannot break is killed from outside and its worker replaced.

    python bench/fuzz.py [--inputs N] [--seed S] [--workers N] [--show K] [--dump DIR]
                         [--only I ...] [--sample-every N] [--timeout S]

Progress and the failures grouped by kind are printed first (``--show K`` prints the first K
failing inputs with how each was made and what floorflow printed; ``--only I`` runs just those
indices, to reproduce one). The last line printed is one JSON object:
``{"inputs": …, "tracebacks": …, "bad_lines": …, "exit_codes": {code: count}, "max_s": …}``:
inputs with a traceback, bad lines in all, and the slowest single in-process validate in seconds.
Exit status: 0 when nothing failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzzkit import FuzzInput, dump_input, make_input, prepare_dir, write_input
from fuzzrun import Outcome, Verdict, judge, run_in_process, run_subprocess

DUMP_AT_MOST = 200
KEEP_OUTPUT = 2000
"""Characters of a failing input's output kept for --show and --dump."""


@dataclass
class Result:
    index: int
    exit: str
    seconds: float
    traceback: bool
    bad_lines: int
    kinds: list[str]
    """The kinds of failure met (see fuzzrun.Verdict.kinds); empty when the input passed."""
    report: str = ""
    """For a failing input: how it ran and what it printed."""


@dataclass
class Totals:
    inputs: int = 0
    tracebacks: int = 0
    bad_lines: int = 0
    max_s: float = 0.0
    slowest: int = -1
    failing: int = 0
    exit_codes: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    first_of_kind: dict[str, int] = field(default_factory=dict)
    failures: list[Result] = field(default_factory=list)

    def add(self, result: Result) -> None:
        self.inputs += 1
        self.tracebacks += result.traceback
        self.bad_lines += result.bad_lines
        if result.seconds > self.max_s:
            self.max_s, self.slowest = result.seconds, result.index
        self.exit_codes[result.exit] += 1
        for kind in result.kinds:
            self.kinds[kind] += 1
            self.first_of_kind.setdefault(kind, result.index)
        if result.kinds:
            self.failing += 1
            self.failures.append(result)

    def figures(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "tracebacks": self.tracebacks,
            "bad_lines": self.bad_lines,
            "exit_codes": dict(sorted(self.exit_codes.items())),
            "max_s": round(self.max_s, 3),
        }


def _report(fuzz: FuzzInput, verdicts: list[Verdict]) -> str:
    parts = [fuzz.describe()]
    for verdict in verdicts:
        outcome: Outcome = verdict.outcome
        parts.append(f"-- {outcome.via}: exit {outcome.exit}, {outcome.seconds:.2f} s")
        parts.extend(f"   bad line: {line[:300]!r}" for line in verdict.bad_lines[:5])
        text = (outcome.escaped or "") + outcome.stdout + outcome.stderr
        parts.append(text[:KEEP_OUTPUT] + ("…" if len(text) > KEEP_OUTPUT else ""))
    return "\n".join(parts)


def check_one(directory: Path, seed: int, index: int, sample_every: int, timeout_s: float) -> Result:
    """Make input ``index``, run it in process (and as a subprocess when sampled), judge it."""
    fuzz = make_input(seed, index)
    written = write_input(directory, fuzz)
    try:
        outcome = run_in_process(directory, fuzz.args, timeout_s)
        verdicts = [judge(outcome, directory, written, fuzz.after, fuzz.json_output)]
        if sample_every and index % sample_every == 0:
            outcome = run_subprocess(directory, fuzz.args, timeout_s)
            verdicts.append(judge(outcome, directory, written, fuzz.after, fuzz.json_output))
    finally:
        for path in written:
            path.unlink(missing_ok=True)
    first = verdicts[0]
    bad = list(first.bad_lines)
    for other in verdicts[1:]:
        bad += [line for line in other.bad_lines if line not in bad]
        if other.outcome.exit != first.outcome.exit:
            bad.append(f"<{other.outcome.via} exit {other.outcome.exit}, in process {first.outcome.exit}>")
            other.bad_lines.append(bad[-1])
    kinds = list(dict.fromkeys(kind for verdict in verdicts for kind in verdict.kinds()))
    traceback = any(v.traceback is not None for v in verdicts)
    report = _report(fuzz, verdicts) if kinds else ""
    return Result(index, first.outcome.exit, first.outcome.seconds, traceback, len(bad), kinds, report)


def _worker(conn: Connection, directory: Path, seed: int, sample_every: int, timeout_s: float) -> None:
    prepare_dir(directory)
    while True:
        index = conn.recv()
        if index is None:
            return
        conn.send(check_one(directory, seed, index, sample_every, timeout_s))


class Pool:
    """Workers fed one index at a time; a worker that hangs past the alarm or dies is replaced."""

    def __init__(self, workers: int, root: Path, args: argparse.Namespace) -> None:
        self.root, self.args = root, args
        self.context = multiprocessing.get_context("fork")  # the engine imported once, shared
        self.procs: dict[int, tuple[BaseProcess, Connection]] = {}
        self.busy: dict[int, tuple[int, float]] = {}
        for slot in range(workers):
            self._start(slot)

    def _start(self, slot: int) -> None:
        parent, child = self.context.Pipe()
        directory = self.root / f"w{slot}-{time.monotonic_ns()}"
        directory.mkdir()
        args = (child, directory, self.args.seed, self.args.sample_every, self.args.timeout)
        proc = self.context.Process(target=_worker, args=args, daemon=True)
        proc.start()
        child.close()
        self.procs[slot] = (proc, parent)

    def run(self, indices: list[int], totals: Totals, progress: int) -> None:
        pending = list(reversed(indices))
        started = time.perf_counter()
        next_progress = progress
        while pending or self.busy:
            for slot, (_, conn) in self.procs.items():
                if slot not in self.busy and pending:
                    index = pending.pop()
                    conn.send(index)
                    self.busy[slot] = (index, time.perf_counter())
            ready = wait([self.procs[s][1] for s in self.busy], timeout=1.0)
            for slot in [s for s in list(self.busy) if self.procs[s][1] in ready]:
                index, _ = self.busy.pop(slot)
                try:
                    totals.add(self.procs[slot][1].recv())
                except EOFError:
                    totals.add(self._lost(slot, index, "died"))
            for slot, (index, since) in list(self.busy.items()):
                if time.perf_counter() - since > self.args.timeout + 30:
                    self.procs[slot][0].kill()
                    del self.busy[slot]
                    totals.add(self._lost(slot, index, "timeout"))
            if totals.inputs >= next_progress:
                next_progress += progress
                _progress(totals, started)

    def _lost(self, slot: int, index: int, how: str) -> Result:
        proc, conn = self.procs[slot]
        proc.join(5)
        code = f"died {proc.exitcode}" if how == "died" else "timeout"
        conn.close()
        self._start(slot)
        fuzz = make_input(self.args.seed, index)
        seconds = self.args.timeout if how == "timeout" else 0.0
        return Result(index, code, seconds, False, 0, [f"exit {code}"], fuzz.describe() + f"\n-- in-process: {code}")

    def close(self) -> None:
        for proc, conn in self.procs.values():
            with contextlib.suppress(OSError):
                conn.send(None)
            proc.join(10)
            if proc.is_alive():
                proc.kill()


def _progress(totals: Totals, started: float) -> None:
    print(
        f"{totals.inputs} inputs, {totals.tracebacks} tracebacks, {totals.bad_lines} bad lines, "
        f"{totals.failing} failing, {time.perf_counter() - started:.0f} s",
        flush=True,
    )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Fuzz `floorflow validate` with mutated recipes.")
    parser.add_argument("--inputs", type=int, default=10_000, metavar="N", help="inputs to run (default 10000)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed: the same seed, the same inputs")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N", help="default: one per core")
    parser.add_argument("--show", type=int, default=0, metavar="K", help="print the first K failing inputs")
    parser.add_argument(
        "--dump",
        type=Path,
        metavar="DIR",
        help="write failing inputs into DIR (the first of each kind, at most 200 in all)",
    )
    parser.add_argument("--only", type=int, nargs="+", metavar="I", help="run only these indices")
    parser.add_argument("--sample-every", type=int, default=50, metavar="N", help="also as a subprocess (0: never)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds before an input hangs")
    args = parser.parse_args(argv)
    if args.inputs < 1 or args.workers < 1 or args.timeout <= 0:
        parser.error("--inputs and --workers must be at least 1, --timeout positive")
    return args


def _print_failures(totals: Totals, args: argparse.Namespace) -> None:
    if totals.kinds:
        print(f"{totals.failing} failing inputs; kinds of failure (inputs, first index, kind):")
        for kind, count in totals.kinds.most_common():
            print(f"  {count:6d}  {totals.first_of_kind[kind]:6d}  {kind}")
    failures = sorted(totals.failures, key=lambda r: r.index)
    for result in failures[: args.show]:
        print(f"\n=== index {result.index} (seed {args.seed}): {', '.join(result.kinds)}\n{result.report}")
    if args.dump is not None:
        # The first input of each kind, then the first failing ones up to DUMP_AT_MOST.
        firsts = set(totals.first_of_kind.values())
        chosen = [r for r in failures if r.index in firsts]
        chosen += [r for r in failures if r.index not in firsts][: max(DUMP_AT_MOST - len(chosen), 0)]
        for result in chosen:
            target = dump_input(make_input(args.seed, result.index), args.dump)
            (target / "output.txt").write_text(result.report + "\n", encoding="utf-8")
        print(f"{len(chosen)} failing inputs written to {args.dump}")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    import engine.cli  # noqa: F401  imported before forking, so each worker starts warm
    from engine.registry import Registry

    Registry.discover()
    indices = args.only if args.only else list(range(args.inputs))
    totals = Totals()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="floorflow-fuzz-") as tmp:
        pool = Pool(min(args.workers, len(indices)), Path(tmp), args)
        try:
            pool.run(indices, totals, progress=max(len(indices) // 10, 1))
        finally:
            pool.close()
    elapsed = time.perf_counter() - started
    print(f"{totals.inputs} inputs in {elapsed:.0f} s ({totals.inputs / elapsed:.0f}/s), seed {args.seed}")
    print(f"slowest: index {totals.slowest}, {totals.max_s:.2f} s")
    _print_failures(totals, args)
    print(json.dumps(totals.figures()))
    return 1 if totals.failing else 0


if __name__ == "__main__":
    sys.exit(main())
