"""Line events (``--events mqtt://…``): how late the line hears, how fast an outbox drains, what a step pays.

Every figure runs against a Mosquitto of the benchmark's own (``bench/broker.py``: ``mosquitto -c CONF``
on a free loopback port, nothing persisted), with floorflow's own publishing path: the store's outbox
written in the transaction of each record, published by ``engine.linebus.station.StationEvents`` (the
Publisher and its MqttSink, paho-mqtt, QoS 1, in a process of its own beside the station, woken after
each commit) as ``floorflow run`` and ``floorflow station`` build it.

- ``publish_latency_ms_p99``: ``floorflow station workflows/sphere-module.yaml --station fixture --sim
  --slots 16 --sim-every 0.05 --sim-config PACE --events mqtt://127.0.0.1:PORT/bench --store
  sqlite:///…`` as a subprocess, its simulated USB at the hardware pace of ``bench/station.py``
  (``usb_mb_s: 0.5``). A paho-mqtt subscriber here (QoS 1) stamps each AttemptEnded it receives with
  its wall-clock time less the payload's ``MessageBody.TestEndTime`` (the attempt's end, as the station
  stamped it): the attempt's record written behind and committed, the publisher woken, the broker's
  round trip (this process's own objects frozen out of the collector's full passes, so that a pause of the
  benchmark's is not counted as the station's). Counted for 10 s from ``WARM_S`` (3 s, as ``bench/screen.py``
  waits) after all 16 sockets have started a unit: the station warm, its publisher connected. Goal: at most
  20 ms, the median of the rounds' p99s.
- ``outbox_drain_per_s``: a SQLite store told the line is given 50,000 attempts (``store.add``, as a
  station records them: each attempt row and its AttemptEnded in one transaction) while no broker is
  there; each round a copy of that file, a fresh broker and a subscriber in a process of its own (as a
  line's consumer is), then its line events started as the CLI starts them (``StationEvents``). Timed
  from their start (the publisher's process starting and connecting included) until the subscriber
  has received all 50,000 and the outbox reads every one published. Goal: at least 5,000 events a
  second, the median of the rounds.
- ``overhead_us_per_step``: ``bench/overhead.py``'s ``floorflow_timer`` in its ``cli`` configuration
  (a SQLite file store, the live view entered around each run, ``timeout_s`` on every stage), twice in
  one process: without events, and with the store told the line and its events published to the
  broker as the CLI publishes them (``StationEvents``). Each round runs both (alternating which goes
  first); a run is timed until its unit's last attempt is committed, and before the next run starts
  the events configuration's publisher is let finish (how long that took after the run is printed).
  The figure is the median of the rounds' differences, in microseconds per step. Goal: at most 10.

    python bench/events.py [--rounds N] [--seconds S] [--events N] [--steps N] [--overhead-rounds N] [--quick]

``--quick`` is a smoke run (one latency round of 3 s, 10,000 events to drain, 200 steps in 3 rounds;
under ~40 s). The last line printed is one JSON object: ``publish_latency_ms_p99``,
``outbox_drain_per_s``, ``overhead_us_per_step``, ``us_per_step_cli``, ``us_per_step_cli_events``,
``rounds``, a ``…_met`` boolean for each goal and ``goals_met``; the exit status is 1 when a goal is not
met (or could not be measured).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import orjson
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead  # bench/overhead.py, beside this file
import station  # bench/station.py
from broker import BrokerMissing, Mosquitto, Subscriber

from engine.context import MeasurementRecord
from engine.linebus.sink import sink_for
from engine.linebus.station import StationEvents
from engine.messages import Kind, Source
from engine.outcome import Outcome, Verdict
from engine.record import Attempt, RecipeRef
from engine.run.console import progress_for
from engine.store import SqlStore, open_store

LATENCY_GOAL_MS = 20.0
DRAIN_GOAL_PER_S = 5000.0
OVERHEAD_GOAL_US = 10.0
PREFIX = "bench"
SOCKETS = station.SOCKETS
WARM_S = 3.0
"""Seconds from the sockets all busy to the latency window: the station's first units are left out."""
PATIENCE_S = 120.0
"""The longest any wait of the benchmark lasts before it says what it waited for and stops."""
ATTEMPT_ENDED = "/" + Kind.ATTEMPT_ENDED.value
UNIT_STARTED = "/" + Kind.UNIT_STARTED.value


def percentile(values: list[float], p: float) -> float:
    return station.percentile(values, p)


def _until(done: Callable[[], bool], what: str, patience_s: float = PATIENCE_S) -> None:
    deadline = time.monotonic() + patience_s
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"error: waited {patience_s:g} s for {what}")
        time.sleep(0.002)


