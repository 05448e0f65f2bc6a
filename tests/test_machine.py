"""One transitions.Machine per flow: its transitions are the drawn edges, and nothing else moves a slot."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.flow import SCRAPPED, SHIPPED, START
from engine.recipe.check import load_flow
from engine.recipe.graph import edges
from engine.registry import Registry
from engine.run.machine import FlowMachine, IllegalMove, trigger_of

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def machine() -> FlowMachine:
    return FlowMachine(load_flow(ROOT / "workflows" / "sphere-thermostat.yaml", Registry.discover()))


def test_machine_transitions_are_the_graph_edges(machine: FlowMachine) -> None:
    """Every edge floorflow graph draws is a transition of the machine, with the trigger its kind names."""
    table = {
        (source, trigger): str(moves[0].dest)
        for trigger, event in machine.machine.events.items()
        for source, moves in event.transitions.items()
    }
    drawn = {(e.source, trigger_of(e.kind, e.target)): e.target for e in edges(machine.flow)}
    assert table == drawn


def test_a_slot_moves_along_the_route(machine: FlowMachine) -> None:
    """A slot's model goes start -> connect -> the any_order fork -> a member, and can be scrapped from there."""
    model = machine.attach(1)
    assert model.state == START
    assert machine.move(model, "passed") == "connect"
    assert machine.move(model, "passed") == "factory_ops"
    assert machine.move(model, "run_record_id") == "record_id"
    assert machine.move(model, "failed") == SCRAPPED


def test_a_move_the_flow_does_not_have_is_refused(machine: FlowMachine) -> None:
    """Jumping from start straight to shipped is not a transition of the flow: IllegalMove, state unchanged."""
    model = machine.attach(2)
    with pytest.raises(IllegalMove, match="no move 'run_finalize' from 'start'"):
        machine.move(model, "run_finalize")
    assert model.state == START
    machine.place(model, "finalize")
    assert machine.move(model, "passed") == SHIPPED
