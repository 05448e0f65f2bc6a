"""Fault injection: ``floorflow run`` killed with SIGKILL at random moments, on SQLite and PostgreSQL.

A line of simulated units runs through a recipe with four irreversible stages (a storage flash, the
identity writes, an OS recovery and a lifecycle advance). Each ``floorflow run`` is a real process
(forked by ``tests/faultkit.py`` from a server that imported the engine once) and is killed with
SIGKILL at a seeded random moment of its run: during its start, in a reversible step, inside an
irreversible step before or after the device acted, or while the store commits. After every kill:

1. no committed attempt is lost: the store's (serial, stage, attempt, outcome, started) rows after a
   kill include every row seen before it;
2. no irreversible operation ran twice: the simulated devices' own counts (``counts`` in their state
   files, written with fsync on every change) of the irreversible operations are never above 1;
3. every interrupted irreversible step is quarantined: after ``store.recover()`` (in the test; after
   one kill in four the test leaves it to the next run, whose start recovers and whose claims take
   over) no intent is left without an outcome, and its unit is quarantined with a reason naming the
   stage; the next ``floorflow run`` refuses the unit and touches neither its record nor its device
   until a supervisor releases it.

A supervisor then releases each quarantined unit from what its device shows (the operation took
effect: ``done``; it did not, or only in part: ``not-done``, so the step runs again), and the next
run takes the remaining units. At the end a run without a kill ships every unit, each irreversible
operation having run exactly once on each, each unit carrying the identities the store issued it,
and a last run refuses every unit as shipped.

A killed run is judged once it is gone for the store too: on PostgreSQL the server may still be
committing the last transaction the run sent before its kill (what it commits is kept, and until its
backend ends the run holds its claims), so the checks wait until no backend of that run is left.

Every case runs with each core kept busy by a spinning process of its own (``cpu_load``): the kills
meet a loaded machine on purpose, where the store's thread, the server and the runs are all late.

The quick case (15 kills per backend) runs with every ``python -m pytest``; the full one (200 kills
per backend) is marked ``faults`` and runs only when selected: ``python -m pytest -m faults``.
Seeds are fixed; every failure names the seed, the child and its log.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from faultkit import cpu_burners

from engine.outcome import UnitStatus
from engine.store import SqlStore, open_store

RECIPE = """\
recipe: faults
version: 1
description: A line with four irreversible stages, for the fault-injection tests.
product: {name: Fault Board, sku: FB-1}
lifecycle: [Assembly, Provisioned]
images:
  os: {file: images/os.ffu, kind: ffu, platform: mobile-os, type: retail}
stations:
  line: {slots: 2, description: the one station}
stages:
  - id: inspect
    step: manual.checklist
    station: line
    with: {checks: [board_seated]}
  - id: flash_os
    step: flash.gang
    station: line
    with: {image: os, verify: true}
    irreversible: true
  - id: write_identities
    step: provision.identity
    station: line
    with: {identities: [imei, bt_mac, wifi_mac, serial]}
    irreversible: true
    allowed_until: Provisioned
  - id: recover_os
    step: device.recover
    station: line
    with: {image: os, timeout_s: 60}
    irreversible: true
  - id: advance_provisioned
    step: lifecycle.advance
    station: line
    with: {to: Provisioned}
    irreversible: true
  - id: final_check
    step: manual.checklist
    station: line
    with: {checks: [label_ok]}
