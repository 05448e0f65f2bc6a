"""The run-time guards: every rule `floorflow validate` checks, enforced again on each unit.

A guard that refuses a stage says which rule refused it and why. The guards hold even for a Flow
built directly in code that never went through the checker.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.flow import Stage
from engine.outcome import UnitStatus
from engine.run.unitstate import UnitState


@dataclass(frozen=True)
class Refusal:
    rule: str
    """ordering, requires, lifecycle, irreversible, hold, recipe or status."""
    reason: str

    def __str__(self) -> str:
        return f"refused by the {self.rule} rule: {self.reason}"


def refusal(state: UnitState, stage: Stage, lot_hold: str | None) -> Refusal | None:
    """Why ``stage`` may not run on the unit now, or None when it may."""
    index = state.index
    flow = index.flow
    if state.status != UnitStatus.IN_ROUTE:
        return Refusal("status", f"the unit is {state.status}" + (f" ({state.reason})" if state.reason else ""))
    if state.recipe is not None and state.recipe.content_hash != flow.content_hash:
        return Refusal(
            "recipe",
            f"the unit was started under recipe {state.recipe.recipe} v{state.recipe.version} "
            f"(hash {state.recipe.content_hash[:12]}), this station runs {flow.recipe} v{flow.version} "
            f"(hash {flow.content_hash[:12]})",
        )
    if stage.rework:
        if state.rework != stage.id:
            return Refusal("ordering", f"rework stage '{stage.id}' runs only after a failure sends the unit there")
    elif state.rework is not None:
        return Refusal("ordering", f"the unit must pass rework '{state.rework}' first")
    elif index.block[stage.id] != state.block:
        earlier = [s for s, b in index.block.items() if b < index.block[stage.id] and s not in state.passed]
        if earlier:
            return Refusal("ordering", f"the unit has not passed '{earlier[0]}' yet")
        return Refusal("ordering", f"'{stage.id}' has already passed on this unit")
    missing = [r for r in stage.requires if r not in state.passed]
    if missing:
        return Refusal("requires", f"'{stage.id}' requires '{missing[0]}', which has not passed")
    states = flow.lifecycle
    if stage.allowed_until in index.state_index and state.lifecycle >= index.state_index[stage.allowed_until]:
        return Refusal(
            "lifecycle",
            f"'{stage.id}' is allowed until {stage.allowed_until}, and the unit is {states[state.lifecycle]}",
        )
    if stage.allowed_from in index.state_index and state.lifecycle < index.state_index[stage.allowed_from]:
        return Refusal(
            "lifecycle",
            f"'{stage.id}' is allowed from {stage.allowed_from}, and the unit is {states[state.lifecycle]}",
        )
    lock = flow.first_lock(stage)  # a capability the stage needs, locked from a lifecycle state on
    if lock is not None and state.lifecycle >= index.state_index[lock[1]]:
        needs, locked_from = lock
        now = states[state.lifecycle]
        return Refusal("lifecycle", f"'{stage.id}' needs {needs}, which {locked_from} locks, and the unit is {now}")
    advance = stage.effects.advances_to
    if advance in index.state_index and index.state_index[advance] <= state.lifecycle:
        return Refusal("lifecycle", f"the unit is {states[state.lifecycle]}: it cannot move to {advance}")
    if stage.irreversible and stage.id in state.irreversible_entered:
        return Refusal("irreversible", f"'{stage.id}' can run once per unit, and it already ran on this unit")
    ships = stage.effects.ready_check or (advance is not None and index.state_index.get(advance) == index.final_state)
    if lot_hold is not None and ships:
        return Refusal("hold", f"the unit's lot is on hold ({lot_hold})")
    return None
