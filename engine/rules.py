"""The route rules, checked on a compiled Flow before any unit is touched.

Structural rules (references, ordering inside any_order groups, bounded loops, reachability) are
checked on the stage graph. The rules that hold "on every route" (irreversible once, lifecycle
forward, lifecycle windows, temporary images gone) are checked by walking every route through
the flow: every any_order ordering, every failure that leads into rework, with the abstract state
of a unit (lifecycle, irreversible stages entered, images on storage and in RAM) carried along.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from engine.diagnostics import Diagnostic, Pos, did_you_mean
from engine.flow import SCRAP, Flow, Group, Stage
from engine.step import Effects


def check_flow(flow: Flow) -> list[Diagnostic]:
    problems = _Problems()
    _check_references(flow, problems)
    _check_requires(flow, problems)
    _check_loops(flow, problems)
    if not problems.errors:
        _RouteWalk(flow, problems).run()
    return problems.items


class _Problems:
    def __init__(self) -> None:
        self.items: list[Diagnostic] = []
        self._seen: set[tuple[Pos, str]] = set()

    @property
    def errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)

    def add(self, pos: Pos, code: str, message: str, severity: str = "error") -> None:
        if (pos, message) not in self._seen:
            self._seen.add((pos, message))
            self.items.append(Diagnostic(pos, severity, code, message))  # type: ignore[arg-type]


def _check_references(flow: Flow, problems: _Problems) -> None:
    """Check 2: requires, on_fail and then name stages that exist, of the right kind."""
    route = set(flow.route_ids)
    rework = set(flow.rework_ids)
    for stage in flow.stages.values():
        for req in stage.requires:
            if req not in flow.stages:
                problems.add(
                    stage.at("requires"),
                    "unknown-stage",
                    f"stage '{stage.id}' requires unknown stage '{req}'{did_you_mean(req, flow.stages)}",
                )
            elif req in rework:
                problems.add(
                    stage.at("requires"),
                    "requires-rework",
                    f"stage '{stage.id}' requires rework stage '{req}', which most units never enter",
                )
        if stage.on_fail != SCRAP:
            if stage.on_fail not in flow.stages:
                problems.add(
                    stage.at("on_fail"),
                    "unknown-stage",
                    f"stage '{stage.id}': on_fail names unknown stage '{stage.on_fail}'"
                    f"{did_you_mean(stage.on_fail, [*flow.stages, SCRAP])}",
                )
            elif stage.on_fail not in rework:
                problems.add(
                    stage.at("on_fail"),
                    "on-fail-not-rework",
                    f"stage '{stage.id}': on_fail must be 'scrap' or a stage under rework:, "
                    f"and '{stage.on_fail}' is on the route",
                )
        if stage.rework and stage.then is None:
            problems.add(
                stage.pos,
                "rework-no-end",
                f"rework stage '{stage.id}' has no then: its route never ends; name the stage the unit resumes at",
            )
        if stage.then is not None and stage.then not in route:
            problems.add(
                stage.at("then"),
                "unknown-stage",
                f"rework stage '{stage.id}': then names '{stage.then}', which is not a stage "
                f"of the route{did_you_mean(stage.then, route)}",
            )
        if not stage.rework and (stage.then is not None or stage.max_visits is not None):
            problems.add(
                stage.pos,
                "not-rework",
                f"stage '{stage.id}': then/max_visits belong to rework stages",
            )


def _check_requires(flow: Flow, problems: _Problems) -> None:
    """Check 7 and ordering: a stage requires only stages before it or in its own group."""
    for stage in flow.stages.values():
        if stage.rework:
            continue
        block = flow.block_of(stage.id)
        for req in stage.requires:
            if req not in flow.stages or flow.stages[req].rework:
                continue
            req_block = flow.block_of(req)
            in_group = f"member of any_order group '{stage.group}' " if stage.group else ""
            if req == stage.id:
                problems.add(
                    stage.at("requires"),
                    "requires-later",
                    f"{in_group}'{stage.id}' requires itself: it could never run",
                )
            elif req_block > block:
                problems.add(
                    stage.at("requires"),
                    "requires-later",
                    f"{in_group}'{stage.id}' requires '{req}', which comes after it on the route: it could never run",
                )
    for entry in flow.route:
        if isinstance(entry, Group):
            stuck = _unorderable(flow, entry)
            if stuck:
                problems.add(
                    entry.pos,
                    "group-deadlock",
                    f"any_order group '{entry.id}' can never finish: {', '.join(sorted(stuck))} require each other",
                )


def _unorderable(flow: Flow, group: Group) -> set[str]:
    """Members that no order can run, because their requires inside the group form a cycle."""
    pending = set(group.members)
    done: set[str] = set()
    progress = True
    while pending and progress:
        ready = {m for m in pending if all(r in done or r not in pending for r in flow.stages[m].requires)}
        progress = bool(ready)
        done |= ready
        pending -= ready
    return pending


def _check_loops(flow: Flow, problems: _Problems) -> None:
    """Check 2: every loop through rework has a bound (max_visits on a rework stage in it)."""
    nodes: list[str] = [f"b{i}" for i in range(len(flow.route))] + list(flow.rework_ids)
    edges: dict[str, set[str]] = defaultdict(set)
    closing: dict[tuple[str, str], Pos] = {}

    def node_of(stage_id: str) -> str:
        return stage_id if flow.stages[stage_id].rework else f"b{flow.block_of(stage_id)}"

    for i in range(len(flow.route) - 1):
        edges[f"b{i}"].add(f"b{i + 1}")
    for stage in flow.stages.values():
        src = node_of(stage.id)
        if stage.on_fail in flow.stages:
            edges[src].add(node_of(stage.on_fail))
            closing[(src, node_of(stage.on_fail))] = stage.at("on_fail")
        if stage.then is not None and stage.then in flow.stages:
            edges[src].add(node_of(stage.then))
            closing[(src, node_of(stage.then))] = stage.at("then")
    # A loop is bounded when it passes through a rework stage with max_visits: take those out of
    # the graph, and any cycle left is a loop with no bound.
    bounded = {n for n in nodes if n in flow.stages and flow.stages[n].max_visits}
    open_edges = {a: {b for b in targets if b not in bounded} for a, targets in edges.items() if a not in bounded}
    for component in _cycles([n for n in nodes if n not in bounded], open_edges):
        back = sorted(pos for (a, b), pos in closing.items() if a in component and b in component)
        names = sorted(n for n in component if n in flow.stages)
        problems.add(
            back[-1] if back else flow.pos,
            "unbounded-loop",
            f"loop through rework {', '.join(repr(n) for n in names)} has no bound: "
            "give a rework stage in it max_visits",
        )


def _cycles(nodes: list[str], edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components that contain a cycle (Tarjan's, iterative: routes are long)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(sorted(edges.get(root, ()))))]
        while work:
            v, successors = work[-1]
            advanced = False
            for w in successors:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                component = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.add(w)
                    if w == v:
                        break
                if len(component) > 1 or v in edges.get(v, ()):
                    out.append(component)
    return out


def _neutral(stage: Stage) -> bool:
    return (
        stage.effects == Effects()
        and not stage.irreversible
        and stage.on_fail == SCRAP
        and stage.allowed_until is None
        and stage.allowed_from is None
    )


@dataclass(frozen=True)
class _Unit:
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


class _RouteWalk:
    def __init__(self, flow: Flow, problems: _Problems) -> None:
        self.flow = flow
        self.problems = problems
        self.final_state = len(flow.lifecycle) - 1 if flow.lifecycle else None
        self.arrivals: dict[str, set[tuple[int, str | None]]] = defaultdict(set)
        self.entered: set[str] = set()

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
        start = _Unit(0, None, frozenset(), 0, frozenset(), frozenset(), frozenset(), None)
        seen: set[_Unit] = set()
        todo = [start]
        while todo:
            unit = todo.pop()
            if unit in seen:
                continue
            seen.add(unit)
            for stage in self._runnable(unit):
                todo.extend(self._run(stage, unit))
        self._report_windows()
        for rework_id in flow.rework_ids:
            if rework_id not in self.entered:
                self.problems.add(
                    flow.stages[rework_id].pos,
                    "unreachable",
                    f"rework stage '{rework_id}' is never entered: no on_fail names it",
                )

    def _runnable(self, unit: _Unit) -> list[Stage]:
        if unit.rework is not None:
            return [self.flow.stages[unit.rework]]
        if unit.block >= len(self.flow.route):
            return []
        entry = self.flow.route[unit.block]
        if not isinstance(entry, Group):
            return [self.flow.stages[entry]]
        members = [self.flow.stages[m] for m in entry.members if m not in unit.group_done]
        ready = [m for m in members if all(r in unit.group_done or r not in entry.members for r in m.requires)]
        # A member that changes nothing the rules track commutes with every other member:
        # running it first stands for every order, which keeps wide groups cheap to walk.
        neutral = [m for m in ready if _neutral(m)]
        return neutral[:1] or ready

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
        entered = unit.irreversible | {stage.id} if stage.irreversible else unit.irreversible
        failed = replace(unit, irreversible=entered)
        outcomes = [self._passed(stage, replace(unit, irreversible=entered))]
        if stage.on_fail != SCRAP and stage.on_fail in self.flow.stages:
            outcomes.append(replace(failed, rework=stage.on_fail, via=stage.on_fail))
        return [u for u in outcomes if u is not None]

    def _passed(self, stage: Stage, unit: _Unit) -> _Unit | None:
        fx = stage.effects
        storage = frozenset() if fx.replaces_storage else unit.storage
        storage = (storage | set(fx.loads)) - set(fx.removes)
        ram = frozenset() if fx.clears_volatile else unit.ram
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
        moved = replace(unit, storage=storage, ram=ram, lifecycle=lifecycle)
        if stage.rework:
            return self._resume(stage, moved)
        entry = self.flow.route[unit.block]
        if isinstance(entry, Group):
            done = unit.group_done | {stage.id}
            if done != set(entry.members):
                return replace(moved, group_done=done)
        return replace(moved, block=unit.block + 1, group_done=frozenset())

    def _resume(self, stage: Stage, unit: _Unit) -> _Unit | None:
        if stage.then is None:
            return None
        block = self.flow.block_of(stage.then)
        entry = self.flow.route[block]
        # Back into the group it failed in: the members that passed stay passed. Into another
        # group: the whole group runs again, the resume stage among the others.
        same_group = isinstance(entry, Group) and block == unit.block
        done = unit.group_done - {stage.then} if same_group else frozenset()
        return replace(unit, rework=None, block=block, group_done=done)

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
