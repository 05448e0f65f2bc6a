"""Check the rules that hold "on every route" by walking every route through a flow.

The walk carries an abstract unit (lifecycle state, irreversible stages entered, images on storage
and in RAM) through every any_order ordering and every failure that leads into rework, and
reports: an irreversible stage entered twice (check 3), the lifecycle not moving forward or a
lifecycle window always closed (check 4), a temporary image still on the unit at a
ready-to-ship stage or the final lifecycle advance (check 5), and through
``engine.recipe.storagewalk`` what the unit's storage must hold at a stage (an OS, something to
boot, exactly the images expected, an image of the type needed).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import NamedTuple, Protocol

from engine.diagnostics import Pos
from engine.flow import SCRAP, Flow, Group, Stage
from engine.recipe.storagewalk import StorageRules, os_after
from engine.step import Effects


class Report(Protocol):
    def add(self, pos: Pos, code: str, message: str, severity: str = "error") -> None: ...


_NO_EFFECTS = Effects()
MAX_WALK = 2_000_000
"""Unit states walked, each weighed by the group members it looks at: the bound keeps a check of any
recipe to a few seconds. A wide any_order group of members that change the unit can run in so many
orders that no walk ends; such a route is refused rather than walked for hours."""


def _requires_inside(flow: Flow, group: Group) -> dict[str, tuple[str, ...]]:
    """Each member's requires that name another member of its group (the others are met before it)."""
    members = set(group.members)
    return {m: tuple(r for r in flow.stages[m].requires if r in members) for m in group.members}


def _neutral(stage: Stage, effects_neutral: dict[Effects, bool]) -> bool:
    """Nothing the walk tracks changes when the stage runs (the checks it asks do not count).

    ``effects_neutral`` remembers the answer for each Effects value: most stages share a few.
    """
    fx = stage.effects
    if fx not in effects_neutral:
        effects_neutral[fx] = replace(fx, asks=()) == _NO_EFFECTS
    return (
        effects_neutral[fx]
        and not stage.irreversible
        and stage.on_fail == SCRAP
        and stage.allowed_until is None
        and stage.allowed_from is None
    )


def _blocks_in_loops(flow: Flow) -> list[bool]:
    """For each block of the route: whether a unit that passed it can come back to it.

    A unit comes back only through a failure at or after the block that leads into rework resuming
    at or before it: each route stage whose on_fail leads into rework covers the blocks from the
    earliest resume its rework (and the rework that can follow) leads to, up to its own block.
    """
    earliest: dict[str, int] = {}
    cover = [0] * (len(flow.route) + 1)
    for stage in flow.stages.values():
        if stage.rework or stage.on_fail == SCRAP or stage.on_fail not in flow.stages:
            continue
        if stage.on_fail not in earliest:
            earliest[stage.on_fail] = _earliest_resume(flow, stage.on_fail)
        start, end = earliest[stage.on_fail], flow.block_of(stage.id)
        if start <= end:
            cover[start] += 1
            cover[end + 1] -= 1
    inside, depth = [], 0
    for count in cover[:-1]:
        depth += count
        inside.append(depth > 0)
    return inside


def _earliest_resume(flow: Flow, rework_id: str) -> int:
    """The earliest block a unit sent to ``rework_id`` can resume at, through any rework after it."""
    earliest = len(flow.route)
    seen = {rework_id}
    todo = [rework_id]
    while todo:
        stage = flow.stages[todo.pop()]
        if stage.then is not None and stage.then in flow.stages and not flow.stages[stage.then].rework:
            earliest = min(earliest, flow.block_of(stage.then))
        nxt = stage.on_fail
        if nxt != SCRAP and nxt in flow.stages and flow.stages[nxt].rework and nxt not in seen:
            seen.add(nxt)
            todo.append(nxt)
    return earliest


class _Unit(NamedTuple):
    """What the route rules know of a unit at one point of one route."""

    block: int
    rework: str | None
    group_done: frozenset[str]
    lifecycle: int
    irreversible: frozenset[str]
    storage: frozenset[str]
    ram: frozenset[str]
    via: str | None
    """The last rework the unit came through, to explain a route."""
    has_os: bool = False
    """The unit's storage holds an OS."""


