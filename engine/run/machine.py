"""One ``transitions.Machine`` per compiled Flow; one model per active station slot.

The machine's states are the flow's stages, its any_order forks and joins, ``start``, ``shipped``
and ``scrapped``; its moves are exactly the flow's edges (``engine.recipe.graph.edges``), each a trigger of
the slot's model (``passed``, ``failed``, ``retry``, ``exhausted``, ``next_member``, ``run_<member>``).
Besides them every stage has one internal transition, ``run``, which moves nothing: its conditions
are the run-time guards (``engine.run.guards``), so a stage starts only when the machine lets it,
and a refusal names its rule. A move the machine does not have is an engine error (IllegalMove).

A slot's model is loaded from the recorded unit state when the station claims the unit: it is put
where the record says the unit stands, and holds the unit's state for the guards to read.

The event and transition classes below are transitions' own, without the walks over callback lists
(no callbacks are attached: a walk costs about 5 µs a move, more than the rest of a step's bookkeeping).
What moves a model, the source-state lookup, the conditions and the state change, stays transitions'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from transitions import Event, EventData, Machine, Transition

from engine.flow import SCRAPPED, SHIPPED, START, Flow, Stage
from engine.outcome import UnitStatus
from engine.recipe.graph import edges
from engine.run.guards import Refusal, refusal
from engine.run.unitstate import UnitState

TRIGGERS = {
    "pass": "passed",
    "resume": "passed",
    "fail": "failed",
    "retry": "retry",
    "exhausted": "exhausted",
    "again": "next_member",
}
RUN = "run"
"""The internal transition of every stage: its conditions are the guards."""


def trigger_of(kind: str, target: str) -> str:
    """The trigger that takes an edge of this kind (forks get one trigger per member)."""
    return f"run_{target}" if kind == "any" else TRIGGERS[kind]


class IllegalMove(RuntimeError):
    """The runner asked for a transition the flow's machine does not have: an engine bug."""


@dataclass(eq=False)
class SlotModel:
    """The machine's model for one station slot; ``state`` is where its current unit is."""

    slot: int
    state: str = START
    unit: UnitState | None = None
    """The state of the unit the slot holds, as its record says (loaded at the claim)."""
    lot_hold: str | None = None
    """Why the unit's lot is on hold, as last read (the hold guard reads it)."""
    refused: Refusal | None = None
    """Why the machine refused the last ``run``."""
    asked: dict[str, EventData] = field(default_factory=dict)
    """The EventData of each trigger with conditions, made once and reused: a model moves in one thread at a
    time, and the conditions read only its model."""

    if TYPE_CHECKING:  # bound by the machine, one per trigger (``passed`` and ``failed`` leave every stage)

        def passed(self) -> bool: ...

        def failed(self) -> bool: ...

        def run(self) -> bool: ...


