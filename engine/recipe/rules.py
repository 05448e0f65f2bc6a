"""The route rules, checked on a compiled Flow before any unit is touched.

Structural rules (references, ordering inside any_order groups, bounded loops, reachability) are
checked here on the stage graph; the rules that hold "on every route" (irreversible once,
lifecycle forward, lifecycle windows, temporary images gone) by ``engine.recipe.routewalk``, and the
order rules (connect first, finalize last, capabilities a lifecycle state locks) by
``engine.recipe.orderwalk``.
"""

from __future__ import annotations

from collections import defaultdict

from engine.diagnostics import Diagnostic, Pos, did_you_mean
from engine.flow import SCRAP, Flow, Group
from engine.recipe.orderwalk import OrderWalk
from engine.recipe.routewalk import RouteWalk


def check_flow(flow: Flow) -> list[Diagnostic]:
    problems = _Problems()
    _check_references(flow, problems)
    _check_requires(flow, problems)
    _check_loops(flow, problems)
    if not problems.errors:
        RouteWalk(flow, problems).run()
        OrderWalk(flow, problems).run()
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
                    f"{did_you_mean(stage.on_fail, flow.stages) or did_you_mean(stage.on_fail, [SCRAP])}",
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
    """Members that no order can run, because their requires inside the group form a cycle.

    Kahn's algorithm: a member runs once every member it requires has; what never runs is stuck.
    """
    members = set(group.members)
    waiting = {m: sum(r in members for r in flow.stages[m].requires) for m in group.members}
    dependents: dict[str, list[str]] = defaultdict(list)
    for m in group.members:
        for r in flow.stages[m].requires:
            if r in members:
                dependents[r].append(m)
    ready = [m for m, count in waiting.items() if count == 0]
    while ready:
        for later in dependents.get(ready.pop(), ()):
            waiting[later] -= 1
            if waiting[later] == 0:
                ready.append(later)
    return {m for m, count in waiting.items() if count > 0}


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
