"""One transitions.Machine per flow: its transitions are the drawn edges, and nothing else moves a slot."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.flow import SCRAPPED, SHIPPED, START
from engine.outcome import Outcome
from engine.recipe.check import load_flow
from engine.recipe.graph import edges
from engine.registry import Registry
from engine.run.machine import RUN, FlowMachine, IllegalMove, trigger_of
from engine.run.unitstate import RouteIndex, UnitState

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def machine() -> FlowMachine:
    return FlowMachine(load_flow(ROOT / "workflows" / "sphere-thermostat.yaml", Registry.discover()))


def test_machine_transitions_are_the_graph_edges(machine: FlowMachine) -> None:
    """Every edge floorflow graph draws is a transition of the machine, with the trigger its kind names; the only
    others are each stage's internal ``run``, which moves nothing and whose conditions are the guards."""
    table = {
        (source, trigger): moves[0].dest
        for trigger, event in machine.machine.events.items()
        for source, moves in event.transitions.items()
    }
    drawn: dict[tuple[str, str], str | None] = {
        (e.source, trigger_of(e.kind, e.target)): e.target for e in edges(machine.flow)
    }
    drawn.update({(stage, RUN): None for stage in machine.flow.stages})
    assert table == drawn
    run = machine.machine.events[RUN]
    assert all(len(run.transitions[stage][0].conditions) == 1 for stage in machine.flow.stages)


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


def test_the_guards_are_the_conditions_of_a_stages_run(machine: FlowMachine) -> None:
    """A model loaded with a fresh unit stands on the first stage, whose ``run`` the machine allows; put on a later
    stage, its ``run`` is refused by the ordering rule, named, and the model stays where it was."""
    model = machine.attach(3)
    unit = UnitState(RouteIndex(machine.flow))
    first = machine.load(model, unit)
    assert first is not None and model.state == first.id == "connect"
    assert machine.run(model) is None
    machine.place(model, "finalize")
    refused = machine.run(model)
    assert refused is not None and refused.rule == "ordering" and "'connect'" in refused.reason
    assert model.state == "finalize"


def test_a_model_is_loaded_where_the_record_puts_the_unit(machine: FlowMachine) -> None:
    """A unit that passed 'connect' is loaded on the stage it runs next, and a scrapped one on 'scrapped'."""
    flow = machine.flow
    model = machine.attach(4)
    unit = UnitState(RouteIndex(flow))
    unit.record(flow.stages["connect"], Outcome.PASS, 0.0, None)
    nxt = machine.load(model, unit)
    assert nxt is not None and model.state == nxt.id != "connect"
    while (failing := unit.next_stage()) is not None:  # every attempt fails, through retries and rework
        unit.record(failing, Outcome.FAIL, 0.0, None)
    assert machine.load(model, unit) is None and model.state == SCRAPPED


def test_an_edge_noted_at_its_first_taking_gives_way_to_a_move_added_later() -> None:
    """A move along an edge is noted when first taken; once a transition is added to that trigger, the moves are
    asked again (the note does not outlive a change to them)."""
    machine = FlowMachine(load_flow(ROOT / "workflows" / "sphere-thermostat.yaml", Registry.discover()))
    model = machine.attach(1)
    assert machine.move(model, "passed") == "connect"
    machine.place(model, START)
    machine.machine.add_transition("passed", START, SHIPPED, conditions=[lambda event: True])
    machine.machine.events["passed"].transitions[START].reverse()  # the added move is asked first, and lets it
    assert machine.move(model, "passed") == SHIPPED