class _Guards:
    """The condition of a stage's ``run``: no guard refuses the stage on the model's unit."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    def __call__(self, event: EventData) -> bool:
        model = cast(SlotModel, event.model)
        assert model.unit is not None  # a slot's model runs a stage only for a unit it holds
        model.refused = refusal(model.unit, self.stage, model.lot_hold)
        return model.refused is None


class _Move(Transition):
    def execute(self, event_data: EventData) -> bool:
        for condition in self.conditions:  # Condition.check, for conditions that are callables (never names)
            guard: Callable[[EventData], bool] = condition.func  # type: ignore[assignment]  # stubs: str only
            if guard(event_data) != condition.target:
                return False
        if self.dest:  # None: an internal transition (``run``), which moves nothing
            # Machine.set_state for the one model, without its lookups
            setattr(event_data.model, event_data.machine.model_attribute, self.dest)
        return True


class _Trigger(Event):
    def __init__(self, name: str, machine: Any) -> None:
        super().__init__(name, machine)
        self.edges: dict[str, str] = {}
        """Each source state whose one move is an edge (no conditions): that edge's destination, noted at its
        first taking, so a move along an edge costs one lookup."""

    def add_transition(self, transition: Transition) -> None:
        super().add_transition(transition)
        self.edges.clear()  # a state's moves changed: what was noted of them may not hold

    def trigger(self, model: Any, *args: Any, **kwargs: Any) -> bool:
        machine = self.machine
        dest = self.edges.get(model.state)
        if dest is not None:
            setattr(model, machine.model_attribute, dest)
            return True
        moves = self.transitions.get(model.state)
        if not moves:
            raise IllegalMove(f"flow '{machine.recipe}' has no move '{self.name}' from '{model.state}'")
        if len(moves) == 1 and not moves[0].conditions and moves[0].dest:
            # A move on an edge, which has no conditions: taken as execute() would take it, without an EventData.
            self.edges[model.state] = moves[0].dest
            setattr(model, machine.model_attribute, moves[0].dest)
            return True
        asked: dict[str, EventData] = model.asked
        event = asked.get(self.name)
        if event is None or args or kwargs:
            event = asked[self.name] = EventData(machine.states[model.state], self, machine, model, args, kwargs)
        else:
            event.state, event.result, event.error = machine.states[model.state], False, None
        for move in moves:
            event.transition = move
            if move.execute(event):
                return True
        return False


class _Machine(Machine):
    recipe = ""
    """The flow's recipe, named in an IllegalMove."""

    event_cls = _Trigger
    transition_cls = _Move


class FlowMachine:
    """The compiled state machine of one Flow, shared by every slot running it."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        found = edges(flow)
        states = sorted({START} | {e.source for e in found} | {e.target for e in found})
        transitions: list[dict[str, Any]] = [
            {"trigger": trigger_of(e.kind, e.target), "source": e.source, "dest": e.target} for e in found
        ]
        transitions += [
            {"trigger": RUN, "source": s.id, "dest": None, "conditions": [_Guards(s)]} for s in flow.stages.values()
        ]
        self.machine = _Machine(
            model=None,
            states=states,
            transitions=transitions,
            initial=START,
            auto_transitions=False,
            send_event=True,  # the guards read the model and the stage from the event
        )
        self.machine.recipe = flow.recipe
        self._events: dict[str, Event] = self.machine.events

    def attach(self, slot: int) -> SlotModel:
        """A model for a slot, added to the machine (once per slot, not per unit)."""
        model = SlotModel(slot)
        self.machine.add_model(model)
        return model

    def place(self, model: SlotModel, state: str) -> None:
        """Put a slot's model in a state of the machine (not a move: where a unit's record says it is)."""
        self.machine.set_state(state, model=model)

    def load(self, model: SlotModel, unit: UnitState, prefer: frozenset[str] = frozenset()) -> Stage | None:
        """Load the model with a claimed unit: its state, and where its record says it stands.

        The model is put on the stage the unit runs next (a member of ``prefer`` first, in an any_order
        group), or on ``shipped`` or ``scrapped`` once its route has ended. Returns that stage, if any.
        """
        model.unit, model.lot_hold, model.refused = unit, None, None
        stage = unit.next_stage(prefer)
        if stage is not None:
            self.place(model, stage.id)
        elif unit.status == UnitStatus.IN_ROUTE:
            self.place(model, SHIPPED)
        else:
            self.place(model, SCRAPPED)
        return stage

    def move(self, model: SlotModel, trigger: str) -> str:
        """Take the transition ``trigger`` from the model's state; return the new state."""
        event = self._events.get(trigger)
        if event is None:
            raise IllegalMove(f"flow '{self.flow.recipe}' has no move '{trigger}' from '{model.state}'")
        event.trigger(model)
        return str(model.state)

    def run(self, model: SlotModel, lot_hold: str | None = None) -> Refusal | None:
        """Ask the machine to run the model's stage: the guard that refuses it, or None (it may run)."""
        model.lot_hold = lot_hold
        model.refused = None
        return None if model.run() else model.refused
