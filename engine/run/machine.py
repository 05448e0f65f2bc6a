"""One ``transitions.Machine`` per compiled Flow; one model per active station slot.

The machine's states are the flow's stages, its any_order forks and joins, ``start``, ``shipped``
and ``scrapped``; its transitions are exactly the edges ``engine.recipe.graph`` draws. The runner moves a
slot's model along them and never anywhere else: a move the machine does not have is an engine
error, not a shortcut.

No callbacks are attached, so the runner looks the destination up in the machine's own transition
table and sets the model's state (about 2 µs here) instead of firing ``trigger()`` (about 11 µs),
which would only walk empty callback lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from transitions import Machine

from engine.flow import START, Flow
from engine.recipe.graph import edges

TRIGGERS = {
    "pass": "passed",
    "resume": "passed",
    "fail": "failed",
    "retry": "retry",
    "exhausted": "exhausted",
    "again": "next_member",
}


def trigger_of(kind: str, target: str) -> str:
    """The trigger that takes an edge of this kind (forks get one trigger per member)."""
    return f"run_{target}" if kind == "any" else TRIGGERS[kind]


class IllegalMove(RuntimeError):
    """The runner asked for a transition the flow's machine does not have: an engine bug."""


@dataclass
class SlotModel:
    """The machine's model for one station slot; ``state`` is where its current unit is."""

    slot: int
    state: str = START


class FlowMachine:
    """The compiled state machine of one Flow, shared by every slot running it."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        found = edges(flow)
        states = sorted({START} | {e.source for e in found} | {e.target for e in found})
        transitions = [{"trigger": trigger_of(e.kind, e.target), "source": e.source, "dest": e.target} for e in found]
        self.machine = Machine(
            model=None,
            states=states,
            transitions=transitions,
            initial=START,
            auto_transitions=False,
        )
        self._dest: dict[tuple[str, str], str] = {}
        for trigger, event in self.machine.events.items():
            for source, moves in event.transitions.items():
                self._dest[(source, trigger)] = str(moves[0].dest)

    def attach(self, slot: int) -> SlotModel:
        """A model for a slot, added to the machine (once per slot, not per unit)."""
        model = SlotModel(slot)
        self.machine.add_model(model)
        return model

    def place(self, model: SlotModel, state: str) -> None:
        """Put a slot's model where its new unit is (from the unit's record)."""
        self.machine.set_state(state, model=model)

    def move(self, model: SlotModel, trigger: str) -> str:
        """Take the transition ``trigger`` from the model's state; return the new state."""
        try:
            dest = self._dest[(model.state, trigger)]
        except KeyError:
            raise IllegalMove(f"flow '{self.flow.recipe}' has no move '{trigger}' from '{model.state}'") from None
        model.state = dest
        return dest