# -- publish latency: a station under --events, heard by a subscriber -------------------------------------


class Heard:
    """What the latency subscriber heard: when each socket first started a unit, and each AttemptEnded's lag."""

    def __init__(self) -> None:
        self.sockets: set[int] = set()
        self.busy_at: float | None = None
        """When every socket had started a unit."""
        self.lags: list[tuple[float, float]] = []
        """(received, received less TestEndTime) of each AttemptEnded, in seconds."""

    def __call__(self, topic: str, payload: bytes, when: float) -> None:
        if topic.endswith(ATTEMPT_ENDED):
            ended = datetime.fromisoformat(orjson.loads(payload)["MessageBody"]["TestEndTime"]).timestamp()
            self.lags.append((when, when - ended))
        elif topic.endswith(UNIT_STARTED) and self.busy_at is None:
            self.sockets.add(orjson.loads(payload)["MessageBody"]["PositionNumber"])
            if len(self.sockets) >= SOCKETS:
                self.busy_at = when

    def within(self, seconds: float) -> list[float]:
        """The lags (ms) of the AttemptEnded received in the ``seconds`` from ``WARM_S`` after the sockets were busy."""
        assert self.busy_at is not None
        start = self.busy_at + WARM_S
        end = start + seconds
        return [lag * 1000 for received, lag in list(self.lags) if start <= received < end]


def latency_round(n: int, seconds: float, tmp: Path, paced: Path) -> list[float]:
    """One ``floorflow station --events`` run against a fresh broker; the lags (ms) heard in its window."""
    heard = Heard()
    with Mosquitto(tmp / f"broker-latency-{n}") as broker, Subscriber(broker.port, PREFIX, heard):
        command = [*station.floorflow_command(), "station", str(station.RECIPE), "--station", station.STATION]
        command += ["--sim", "--slots", str(SOCKETS), "--sim-every", "0.05", "--sim-config", str(paced)]
        command += ["--events", broker.url(PREFIX), "--store", f"sqlite:///{tmp}/latency-{n}.db"]
        err = tmp / f"latency-{n}.err"
        with err.open("wb") as stderr:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
            try:
                _until(lambda: heard.busy_at is not None or process.poll() is not None, "16 busy sockets")
                if heard.busy_at is not None:
                    time.sleep(max(0.0, heard.busy_at + WARM_S + seconds - time.time()))
            finally:
                process.send_signal(signal.SIGTERM)
                code = process.wait(60)
    problems = err.read_text(errors="replace")
    if heard.busy_at is None or "warning" in problems or "error" in problems:
        raise SystemExit(f"error: the station under --events ended {code}:\n{problems[-2000:]}")
    lags = heard.within(seconds)
    if not lags:
        raise SystemExit(f"error: no AttemptEnded heard in the {seconds:g} s after the sockets were busy")
    print(
        f"latency round {n + 1}: {len(lags)} AttemptEnded in {seconds:g} s, 16 sockets busy for {WARM_S:g} s: "
        f"p50 {percentile(lags, 50):.2f} ms, p99 {percentile(lags, 99):.2f} ms, max {max(lags):.2f} ms",
        flush=True,
    )
    return lags


def publish_latency(rounds: int, seconds: float, tmp: Path) -> list[float]:
    """Each round's p99 (ms)."""
    paced = tmp / "hardware-pace.yaml"
    paced.write_text(station.HARDWARE_PACE)
    return [percentile(latency_round(n, seconds, tmp, paced), 99) for n in range(rounds)]


# -- the outbox draining after an outage ----------------------------------------------------------------


DRAIN_SOURCE = Source("bench-line", station.STATION)
RECIPE = RecipeRef("sphere-module", 1, "0" * 64)


def attempts(count: int) -> list[Attempt]:
    """``count`` attempts as a 16-socket station records them: each unit's stages in turn, two measurements each."""
    now = time.time()
    made = []
    for i in range(count):
        unit, stage = divmod(i, len(station.STAGES))
        started = now + i * 0.001
        measured = (
            MeasurementRecord("current_ma", 41.5 + stage, Verdict.PASS, "mA", 10.0, 80.0),
            MeasurementRecord("voltage_v", 3.29, Verdict.PASS, "V", 3.2, 3.4),
        )
        made.append(
            Attempt(
                f"SPH{unit:07d}", station.STAGES[stage], station.STAGES[stage], 1, Outcome.PASS, started,
                started + 0.0005, RECIPE, "LOT-1", station.STATION, unit % SOCKETS + 1, "bench", measured,
            )
        )  # fmt: skip
    return made


