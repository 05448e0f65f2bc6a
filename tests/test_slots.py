"""Each serial in its own socket: units go to slots in the order given, the same on every run, and
the slot in the record is the socket whose device the unit was run through."""

from __future__ import annotations

import time
import zlib
from pathlib import Path
from typing import Any

from steplab import Bench, Probe, direct_flow, memory_store, runner, stage

from engine.context import StepContext
from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.run.operator import SimOperator
from engine.run.runner import StationRunner, UnitSpec
from engine.run.slots import deal
from steps.sim import SimLine

SERIALS = [f"SN{k:02d}" for k in range(1, 17)]


def _socket(k: int, slots: int) -> int:
    """The documented rule: unit k (from 1) goes to slot ((k - 1) mod slots) + 1."""
    return (k - 1) % slots + 1


def test_deal_gives_unit_k_to_slot_k_mod_slots_in_order() -> None:
    """Five units over two slots: slot 1 runs the 1st, 3rd and 5th, slot 2 the 2nd and 4th, in that order."""
    units = [UnitSpec(f"U{k}") for k in range(1, 6)]
    assert [[u.serial for u in hand] for hand in deal(units, 2)] == [["U1", "U3", "U5"], ["U2", "U4"]]


def _uneven(ctx: StepContext) -> None:
    # Units take different times, so slots that took units from a shared queue would end up with
    # other units than the ones dealt to them.
    time.sleep((zlib.crc32(ctx.unit.serial.encode()) % 4) * 0.01)


def test_serials_go_to_their_slots_the_same_on_every_run() -> None:
    """16 serials over 4 slots, run twice: serial k runs in slot ((k-1) mod 4)+1 both times, through the
    device that slot opened, each slot taking its serials in the order given; the record says that slot."""
    flow = direct_flow([stage("test", Probe), stage("pack", Probe)])
    expected = {serial: _socket(k, 4) for k, serial in enumerate(SERIALS, 1)}
    for _ in range(2):
        bench, history = Bench(probe=_uneven), memory_store()
        results = runner(flow, bench, history).run([UnitSpec(s) for s in SERIALS], slots=4)
        assert [r.serial for r in results] == SERIALS
        assert {r.status for r in results} == {"shipped"}
        assert {d.serial: d.slot for d in bench.devices} == expected
        for serial in SERIALS:
            assert [a.slot for a in history.unit(serial).attempts] == [expected[serial]] * 2
        opened = [(d.slot, d.serial) for d in bench.devices]
        for slot in range(1, 5):
            assert [s for n, s in opened if n == slot] == [s for s in SERIALS if expected[s] == slot]


SOCKETS = """\
recipe: sockets
version: 1
stages:
  - {id: connect, step: device.connect}
  - {id: record_id, step: device.record_id}
"""


def test_the_simulated_line_reads_each_serials_own_unit_in_its_socket(tmp_path: Path) -> None:
    """On the simulated fixture, 16 serials over 4 slots, twice: each unit is plugged into the socket of its
    slot, and the chip id read through that socket's console is the unit's own, recorded with that slot."""
    recipe = tmp_path / "sockets.yaml"
    recipe.write_text(SOCKETS)
    registry = Registry.discover()
    flow, problems = check_recipe(recipe, registry)
    assert flow is not None, problems
    expected = {serial: _socket(k, 4) for k, serial in enumerate(SERIALS, 1)}
    for _ in range(2):
        line, history = SimLine(flow), memory_store()
        station = StationRunner(flow, registry, line, SimOperator(), history)
        results = station.run([UnitSpec(s) for s in SERIALS], slots=4)
        assert {r.status for r in results} == {"shipped"}, results
        for serial in SERIALS:
            unit = line.device(serial)
            assert unit.slot == expected[serial]
            [connect, record_id] = history.unit(serial).attempts
            assert (connect.slot, record_id.slot) == (expected[serial], expected[serial])
            assert record_id.measurements[0].value == unit.device_id
            assert record_id.device_id == unit.device_id
        line.close()


def test_an_engine_error_ends_its_unit_in_error_and_the_slot_runs_its_next_unit() -> None:
    """An exception escaping the runner for one unit (an engine bug) ends that unit in ERROR with the
    exception named; the slot is not lost: its next unit runs and ships."""
    flow = direct_flow([stage("test", Probe)])
    bench, history = Bench(), memory_store()
    station = runner(flow, bench, history)
    run_unit = station.run_unit

    def breaks_on_sn2(unit: UnitSpec, slot: Any) -> Any:
        if unit.serial == "SN2":
            raise RuntimeError("engine bug")
        return run_unit(unit, slot)

    station.run_unit = breaks_on_sn2  # type: ignore[method-assign]
    results = station.run([UnitSpec(s) for s in ("SN1", "SN2", "SN3")], slots=1)
    assert [(r.serial, r.status) for r in results] == [("SN1", "shipped"), ("SN2", "error"), ("SN3", "shipped")]
    assert results[1].reason == "RuntimeError: engine bug"
