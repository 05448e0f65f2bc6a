"""Where a unit is on its route, derived from its recorded attempts.

The same ``UnitState.record`` that the runner calls after every attempt replays a unit's history
when a station picks it up, so a unit's state always comes from its record. ``record`` is the only
thing that changes a UnitState; ``next_stage`` only asks it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.flow import SCRAP, Flow, Group, Stage
from engine.outcome import Outcome, UnitStatus
from engine.record import Attempt, RecipeRef


class RouteIndex:
    """Lookups a runner needs per step, computed once per Flow."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.block: dict[str, int] = {}
        self.group: dict[str, Group] = {}
        """The any_order group of each route stage that has one."""
        for index, entry in enumerate(flow.route):
            for member in entry.members if isinstance(entry, Group) else (entry,):
                self.block[member] = index
                if isinstance(entry, Group):
                    self.group[member] = entry
        self.final_state = len(flow.lifecycle) - 1 if flow.lifecycle else None
        self.state_index = {state: i for i, state in enumerate(flow.lifecycle)}


@dataclass
class UnitState:
    index: RouteIndex
    passed: set[str] = field(default_factory=set)
    irreversible_entered: dict[str, float] = field(default_factory=dict)
    """Irreversible stage id -> when it was first entered."""
    lifecycle: int = 0
    visits: dict[str, int] = field(default_factory=dict)
    status: UnitStatus = UnitStatus.IN_ROUTE
    reason: str | None = None
    rework: str | None = None
    """The rework stage the unit was sent to and has not passed yet."""
    rework_from: int = 0
    block: int = 0
    """Index of the first route entry not fully passed."""
    recipe: RecipeRef | None = None
    tries: dict[str, int] = field(default_factory=dict)
    """Attempts of each stage since it was last entered afresh."""

    @classmethod
    def replay(cls, index: RouteIndex, attempts: Iterable[Attempt]) -> UnitState:
        state = cls(index)
        rows = list(attempts)
        retried = _retried(rows)
        for n, attempt in enumerate(rows):
            if attempt.stage in index.flow.stages:
                stage = index.flow.stages[attempt.stage]
                state.record(stage, attempt.outcome, attempt.started, attempt.recipe, n in retried)
        return state

    @property
    def lifecycle_state(self) -> str | None:
        states = self.index.flow.lifecycle
        return states[self.lifecycle] if states else None

    def next_stage(self, prefer: frozenset[str] = frozenset()) -> Stage | None:
        """The stage the unit runs next, or None when its route has ended (a query: nothing changes).

        In an any_order group, a runnable member in ``prefer`` (the station's own stages) comes
        first: a station runs the members it can before the unit moves on.
        """
        if self.status != UnitStatus.IN_ROUTE:
            return None
        flow = self.index.flow
        if self.rework is not None:
            return flow.stages[self.rework]
        if self.block >= len(flow.route):
            return None
        entry = flow.route[self.block]  # not fully passed: ``record`` keeps ``block`` there
        if not isinstance(entry, Group):
            return flow.stages[entry]
        passed = self.passed
        runnable = [
            flow.stages[m]
            for m in entry.members
            if m not in passed and all(r in passed or r not in entry.members for r in flow.stages[m].requires)
        ]
        if not runnable:
            return None  # members wait on each other: the checker refuses such a flow
        return next((s for s in runnable if s.id in prefer), runnable[0])

    def record(
        self, stage: Stage, outcome: Outcome, started: float, recipe: RecipeRef | None, retried: bool = False
    ) -> None:
        """Apply one attempt's outcome to the unit's state; ``retried``: the operator chose to run a stage that
        failed after its retries once more, so the failure does not route the unit."""
        if self.recipe is None:
            self.recipe = recipe
        if outcome is Outcome.NOT_DONE:
            # A supervisor found the interrupted attempt had no effect: the stage has not been entered.
            self.irreversible_entered.pop(stage.id, None)
            self.tries.pop(stage.id, None)
            return
        if stage.irreversible:
            self.irreversible_entered.setdefault(stage.id, started)
        if outcome is Outcome.PASS or outcome is Outcome.SKIPPED:
            self._passed(stage, outcome)  # (its tries start again from nothing)
            if self.index.block.get(stage.id) == self.block:  # (only passing a stage of that entry moves it on)
                self._advance()
            return
        tries = self.tries[stage.id] = self.tries.get(stage.id, 0) + 1
        if outcome is Outcome.FAIL and tries > stage.retry_max and not retried:
            self._failed(stage)

    def _advance(self) -> None:
        """Move ``block`` past the route entries fully passed."""
        route, passed = self.index.flow.route, self.passed
        while self.block < len(route):
            entry = route[self.block]
            if isinstance(entry, Group):
                if not all(m in passed for m in entry.members):
                    return
            elif entry not in passed:
                return
            self.block += 1

    def _passed(self, stage: Stage, outcome: Outcome) -> None:
        self.tries.pop(stage.id, None)
        advance = stage.effects.advances_to if outcome is Outcome.PASS else None
        if advance is not None and advance in self.index.state_index:
            self.lifecycle = max(self.lifecycle, self.index.state_index[advance])
        if not stage.rework:
            self.passed.add(stage.id)
            return
        self.rework = None
        then = stage.then
        if then is None:
            return
        target = self.index.block[then]
        entry = self.index.flow.route[target]
        again = {then}
        if isinstance(entry, Group) and target != self.rework_from:
            again = set(entry.members)
        for later in self.index.flow.route[target + 1 :]:
            again.update(later.members if isinstance(later, Group) else (later,))
        self.passed -= again
        for stage_id in again:
            self.tries.pop(stage_id, None)
        self.block = min(self.block, target)

    def _failed(self, stage: Stage) -> None:
        self.tries.pop(stage.id, None)
        if stage.on_fail == SCRAP:
            self.status, self.reason = UnitStatus.SCRAPPED, f"'{stage.id}' failed"
            return
        rework = self.index.flow.stages[stage.on_fail]
        visits = self.visits[rework.id] = self.visits.get(rework.id, 0) + 1
        if rework.max_visits is not None and visits > rework.max_visits:
            self.status = UnitStatus.SCRAPPED
            self.reason = f"'{stage.id}' failed and rework '{rework.id}' was already entered {rework.max_visits} times"
            return
        if not stage.rework:
            self.rework_from = self.index.block[stage.id]
        self.rework = rework.id


def _retried(rows: list[Attempt]) -> set[int]:
    """Which failed attempts were run again (their positions): each one the next attempt of its stage numbers on.

    A failure past the stage's retries routes the unit and its stage's attempts count from 1 again, so an
    attempt numbered on after one is a retry the operator chose.
    """
    retried: set[int] = set()
    latest: dict[str, int] = {}
    for n, attempt in enumerate(rows):
        before = latest.get(attempt.stage)
        if before is not None and rows[before].outcome is Outcome.FAIL and attempt.attempt == rows[before].attempt + 1:
            retried.add(before)
        latest[attempt.stage] = n
    return retried