def fill(path: Path, count: int) -> float:
    """A store at ``path`` holding ``count`` unpublished AttemptEnded in its outbox; the seconds it took."""
    made = attempts(count)
    start = time.perf_counter()
    with open_store(f"sqlite:///{path}") as store:
        store.tell_line(DRAIN_SOURCE)
        for attempt in made:
            store.add(attempt)
        store.flush()
        if store.outbox_first_unpublished() == 0 or len(store.outbox_after(0, count + 1)) != count:
            raise SystemExit(f"error: the outbox does not hold the {count} events written")
    return time.perf_counter() - start


def drain_round(n: int, template: Path, count: int, tmp: Path) -> float:
    """One drain of a copy of ``template``'s outbox through a fresh broker; events a second."""
    path = tmp / f"drain-{n}.db"
    shutil.copyfile(template, path)
    with (
        Mosquitto(tmp / f"broker-drain-{n}") as broker,
        _Consumer(broker.port, count) as consumer,
        open_store(f"sqlite:///{path}") as store,
    ):
        store.tell_line(DRAIN_SOURCE)
        publishing = _events(store, f"sqlite:///{path}", broker.url(PREFIX), DRAIN_SOURCE)
        started = time.time()
        publishing.start()
        first, heard = consumer.heard()
        _until(lambda: _published(store), "the outbox to read every event published")
        elapsed = time.time() - started
        error = publishing.stop()
    if error is not None:
        raise SystemExit(f"error: the publisher stopped: {error}")
    print(
        f"drain round {n + 1}: {count} events in {elapsed:.2f} s ({count / elapsed:.0f}/s); the first heard "
        f"{(first - started) * 1000:.0f} ms after the publisher started, the last {heard - started:.2f} s after, "
        f"all marked published {(started + elapsed - heard) * 1000:.0f} ms later",
        flush=True,
    )
    return count / elapsed