"""

IRREVERSIBLE: dict[str, tuple[str, ...]] = {
    "flash_os": ("write_storage",),
    "write_identities": tuple(f"write_identity:{k}" for k in ("imei", "bt_mac", "wifi_mac", "serial")),
    "recover_os": ("recover",),
    "advance_provisioned": ("advance_lifecycle",),
}
"""Each irreversible stage and the device operations (``SimUnit.counts`` keys) it performs."""
OPERATIONS = tuple(op for ops in IRREVERSIBLE.values() for op in ops)

# The simulated timing: the device stays silent 50 ms at the start of most steps (inside an
# irreversible step that is after its intent is journaled, before the device acts), an 8 KiB image
# crosses USB at 0.1 MB/s (80 ms before the flash and the recovery take effect), and a boot takes
# 100 ms (after the recovery took effect, before its outcome is recorded). A unit takes ~0.45 s.
HANG_S = 0.05
HANGS = {"inspect": HANG_S, "flash_os": HANG_S, "write_identities": HANG_S, "advance_provisioned": HANG_S}
SIM = {"image_kib": 8, "usb_mb_s": 0.1, "boot_s": 0.1}
SLOTS = 2
ACTIVE = 4
"""Units in each run besides the quarantined ones: two rounds of the two slots, ~1.1 s with the start."""
WINDOW_S = 1.2
"""Kills land uniformly in the first WINDOW_S seconds of a run (a run that ends sooner is not killed)."""
LEAVE_RECOVERY = 0.25
"""Share of kills after which the next run, not the test, recovers what the killed one left."""
RECOVER_WAIT_S = 20.0
"""How long a killed station's PostgreSQL connection may take to leave pg_stat_activity."""

FULL_OPTION = "faults"
RUNS = {"quick": (15, 1515), "full": (200, 2002)}
"""Mode -> (SIGKILLs per backend, seed)."""
POSTGRES = "postgresql://postgres@127.0.0.1/test"


# -- the fork server -----------------------------------------------------------------------------------