class RouteWalk:
    def __init__(self, flow: Flow, problems: Report) -> None:
        self.flow = flow
        self.problems = problems
        self.final_state = len(flow.lifecycle) - 1 if flow.lifecycle else None
        self.arrivals: dict[str, set[tuple[int, str | None]]] = defaultdict(set)
        self.entered: set[str] = set()
        effects_neutral: dict[Effects, bool] = {}
        self.neutral = {sid: _neutral(stage, effects_neutral) for sid, stage in flow.stages.items()}
        self.inside = {entry.id: _requires_inside(flow, entry) for entry in flow.route if isinstance(entry, Group)}
        self.work = 0
        self.in_loop = _blocks_in_loops(flow)
        self.storage_rules = StorageRules(flow, problems)
        """The blocks a route can come back to after passing them: only an irreversible stage there
        is remembered (each one remembered makes the walk's unit states larger, and more of them)."""

    def run(self) -> None:
        flow = self.flow
        for stage in flow.stages.values():
            if stage.irreversible and stage.retry_max:
                self.problems.add(
                    stage.at("retry"),
                    "irreversible-retry",
                    f"irreversible stage '{stage.id}' has retry max {stage.retry_max}: a retry would enter it twice",
                )
        if not flow.route:
            return
        start = self._settle(_Unit(0, None, frozenset(), 0, frozenset(), frozenset(), frozenset(), None))
        seen: set[_Unit] = set()
        todo = [start]
        while todo:
            unit = todo.pop()
            if unit in seen:
                continue
            seen.add(unit)
            runnable = self._runnable(unit)
            if self.work > MAX_WALK:
                self._too_complex(unit, len(seen))
                return
            for stage in runnable:
                todo.extend(self._settle(u) for u in self._run(stage, unit))
        self._report_windows()
        self.storage_rules.report()
        for rework_id in flow.rework_ids:
            if rework_id not in self.entered:
                self.problems.add(
                    flow.stages[rework_id].pos,
                    "unreachable",
                    f"rework stage '{rework_id}' is never entered: no on_fail names it",
                )

    def _too_complex(self, unit: _Unit, states: int) -> None:
        entry = self.flow.route[unit.block] if unit.block < len(self.flow.route) else None
        where = entry.pos if isinstance(entry, Group) else self.flow.pos
        self.problems.add(
            where,
            "route-too-complex",
            f"the route has too many orders to check (more than {states} unit states): an any_order group of "
            "many members that change the unit can run in more orders than can be walked; split it, or order "
            "its members with requires",
        )

    def _runnable(self, unit: _Unit) -> list[Stage]:
        self.work += 1
        if unit.rework is not None:
            return [self.flow.stages[unit.rework]]
        if unit.block >= len(self.flow.route):
            return []
        entry = self.flow.route[unit.block]
        if not isinstance(entry, Group):
            return [self.flow.stages[entry]]
        inside = self.inside[entry.id]
        self.work += len(entry.members)
        return [
            self.flow.stages[m]
            for m in entry.members
            if m not in unit.group_done and all(r in unit.group_done for r in inside[m])
        ]

    def _settle(self, unit: _Unit) -> _Unit:
        """``unit`` with every group member that changes nothing the rules track run, as soon as it may.

        Such a member commutes with every other member: running it first stands for every order, so
        a group walks only the orders of the members that matter, whatever its width.
        """
        route = self.flow.route
        while unit.rework is None and unit.block < len(route) and isinstance(route[unit.block], Group):
            entry = route[unit.block]
            assert isinstance(entry, Group)
            done = self._run_neutral(entry, unit.group_done)
            if len(done) < len(entry.members):
                return unit._replace(group_done=done)
            unit = unit._replace(block=unit.block + 1, group_done=frozenset())
        return unit

    def _run_neutral(self, group: Group, done: frozenset[str]) -> frozenset[str]:
        """``done`` and the neutral members that can run after it, in dependency order (Kahn's)."""
        inside = self.inside[group.id]
        waiting = {m: sum(r not in done for r in inside[m]) for m in group.members if m not in done and self.neutral[m]}
        ready = [m for m, count in waiting.items() if count == 0]
        if not ready:
            return done
        dependents: dict[str, list[str]] = defaultdict(list)
        for m in waiting:
            for r in inside[m]:
                dependents[r].append(m)
        added: set[str] = set()
        while ready:
            member = ready.pop()
            added.add(member)
            for later in dependents.get(member, ()):
                waiting[later] -= 1
                if waiting[later] == 0:
                    ready.append(later)
        return done | added

    def _run(self, stage: Stage, unit: _Unit) -> list[_Unit]:
        self.entered.add(stage.id)
        self.arrivals[stage.id].add((unit.lifecycle, unit.via))
        if self._window_closed(stage, unit.lifecycle):
            return []  # refused here; reported once all routes are known
        if stage.id in unit.irreversible:
            how = f" (through rework '{unit.via}')" if unit.via else ""
            self.problems.add(
                stage.pos,
                "irreversible-twice",
                f"irreversible stage '{stage.id}' can be entered twice on a route{how}",
            )
        again = stage.rework or self.in_loop[self.flow.block_of(stage.id)]
        failed = unit._replace(irreversible=unit.irreversible | {stage.id}) if stage.irreversible and again else unit
        outcomes = [self._passed(stage, failed)]
        if stage.on_fail != SCRAP and stage.on_fail in self.flow.stages:
            outcomes.append(failed._replace(rework=stage.on_fail, via=stage.on_fail))
        return [u for u in outcomes if u is not None]

    def _passed(self, stage: Stage, unit: _Unit) -> _Unit | None:
        fx = stage.effects
        self.storage_rules.check(stage, unit.storage, unit.ram, unit.has_os, unit.via)
        if fx.installs_os or fx.replaces_storage:
            unit = unit._replace(has_os=os_after(fx, unit.has_os))
        storage, ram = unit.storage, unit.ram
        if fx.replaces_storage or fx.loads or fx.removes:  # most stages leave images alone
            storage = frozenset() if fx.replaces_storage else storage
            storage = (storage | set(fx.loads)) - set(fx.removes)
        if fx.clears_volatile or fx.loads_volatile or fx.removes:
            ram = frozenset() if fx.clears_volatile else ram
            ram = (ram | set(fx.loads_volatile)) - set(fx.removes)
        lifecycle = unit.lifecycle
        if fx.ready_check:
            self._no_temporary(stage, unit.storage | unit.ram, "ready-to-ship stage")
        if fx.expects_state in self.flow.lifecycle and self.flow.lifecycle_index(fx.expects_state) != lifecycle:
            how = f" (through rework '{unit.via}')" if unit.via else ""
            self.problems.add(
                stage.pos,
                "lifecycle-expected",
                f"stage '{stage.id}' checks that the unit is {fx.expects_state}, but on a route it is "
                f"{self.flow.lifecycle[lifecycle]} here{how}",
            )
        if fx.advances_to is not None and fx.advances_to in self.flow.lifecycle:
            target = self.flow.lifecycle_index(fx.advances_to)
            if target <= lifecycle:
                how = f" (through rework '{unit.via}')" if unit.via else ""
                verb = "back" if target < lifecycle else "to the state it is already in"
                self.problems.add(
                    stage.pos,
                    "lifecycle-backwards",
                    f"stage '{stage.id}' moves the lifecycle {verb}: from "
                    f"{self.flow.lifecycle[lifecycle]} to {fx.advances_to}{how}",
                )
            if target == self.final_state:
                self._no_temporary(stage, unit.storage | unit.ram, "final lifecycle advance")
            lifecycle = max(lifecycle, target)
        if stage.rework:
            return self._resume(stage, unit._replace(storage=storage, ram=ram, lifecycle=lifecycle))
        entry = self.flow.route[unit.block]
        if isinstance(entry, Group):
            done = unit.group_done | {stage.id}
            if len(done) < len(entry.members):
                return unit._replace(storage=storage, ram=ram, lifecycle=lifecycle, group_done=done)
        block = unit.block + 1
        return unit._replace(storage=storage, ram=ram, lifecycle=lifecycle, block=block, group_done=frozenset())

    def _resume(self, stage: Stage, unit: _Unit) -> _Unit | None:
        if stage.then is None:
            return None
        block = self.flow.block_of(stage.then)
        entry = self.flow.route[block]
        # Back into the group it failed in: the members that passed stay passed. Into another
        # group: the whole group runs again, the resume stage among the others.
        same_group = isinstance(entry, Group) and block == unit.block
        done = unit.group_done - {stage.then} if same_group else frozenset()
        return unit._replace(rework=None, block=block, group_done=done)

    def _no_temporary(self, stage: Stage, present: frozenset[str], what: str) -> None:
        for name in sorted(present):
            image = self.flow.images.get(name)
            if image is None or not image.temporary:
                continue
            loaders = [
                s.id for s in self.flow.stages.values() if name in s.effects.loads or name in s.effects.loads_volatile
            ]
            self.problems.add(
                stage.pos,
                "temporary-image-left",
                f"temporary image '{name}' (loaded by {', '.join(loaders)}) can still be "
                f"on the unit at {what} '{stage.id}': remove it first on every route",
            )

    def _window_closed(self, stage: Stage, lifecycle: int) -> bool:
        states = self.flow.lifecycle
        if stage.allowed_until in states and lifecycle >= states.index(stage.allowed_until):
            return True
        return bool(stage.allowed_from in states and lifecycle < states.index(stage.allowed_from))

    def _report_windows(self) -> None:
        """Check 4: a stage whose lifecycle window is closed wherever it can run."""
        for stage_id, arrivals in self.arrivals.items():
            stage = self.flow.stages[stage_id]
            closed = [(lc, via) for lc, via in arrivals if self._window_closed(stage, lc)]
            if not closed:
                continue
            lc, via = max(closed, key=lambda a: (a[0], a[1] or ""))
            key = (
                "allowed_until"
                if stage.allowed_until and self._window_closed(replace(stage, allowed_from=None), lc)
                else "allowed_from"
            )
            bound = stage.allowed_until if key == "allowed_until" else stage.allowed_from
            state = self.flow.lifecycle[lc]
            how = f" through rework '{via}'" if via else ""
            if len(closed) == len(arrivals):
                self.problems.add(
                    stage.at(key),
                    "lifecycle-window",
                    f"stage '{stage_id}' can only run when the unit is {state}{how}, "
                    f"and {key} {bound} refuses it there",
                )
            else:
                self.problems.add(
                    stage.at(key),
                    "lifecycle-window",
                    f"stage '{stage_id}' may run when the unit is already {state}"
                    f"{how} on some routes, where {key} {bound} refuses it",
                    "warning",
                )