class _Consumer:
    """The line's consumer of a drain: ``bench/broker.py`` counting the AttemptEnded in a process of its own
    (as the line's consumers are)."""

    def __init__(self, port: int, count: int) -> None:
        script = Path(__file__).resolve().parent / "broker.py"
        command = [sys.executable, str(script), str(port), PREFIX, Kind.ATTEMPT_ENDED.value, str(count)]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        self.count = count
        self._read("subscribed")

    def heard(self) -> tuple[float, float]:
        """When the first and the last of the events came (wall-clock times)."""
        words = self._read("heard").split()
        return float(words[1]), float(words[2])

    def _read(self, what: str) -> str:
        assert self.process.stdout is not None
        timer = threading.Timer(PATIENCE_S, self.process.kill)
        timer.start()
        try:
            line = self.process.stdout.readline()
        finally:
            timer.cancel()
        if not line.startswith(what):
            raise SystemExit(f"error: the consumer did not say {what!r} (all {self.count} heard) in {PATIENCE_S:g} s")
        return line

    def __enter__(self) -> _Consumer:
        return self

    def __exit__(self, *_: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def _published(store: SqlStore) -> bool:
    """Whether every event in the outbox is marked published (then the first unpublished is one past the last)."""
    first = store.outbox_first_unpublished()
    return first > 0 and not store.outbox_after(first - 1, 1)


def outbox_drain(rounds: int, count: int, tmp: Path) -> list[float]:
    """Each round's events a second."""
    template = tmp / "outage.db"
    took = fill(template, count)
    print(f"outage: {count} AttemptEnded written to the outbox with their attempts in {took:.2f} s", flush=True)
    return [drain_round(n, template, count, tmp) for n in range(rounds)]


# -- what events add to a step ------------------------------------------------------------------------


OVERHEAD_SOURCE = Source("bench-line", "bench")


def _events(store: SqlStore, store_url: str, url: str, source: Source) -> StationEvents:
    """The store's line events as ``floorflow station --events URL`` publishes them (not yet started)."""
    return StationEvents(store, sink_for(url), source, store_url, url, 5.0)


def overhead_rounds(steps: int, rounds: int, tmp: Path) -> tuple[list[float], list[float], list[float]]:
    """µs per step without and with events, round by round, and each events run's publishing tail (ms)."""
    plain: list[float] = []
    told: list[float] = []
    tails: list[float] = []
    with (
        open(os.devnull, "w") as devnull,
        Mosquitto(tmp / "broker-overhead") as broker,
        open_store(f"sqlite:///{tmp}/cli.db") as without,
        open_store(f"sqlite:///{tmp}/cli-events.db") as with_events,
    ):
        live = progress_for(True, console=Console(file=devnull, force_terminal=True, width=120), slots=1)
        events = _events(with_events, f"sqlite:///{tmp}/cli-events.db", broker.url(PREFIX), OVERHEAD_SOURCE)
        events.start()
        timers = {
            "cli": overhead._entered(
                live, overhead.floorflow_timer(steps, without, subscribers=[live], timeout_s=overhead.TIMEOUT_S)
            ),
            "cli_events": overhead._entered(
                live, overhead.floorflow_timer(steps, with_events, subscribers=[live], timeout_s=overhead.TIMEOUT_S)
            ),
        }
        try:
            for k in range(rounds):
                for name in ("cli", "cli_events") if k % 2 == 0 else ("cli_events", "cli"):
                    us = timers[name](f"{name.upper()}{k:04d}")
                    if name == "cli":
                        plain.append(us)
                        continue
                    told.append(us)
                    ran = time.perf_counter()
                    _until(lambda: _published(with_events), "the publisher to publish the run's events")
                    tails.append((time.perf_counter() - ran) * 1000)
        finally:
            error = events.stop()
    if error is not None:
        raise SystemExit(f"error: the publisher stopped: {error}")
    return plain, told, tails


# -- the figures ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="latency and drain rounds (default: 5)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each latency round's window (default: 10)")
    parser.add_argument("--events", type=int, default=50_000, help="events queued by the outage (default: 50000)")
    parser.add_argument("--steps", type=int, default=1000, help="steps per overhead run (default: 1000)")
    parser.add_argument("--overhead-rounds", type=int, default=15, help="overhead rounds (default: 15)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: one round of 3 s, 10,000 events, 200 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.events, args.steps, args.overhead_rounds = 1, 3.0, 10_000, 200, 3
    if min(args.rounds, args.events, args.steps, args.overhead_rounds) < 1 or args.seconds <= 0:
        parser.error("--rounds, --events, --steps and --overhead-rounds at least 1, --seconds more than 0")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    gc.freeze()  # the subscriber stamps arrivals in this process: a full collection here is no station's latency
    with tempfile.TemporaryDirectory(prefix="floorflow-events-") as name:
        tmp = Path(name)
        try:
            latency = publish_latency(args.rounds, args.seconds, tmp)
            drains = outbox_drain(args.rounds, args.events, tmp)
            plain, told, tails = overhead_rounds(args.steps, args.overhead_rounds, tmp)
        except BrokerMissing as exc:
            print(f"not measured: {exc}")
            latency, drains, plain, told, tails = [], [], [], [], []
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return report(args, latency, drains, plain, told, tails)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def report(
    args: argparse.Namespace,
    latency: list[float],
    drains: list[float],
    plain: list[float],
    told: list[float],
    tails: list[float],
) -> int:
    """Print the figures against their goals, then the JSON line; the exit status (1: a goal not met)."""
    latency_ms, drain_per_s = _median(latency), _median(drains)
    overhead_us = _median([t - p for p, t in zip(plain, told, strict=True)])
    plain_us, told_us = _median(plain), _median(told)
    if plain:
        print(
            f"overhead, {args.steps} steps, {len(plain)} interleaved rounds: cli {plain_us:.2f} us/step, "
            f"cli with events {told_us:.2f} us/step (medians); publishing ended a median "
            f"{statistics.median(tails):.1f} ms after a run's last commit (max {max(tails):.1f} ms)"
        )
    met = {
        "publish_latency_met": latency_ms is not None and latency_ms <= LATENCY_GOAL_MS,
        "outbox_drain_met": drain_per_s is not None and drain_per_s >= DRAIN_GOAL_PER_S,
        "overhead_met": overhead_us is not None and overhead_us <= OVERHEAD_GOAL_US,
    }
    lines = [
        ("publish_latency_ms_p99, 16 sockets busy", latency_ms, f"<= {LATENCY_GOAL_MS:g}", "publish_latency_met"),
        (f"outbox_drain_per_s, {args.events} queued", drain_per_s, f">= {DRAIN_GOAL_PER_S:g}", "outbox_drain_met"),
        ("overhead_us_per_step, events less none", overhead_us, f"<= {OVERHEAD_GOAL_US:g}", "overhead_met"),
    ]
    for label, value, goal, key in lines:
        shown = "not measured" if value is None else f"{value:.2f}"
        print(f"{label}: {shown} (goal {goal}: {'met' if met[key] else 'NOT met'})")
    goals_met = all(met.values())
    figures = {
        "publish_latency_ms_p99": latency_ms,
        "outbox_drain_per_s": None if drain_per_s is None else round(drain_per_s),
        "overhead_us_per_step": overhead_us,
        "us_per_step_cli": plain_us,
        "us_per_step_cli_events": told_us,
        "rounds": {"latency": args.rounds, "drain": args.rounds, "overhead": args.overhead_rounds},
        "events_queued": args.events,
        **met,
        "goals_met": goals_met,
    }
    print(json.dumps(figures))
    return 0 if goals_met else 1


if __name__ == "__main__":
    sys.exit(main())