class Forker:
    """The client of ``tests/faultkit.py``: runs ``floorflow`` children and kills them on time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("faultkit.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self._answer()
        assert "ready" in ready, ready

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server exited (status {self.proc.wait(10)})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the fork server failed: {answer['error']}\n{answer.get('traceback', '')}")
        return answer

    def run(self, argv: list[str], log: Path, kill_after: float | None, timeout: float = 120.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        request = {"argv": argv, "log": str(log), "kill_after": kill_after, "timeout": timeout}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(scope="module", autouse=True)
def cpu_load() -> Iterator[int]:
    """One process per core this test may use, spinning for the whole module; yields how many."""
    with cpu_burners() as cores:
        yield cores


@pytest.fixture(scope="module")
def forker() -> Iterator[Forker]:
    server = Forker()
    try:
        yield server
    finally:
        server.close()


# -- the stores ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    url: str
    options: tuple[str, ...]
    """floorflow run's options naming the store (and, for PostgreSQL, a home for the sim state)."""
    sim_state: Path


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Where]:
    if request.param == "sqlite":
        db = tmp_path / "line.db"
        url = f"sqlite:///{db}"  # an absolute path: sqlite:////tmp/...
        yield Where(url, ("--store", url), Path(f"{db}.sim-state"))
        return
    import psycopg

    try:
        admin = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL is not reachable at {POSTGRES}: {exc}"
        if os.environ.get("FLOORFLOW_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (FLOORFLOW_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    schema = f"floorflow_faults_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
            out = tmp_path / "records"
            yield Where(url, ("--store", url, "--json-out", str(out)), out / "sim-state")
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _rows(store: SqlStore, sql: str) -> list[tuple[Any, ...]]:
    """Rows the store's own connection reads (the store's API has no call for open intents or claims)."""
    return store._worker.call(lambda tx: tx.rows(sql), write=False)


def _attempts(store: SqlStore) -> Counter[tuple[Any, ...]]:
    return Counter(_rows(store, "SELECT serial, stage, attempt, outcome, started FROM attempt_records"))


def _open_intents(store: SqlStore) -> list[tuple[str, str, str]]:
    return [(s, st, h) for s, st, h in _rows(store, "SELECT serial, stage, holder FROM intents WHERE outcome IS NULL")]


def _claims(store: SqlStore) -> list[tuple[str, str]]:
    return [(s, h) for s, h in _rows(store, "SELECT serial, claimed_by FROM units WHERE claimed_by IS NOT NULL")]


def _devices(state: Path) -> dict[str, Counter[str]]:
    """Each simulated unit's operation counts, as its state file holds them."""
    found: dict[str, Counter[str]] = {}
    if not state.is_dir():
        return found
    for path in state.glob("*.json"):
        if path.name.startswith("."):  # a save a kill interrupted: never renamed into place
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        found[data["serial"]] = Counter({op: n for op, n in data["counts"].items() if op in OPERATIONS})
    return found


def _identities(state: Path, serial: str) -> dict[str, str]:
    for path in state.glob("*.json"):
        if not path.name.startswith("."):
            data = json.loads(path.read_text(encoding="utf-8"))
            if data["serial"] == serial:
                return dict(data["identities"])
    return {}


def _done(counts: Counter[str], stage: str) -> bool | None:
    """What the device shows of a stage: it took effect (True), did not (False), or only in part (None)."""
    ran = [counts[op] >= 1 for op in IRREVERSIBLE[stage]]
    return True if all(ran) else False if not any(ran) else None


# -- the line --------------------------------------------------------------------------------------------


@dataclass
class Line:
    """The units on the line, what the test knows of them, and what happened so far."""

    where: Where
    store: SqlStore
    forker: Forker
    root: Path
    seed: int
    rng: random.Random
    serials: list[str] = field(default_factory=list)
    shipped: set[str] = field(default_factory=set)
    held: dict[str, str] = field(default_factory=dict)
    """Quarantined units -> their interrupted stage, kept for one run that must refuse them."""
    seen: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    children: int = 0
    kills: int = 0
    stats: Counter[str] = field(default_factory=Counter)
    pending: dict[str, str] = field(default_factory=dict)
    """Units whose interrupted irreversible step is not yet seen quarantined -> the stage."""
    app: str | None = None
    """The PostgreSQL application name of the last run's connection (None on SQLite)."""

    def __post_init__(self) -> None:
        # Whether the test or the next run recovers after a kill: a stream of its own, so the kills'
        # moments do not depend on how many runs ended before their kill.
        self.later = random.Random(self.seed + 1)
        (self.root / "logs").mkdir(parents=True)
        self.recipe = self.root / "faults.yaml"
        self.recipe.write_text(RECIPE)

    def _committed(self, when: str, at: str) -> Counter[tuple[Any, ...]]:
        """The store's attempts now, each row seen before still among them."""
        now = _attempts(self.store)
        lost = self.seen - now
        assert not lost, f"committed attempts vanished from the store {when}: {sorted(lost)} {at}"
        self.seen = now
        return now

    def _wait_gone(self, at: str) -> None:
        """Wait until the killed run's holder is seen gone (PostgreSQL: its connection has ended)."""
        holders = {h for _, _, h in _open_intents(self.store)} | {h for _, h in _claims(self.store)}
        holders.discard(self.store.holder)
        deadline = time.monotonic() + RECOVER_WAIT_S
        while self.store._worker.call(lambda tx: any(tx.alive(h) for h in holders), write=False):
            assert time.monotonic() < deadline, f"the killed run's holders {holders} still look alive {at}"
            time.sleep(0.05)

    def _wait_run_gone(self, at: str) -> None:
        """Wait until the last run has no PostgreSQL backend left: nothing it sent is still being committed."""
        if self.app is None:
            return
        app = self.app
        left = "SELECT 1 FROM pg_stat_activity WHERE application_name = ?"
        deadline = time.monotonic() + RECOVER_WAIT_S
        while self.store._worker.call(lambda tx: tx.row(left, (app,)), write=False) is not None:
            assert time.monotonic() < deadline, f"the run's backend ({self.app}) is still on the server {at}"
            time.sleep(0.02)

    def context(self, log: Path, extra: str = "") -> str:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
        return f"[seed {self.seed}, child {self.children}, kill {self.kills}{extra}; log {log}]\n{tail}"

    def run(self, kill_after: float | None, every: bool = False) -> tuple[dict[str, Any], Path]:
        """One ``floorflow run`` of the quarantined units and the line's next ones (``every``: all units)."""
        active = [s for s in self.serials if every or (s not in self.shipped and s not in self.held)]
        while len(active) < ACTIVE and kill_after is not None:
            serial = f"FB{len(self.serials):05d}"
            self.serials.append(serial)
            active.append(serial)
        units = [*(s for s in self.held if s not in active), *active]  # the quarantined first: each run must take them
        config = self.root / f"sim-{self.children:04d}.yaml"
        config.write_text(json.dumps({**SIM, "units": {s: {"hang": HANGS} for s in units}}))
        options = self.where.options
        self.app = None
        if self.where.url.startswith("postgresql:"):  # named, so the checks can wait for its backend to end
            self.app = f"floorflow-faults-{os.getpid()}-{self.children + 1:04d}"
            options = tuple(f"{o}&application_name={self.app}" if o == self.where.url else o for o in options)
        argv = ["run", str(self.recipe), "--sim", "--sim-config", str(config), *options]
        argv += ["--slots", str(SLOTS)]
        for serial in units:
            argv += ["--unit", serial]
        self.children += 1
        log = self.root / "logs" / f"child-{self.children:04d}.log"
        result = self.forker.run(argv, log, kill_after)
        config.unlink()
        assert not result["timed_out"], f"the run did not end in time {self.context(log)}"
        if result["killed"]:
            self.kills += 1
        return result, log

    def check(self, result: dict[str, Any], log: Path, delay: float | None) -> None:
        """The invariants after one run, killed or not; then the supervisor's releases."""
        killed = bool(result["killed"])
        at = self.context(log, f", killed after {delay} s" if killed else f", ended with {result}")
        if not killed:
            assert result["code"] in (0, 5), f"a run that was not killed must end 0 or 5 (refusals) {at}"
        self._wait_run_gone(at)

        # 1. No committed attempt is lost: not by the kill, the recovery or the releases.
        before = self.seen
        now = self._committed("after the kill" if killed else "after the run", at)

        # 2. No irreversible operation ran twice; the devices' state only moves forward.
        devices = _devices(self.where.sim_state)
        for serial, counts in devices.items():
            twice = {op: n for op, n in counts.items() if n > 1}
            assert not twice, f"unit {serial}: irreversible operations ran more than once: {twice} {at}"
            undone = {op for op in OPERATIONS if counts[op] < self.counts.get(serial, Counter())[op]}
            assert not undone, f"unit {serial}: the device's record of {undone} went back {at}"

        # 3a. A quarantined unit held from the last kill was refused: its record and device untouched.
        refused = {s for s in self.held if _refused(log, s)}
        if not killed:
            assert refused == set(self.held), f"a run that ended must refuse the quarantined {set(self.held)} {at}"
        for serial in self.held:
            record = self.store.unit(serial)
            unreleased = f"unit {serial} left quarantine unreleased: {record.status} {at}"
            assert record.status == UnitStatus.QUARANTINED, unreleased
            added = {a for a in now if a[0] == serial} - {a for a in before if a[0] == serial}
            assert not added, f"quarantined unit {serial} was run: {sorted(added)} {at}"
            assert devices.get(serial) == self.counts.get(serial), f"quarantined unit {serial}'s device was used {at}"

        # 3b. Every interrupted irreversible step is quarantined, naming its stage. Now and then the
        # recovery is left to the next run (its start recovers, its claims take over dead ones).
        interrupted = _open_intents(self.store)
        if not killed:
            assert not interrupted, f"a run that ended left intents without an outcome: {interrupted} {at}"
            assert not _claims(self.store), f"a run that ended left claims: {_claims(self.store)} {at}"
        for serial, stage in self.pending.items():  # left to this run: it must not have run them
            added = {a for a in now if a[0] == serial} - {a for a in before if a[0] == serial}
            wrong = {a for a in added if (a[1], a[3]) != (stage, "ERROR")}
            assert not wrong, f"unit {serial}, interrupted in '{stage}', was run before recovery: {wrong} {at}"
            assert devices.get(serial) == self.counts.get(serial), f"unit {serial}'s device was used {at}"
        fresh = {serial: stage for serial, stage, _ in interrupted if serial not in self.pending}
        for serial, stage, _ in interrupted:
            assert self.pending.get(serial, stage) == stage, f"unit {serial}: two open intents {interrupted} {at}"
            self.pending[serial] = stage
        quarantined = {u.serial for u in self.store.units(status=UnitStatus.QUARANTINED)}
        assert set(self.held) <= quarantined <= set(self.held) | set(self.pending), (
            f"quarantined: {quarantined}, held: {set(self.held)}, interrupted: {self.pending} {at}"
        )
        stages: dict[str, str] = {}
        if killed and self.later.random() < LEAVE_RECOVERY:
            self._wait_gone(at)
            self.stats["recovery left to the next run"] += 1
        else:
            recovered = dict(self.store.recover())
            deadline = time.monotonic() + RECOVER_WAIT_S
            while (_open_intents(self.store) or _claims(self.store)) and time.monotonic() < deadline:
                time.sleep(0.05)  # PostgreSQL: the killed run's connection has not left pg_stat_activity yet
                recovered.update(self.store.recover())
            left = _open_intents(self.store)
            assert not left, f"intents without an outcome survived recover(): {left} {at}"
            assert not _claims(self.store), f"claims of a killed run survived recover(): {_claims(self.store)} {at}"
            stages, self.pending = self.pending, {}
            assert set(recovered) <= set(stages), f"recover() quarantined {set(recovered)}, interrupted: {stages} {at}"
            for serial, stage in stages.items():
                record = self.store.unit(serial)
                interrupted = f"unit {serial} interrupted in '{stage}' is {record.status} {at}"
                assert record.status == UnitStatus.QUARANTINED, interrupted
                named = f"'{stage}'" in (record.reason or "")
                assert named, f"unit {serial}'s quarantine names no '{stage}': {record.reason} {at}"
            quarantined = {u.serial for u in self.store.units(status=UnitStatus.QUARANTINED)}
            expected = set(self.held) | set(stages)
            assert quarantined == expected, f"quarantined: {quarantined}, interrupted or held: {expected} {at}"

        self._committed("after recover()", at)

        # Where the kill landed.
        if killed:
            self.stats["kill inside an irreversible step" if fresh else "kill outside any irreversible step"] += 1
        what = {True: "after the device acted", False: "before the device acted", None: "device acted in part"}
        for serial, stage in fresh.items():
            self.stats[f"interrupted {stage}, {what[_done(devices.get(serial, Counter()), stage)]}"] += 1

        # The supervisor releases the units the last run refused, from what their devices show.
        for serial in refused:
            stage = self.held.pop(serial)
            shown = _done(devices.get(serial, Counter()), stage)
            decision = "done" if shown else "not-done"
            said = self.store.release(serial, decision, "qa", f"device counts: {dict(devices.get(serial, {}))}")
            assert f"'{stage}'" in said, f"releasing {serial} says {said!r}, not '{stage}' {at}"
            assert self.store.unit(serial).status == "in-route", at
            self.stats[f"released {decision}"] += 1
        self.held.update(stages)

        self._committed("after the releases", at)
        self.counts = devices
        self.shipped = {s for (s,) in _rows(self.store, "SELECT serial FROM units WHERE status = 'shipped'")}


def _refused(log: Path, serial: str) -> bool:
    """Whether the run's log shows it refused ``serial`` because the unit is quarantined."""
    if not log.exists():
        return False
    return any(
        f" {serial} refused: " in line and "quarantined" in line
        for line in log.read_text(errors="replace").splitlines()
    )


# -- the test --------------------------------------------------------------------------------------------


@pytest.fixture
def selected(mode: str, request: pytest.FixtureRequest) -> str:
    """The mode, once it is known to be wanted: the full run only when ``-m`` names ``faults``.

    Asked for before ``where``, so a skipped full run creates no PostgreSQL schema (and does not
    fail for want of a server).
    """
    if mode == "full" and FULL_OPTION not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the full fault-injection run (200 SIGKILLs per backend): python -m pytest -m faults")
    return mode


@pytest.mark.parametrize("mode", ["quick", pytest.param("full", marks=pytest.mark.faults)], ids=["quick", "full"])
def test_sigkill_at_random_moments(selected: str, where: Where, forker: Forker, cpu_load: int, tmp_path: Path) -> None:
    mode = selected
    target, seed = RUNS[mode]
    begun = time.monotonic()
    store = open_store(where.url)
    try:
        line = Line(where, store, forker, tmp_path / "line", seed, random.Random(seed))
        runs_without_kill = 0
        while line.kills < target:
            delay = round(line.rng.uniform(0.0, WINDOW_S), 4)
            result, log = line.run(delay)
            runs_without_kill += 0 if result["killed"] else 1
            line.check(result, log, delay)
            assert runs_without_kill < 3 * target + 20, f"[seed {seed}] most runs end before their kill"

        # The line is cleared: a run refuses the units still quarantined and ships the others; the
        # next ships the released ones; the last, given every unit, refuses each as shipped (exit 5)
        # and runs nothing.
        for _ in range(2):
            result, log = line.run(None, every=True)
            line.check(result, log, None)
        assert not line.held, f"[seed {seed}] still quarantined after two runs: {line.held}"
        before = _attempts(store)
        result, log = line.run(None, every=True)
        line.check(result, log, None)
        at = line.context(log, ", the final run")
        assert result["code"] == 5, f"the final run must refuse every unit, each shipped {at}"
        shown = log.read_text(errors="replace")
        unrefused = [s for s in line.serials if not re.search(rf" {s} refused: .*\bshipped\b", shown)]
        assert not unrefused, f"the final run did not refuse {unrefused} as shipped {at}"
        assert _attempts(store) == before, f"the final run ran shipped units again {at}"

        records = {u.serial: u for u in store.units()}
        assert set(records) == set(line.serials), at
        not_shipped = {s: (r.status, r.reason) for s, r in records.items() if r.status != "shipped"}
        assert not not_shipped, f"units not shipped: {not_shipped} {at}"
        devices = _devices(where.sim_state)
        for serial in line.serials:
            counts = devices.get(serial, Counter())
            wrong = {op: counts[op] for op in OPERATIONS if counts[op] != 1}
            assert not wrong, f"unit {serial}: irreversible operations did not run exactly once: {wrong} {at}"
            passes = Counter(a.stage for a in records[serial].attempts if a.outcome.value == "PASS")
            once = {stage: passes[stage] for stage in IRREVERSIBLE if passes[stage] != 1}
            assert not once, f"unit {serial}: irreversible stages without exactly one PASS: {once} {at}"
            issued = {i.kind: i.value for i in records[serial].identities if not i.retired}
            carried = _identities(where.sim_state, serial)
            assert carried == issued, f"unit {serial} carries {carried}, the store issued it {issued} {at}"
        values = [i.value for r in records.values() for i in r.identities]
        assert len(values) == len(set(values)) == 4 * len(records), f"identities issued twice or not at all {at}"
    finally:
        store.close()

    took = time.monotonic() - begun
    report = ", ".join(f"{what}: {n}" for what, n in sorted(line.stats.items()))
    print(
        f"\n{mode} run on {where.url.split(':')[0]}: {line.kills} SIGKILLs, {line.children} runs, "
        f"{len(line.serials)} units shipped, {took:.1f} s with {cpu_load} cores kept busy, seed {seed}; {report}"
    )
    assert line.kills >= target
    if mode == "full":
        # The kills must have landed everywhere that matters, else the run proved less than it says.
        for what in ("kill outside any irreversible step", "released done", "released not-done"):
            assert line.stats[what] >= 1, f"[seed {seed}] no '{what}' in {target} kills: {report}"
