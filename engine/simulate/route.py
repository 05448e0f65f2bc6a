"""The recipe's own route and guards, remembered: each unit state is worked out once, then looked up.

A simulated unit is a node of this table. A node holds a real ``UnitState``; moving on applies the
runner's ``UnitState.record`` to a copy, and the guards are the runner's ``refusal``. Units that
reach the same state share its node, so a million units cost a few hundred states' worth of rule
checks, and a unit that would break a rule is refused exactly as a station would refuse it.

A *run* is what a station does with a unit when every attempt passes first time: the stages it runs
one after the other before the unit leaves, with the chance that all of them pass. One uniform draw
says how far a unit gets (``first_failure``); only a failure takes the stage-by-stage path.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from engine.flow import Flow, Stage
from engine.outcome import Outcome, UnitStatus
from engine.record import RecipeRef
from engine.run.guards import Refusal, refusal
from engine.run.unitstate import RouteIndex, UnitState

HOLD = "the lot is on hold"


@dataclass
class Run:
    """The stages a station runs in a row when each passes at its first attempt, and where that leaves the unit."""

    stages: tuple[Stage, ...]
    nodes: tuple[Node, ...]
    """The node after each stage passed."""
    falls: tuple[float, ...]
    """Increasing: 1 minus the chance that the first k+1 stages all pass, for each k."""
    leaves: bool = False
    """Whether a unit that passes the whole run leaves the station (or its route) right after it."""
    reached: list[int] = field(default_factory=list)
    """How many units got k stages into the run before a failure (k = 0 … all): counted by the caller."""
    attached: Any = None
    """Whatever the caller keeps with the run (the simulation: each stage's time stream)."""

    def __post_init__(self) -> None:
        self.reached = [0] * (len(self.stages) + 1)

    def first_failure(self, draw: float) -> int:
        """How many stages pass before the first failure, for a uniform ``draw`` in [0, 1)."""
        return bisect_right(self.falls, draw)


class Node:
    """One unit state, with what follows from it worked out on first use."""

    __slots__ = ("_after", "_next", "_refusal", "in_route", "runs", "state", "status")

    def __init__(self, state: UnitState) -> None:
        self.state = state
        self.status = state.status
        self.in_route = state.status == UnitStatus.IN_ROUTE
        """Asked at every move: worked out once."""
        self._next: dict[str | None, Stage | None] = {}
        self._after: dict[tuple[str, Outcome], Node] = {}
        self._refusal: dict[tuple[str, bool], Refusal | None] = {}
        self.runs: dict[str | None, Run] = {}
        """By station: what it does with the unit (``RouteTable.run``), once worked out."""


class RouteTable:
    """Every unit state the simulation reaches, each worked out once."""

    def __init__(self, flow: Flow, fail_of: Callable[[Stage], float], breaks: Callable[[Stage], bool]) -> None:
        self.flow = flow
        self.index = RouteIndex(flow)
        self.recipe = RecipeRef(flow.recipe, flow.version, flow.content_hash)
        self._fail_of = fail_of
        self._breaks = breaks
        """A stage a run stops before: a sampled one (the unit's own draw decides whether it runs)."""
        self._own: dict[str | None, frozenset[str]] = {None: frozenset()}
        for stage in flow.stages.values():
            if stage.station is not None:
                self._own[stage.station] = self._own.get(stage.station, frozenset()) | {stage.id}
        self._nodes: dict[tuple[object, ...], Node] = {}
        self.start = self._node(UnitState(self.index))

    @property
    def states(self) -> int:
        return len(self._nodes)

    def runs(self) -> list[Run]:
        """Every run worked out so far."""
        return [run for node in self._nodes.values() for run in node.runs.values()]

    def next_stage(self, node: Node, station: str | None) -> Stage | None:
        """The stage the unit runs next; at a station, one of that station's first (the runner's choice)."""
        try:
            return node._next[station]
        except KeyError:
            found = node._next[station] = node.state.next_stage(self._own.get(station, frozenset()))
            return found

    def refusal(self, node: Node, stage: Stage, held: bool) -> Refusal | None:
        key = (stage.id, held)
        try:
            return node._refusal[key]
        except KeyError:
            found = node._refusal[key] = refusal(node.state, stage, HOLD if held else None)
            return found

    def after(self, node: Node, stage: Stage, outcome: Outcome) -> Node:
        key = (stage.id, outcome)
        try:
            return node._after[key]
        except KeyError:
            state = _copy(node.state)
            state.record(stage, outcome, 0.0, self.recipe)
            found = node._after[key] = self._node(state)
            return found

    def run(self, node: Node, station: str | None) -> Run:
        """What ``station`` does with the unit in ``node`` when every attempt passes first time."""
        try:
            return node.runs[station]
        except KeyError:
            pass
        stages: list[Stage] = []
        nodes: list[Node] = []
        falls: list[float] = []
        passes = 1.0
        here = node
        leaves = False
        while True:
            stage = self.next_stage(here, station)
            if stage is None or stage.station != station:
                leaves = True
                break
            if self._breaks(stage):
                break
            if self.refusal(here, stage, False) is not None:
                break  # the unit's own path meets the refusal and reports it
            here = self.after(here, stage, Outcome.PASS)
            passes *= 1.0 - self._fail_of(stage)
            stages.append(stage)
            nodes.append(here)
            falls.append(1.0 - passes)
            if not here.in_route:
                leaves = True
                break
        found = node.runs[station] = Run(tuple(stages), tuple(nodes), tuple(falls), leaves)
        return found

    def _node(self, state: UnitState) -> Node:
        key = (
            state.status,
            state.block,
            frozenset(state.passed),
            frozenset(state.irreversible_entered),
            state.lifecycle,
            tuple(sorted(state.visits.items())),
            state.rework,
            state.rework_from,
            tuple(sorted(state.tries.items())),
        )
        found = self._nodes.get(key)
        if found is None:
            found = self._nodes[key] = Node(state)
        return found


def _copy(state: UnitState) -> UnitState:
    return replace(
        state,
        passed=set(state.passed),
        irreversible_entered=dict(state.irreversible_entered),
        visits=dict(state.visits),
        tries=dict(state.tries),
    )
