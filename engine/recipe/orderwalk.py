"""Check the order rules on every route: connect first, finalize last, no capability used once locked.

The step types declare what the rules read (``engine.step.Effects``): ``connects`` (the stage opens
the station's link to the unit), ``talks_to_unit`` (most stages do; an operator's check does not),
``advances_to`` (the lifecycle advance) and ``needs_capabilities`` (``rf-test-mode``, which the
recipe's ``lifecycle: {locks: …}`` may lock from a state on).

Each fact the rules need changes one way only: once connected a unit stays connected, and its
lifecycle only moves forward. So instead of walking every route one by one, the check solves for two
facts at each stage, over every route that reaches it (every any_order ordering, every failure into
rework and back): whether the unit is connected on *all* of them, and the latest lifecycle state it
can be in on *any*. Inside an any_order group a member is connected when the unit was before the
group or the member requires (directly or not) a member that connects; a member that advances the
lifecycle may run before every member that it does not require.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple, Protocol

from engine.diagnostics import Pos
from engine.flow import SCRAP, Flow, Group, Stage


class Report(Protocol):
    def add(self, pos: Pos, code: str, message: str, severity: str = "error") -> None: ...


class Facts(NamedTuple):
    """What holds of the unit at one point, over every route that reaches it."""

    connected: bool
    """Connected on every route."""
    lifecycle: int
    """The latest lifecycle state (its index) on some route."""
    connected_via: str | None = None
    """The rework through which the unit can come unconnected, to explain a route."""
    lifecycle_via: str | None = None
    """The rework through which the unit can come in its latest state."""

    def join(self, other: Facts | None) -> Facts:
        """Both points' routes: connected on all, the latest state of any (the vias of what got worse)."""
        if other is None:
            return self
        connected = self.connected and other.connected
        lifecycle = max(self.lifecycle, other.lifecycle)
        return Facts(
            connected,
            lifecycle,
            self.connected_via if connected == self.connected else other.connected_via,
            self.lifecycle_via if lifecycle == self.lifecycle else other.lifecycle_via,
        )


class _GroupOrder:
    """What the any_order orderings of one group allow, for each member."""

    def __init__(self, flow: Flow, group: Group) -> None:
        members = set(group.members)
        self.requires = {m: [r for r in flow.stages[m].requires if r in members] for m in group.members}
        dependents: dict[str, list[str]] = defaultdict(list)
        for m, reqs in self.requires.items():
            for r in reqs:
                dependents[r].append(m)
        self.connected = {m: False for m in group.members}
        """The member requires (directly or not) a member that connects: it always runs connected."""
        for m in group.members:
            if flow.stages[m].effects.connects:
                for later in _reached(m, dependents):
                    self.connected[later] = True
        self.before: dict[str, int] = {m: -1 for m in group.members}
        """The latest lifecycle state a member advancing the unit may have set before the member runs."""
        self.not_before: dict[str, set[str]] = {}
        """For each member that advances the lifecycle: the members it requires (they always run first)."""
        for a in group.members:
            target = _target(flow, flow.stages[a])
            if target is None:
                continue
            self.not_before[a] = _reached(a, self.requires)
            for m in group.members:
                if m not in self.not_before[a]:
                    self.before[m] = max(self.before[m], target)


def _reached(start: str, edges: dict[str, list[str]]) -> set[str]:
    """Every node reached from ``start`` along ``edges``, ``start`` included."""
    seen = {start}
    todo = [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _target(flow: Flow, stage: Stage) -> int | None:
    """Index of the lifecycle state ``stage`` moves the unit to, or None."""
    to = stage.effects.advances_to
    return flow.lifecycle_index(to) if to is not None and to in flow.lifecycle else None


def _passed(flow: Flow, stage: Stage, facts: Facts) -> Facts:
    target = _target(flow, stage)
    return facts._replace(
        connected=facts.connected or stage.effects.connects,
        lifecycle=facts.lifecycle if target is None else max(facts.lifecycle, target),
    )


class OrderWalk:
    """Solve the facts at every stage, then report the stages that break an order rule."""

    def __init__(self, flow: Flow, problems: Report) -> None:
        self.flow = flow
        self.problems = problems
        self.final = len(flow.lifecycle) - 1 if len(flow.lifecycle) > 1 else None
        self.groups = {entry.id: _GroupOrder(flow, entry) for entry in flow.route if isinstance(entry, Group)}
        self.entries: list[Facts | None] = [None] * (len(flow.route) + 1)
        self.rework_in: dict[str, Facts] = {}
        self.at: dict[str, Facts] = {}
        """The facts when each stage starts (a group member: the group's, see ``_member``)."""

    def run(self) -> None:
        if not self.flow.route:
            return
        self.entries[0] = Facts(connected=False, lifecycle=0)
        while self._pass():
            pass
        connectors = [s.id for s in self.flow.stages.values() if s.effects.connects]
        finals = [
            s.id for s in self.flow.stages.values() if self.final is not None and _target(self.flow, s) == self.final
        ]
        for stage in self.flow.stages.values():
            facts = self.at.get(stage.id)
            if facts is None:
                continue  # never reached: reported by the reachability rule
            if connectors:
                self._connect_first(stage, facts, connectors)
            if finals:
                self._finalize_last(stage, facts, finals)
            self._capabilities(stage, facts)

    # -- solving -----------------------------------------------------------------------------------

    def _pass(self) -> bool:
        """One pass over the route and the rework stages; True when some facts changed."""
        changed = False
        for block, entry in enumerate(self.flow.route):
            facts = self.entries[block]
            if facts is None:
                continue
            if isinstance(entry, Group):
                order = self.groups[entry.id]
                out = facts
                for m in entry.members:
                    stage = self.flow.stages[m]
                    self.at[m] = facts
                    changed |= self._failed(stage, self._member(order, m, facts))
                    out = _passed(self.flow, stage, out)
            else:
                stage = self.flow.stages[entry]
                self.at[entry] = facts
                changed |= self._failed(stage, facts)
                out = _passed(self.flow, stage, facts)
            changed |= self._merge_entry(block + 1, out)
        for rework_id in self.flow.rework_ids:
            facts = self.rework_in.get(rework_id)
            if facts is None:
                continue
            stage = self.flow.stages[rework_id]
            self.at[rework_id] = facts
            changed |= self._failed(stage, facts)
            if stage.then is not None and stage.then in self.flow.stages and not self.flow.stages[stage.then].rework:
                resumed = _passed(self.flow, stage, facts)._replace(connected_via=rework_id, lifecycle_via=rework_id)
                changed |= self._merge_entry(self.flow.block_of(stage.then), resumed)
        return changed

    def _member(self, order: _GroupOrder, member: str, entry: Facts) -> Facts:
        """The facts when a group member starts, over every ordering of its group."""
        return entry._replace(
            connected=entry.connected or order.connected[member],
            lifecycle=max(entry.lifecycle, order.before[member]),
        )

    def _failed(self, stage: Stage, facts: Facts) -> bool:
        """A failure of ``stage`` sends the unit, as it was when the stage started, to its on_fail rework."""
        target = stage.on_fail
        if target == SCRAP or target not in self.flow.stages or not self.flow.stages[target].rework:
            return False
        old = self.rework_in.get(target)
        new = facts if old is None else old.join(facts)
        self.rework_in[target] = new
        return old is None or new[:2] != old[:2]

    def _merge_entry(self, block: int, facts: Facts) -> bool:
        old = self.entries[block]
        new = facts if old is None else old.join(facts)
        self.entries[block] = new
        return old is None or new[:2] != old[:2]

    # -- the rules ---------------------------------------------------------------------------------

    def _member_facts(self, stage: Stage, facts: Facts) -> Facts:
        return self._member(self.groups[stage.group], stage.id, facts) if stage.group and not stage.rework else facts

    def _connect_first(self, stage: Stage, entry: Facts, connectors: list[str]) -> None:
        """Rule: every stage that talks to the unit comes after a stage that connects to it."""
        fx = stage.effects
        if not fx.talks_to_unit or fx.connects or self._member_facts(stage, entry).connected:
            return
        in_group = [c for c in connectors if stage.group and self.flow.stages[c].group == stage.group]
        if entry.connected is False and in_group and not stage.rework:
            where = f"any_order group '{stage.group}'"
            self.problems.add(
                stage.pos,
                "connect-first",
                f"stage '{stage.id}' talks to the unit and may run before '{in_group[0]}' connects to it "
                f"({where}): add requires: [{in_group[0]}]",
            )
            return
        how = f" on a route through rework '{entry.connected_via}'" if entry.connected_via else ""
        self.problems.add(
            stage.pos,
            "connect-first",
            f"stage '{stage.id}' talks to the unit before any stage connects to it{how} "
            f"({', '.join(repr(c) for c in connectors)} connects): connect first",
        )

    def _finalize_last(self, stage: Stage, entry: Facts, finals: list[str]) -> None:
        """Rule: after the final lifecycle advance no stage touches the unit; a final advance is no
        member of an any_order group, where it might not run last."""
        assert self.final is not None
        if stage.id in finals and stage.group and not stage.rework:
            self._final_in_group(stage)
            return
        if not stage.effects.talks_to_unit or stage.effects.advances_to is not None:
            return
        if entry.lifecycle < self.final:
            return  # (a group member's own group is checked at its final advance)
        how = f" on a route through rework '{entry.lifecycle_via}'" if entry.lifecycle_via else ""
        state = self.flow.lifecycle[self.final]
        self.problems.add(
            stage.pos,
            "finalize-last",
            f"stage '{stage.id}' touches the unit after the final lifecycle advance "
            f"({', '.join(repr(f) for f in finals)} to {state}){how}: finalize last",
        )

    def _final_in_group(self, stage: Stage) -> None:
        assert stage.group is not None
        order = self.groups[stage.group]
        group = next(e for e in self.flow.route if isinstance(e, Group) and e.id == stage.group)
        after = [m for m in group.members if m not in order.not_before[stage.id]]
        if after:
            self.problems.add(
                stage.pos,
                "finalize-last",
                f"final lifecycle advance '{stage.id}' is a member of any_order group '{stage.group}': it might "
                f"not run last ('{after[0]}' may run after it); move it after the group",
            )

    def _capabilities(self, stage: Stage, entry: Facts) -> None:
        """Rule: a stage needing a capability the lifecycle locks never runs at or after the locking state."""
        lock = self.flow.first_lock(stage)
        if lock is None:
            return
        capability, state = lock
        facts = self._member_facts(stage, entry)
        if facts.lifecycle < self.flow.lifecycle_index(state):
            return
        how = f" on a route through rework '{facts.lifecycle_via}'" if facts.lifecycle_via else ""
        self.problems.add(
            stage.pos,
            "capability-locked",
            f"stage '{stage.id}' needs {capability}, which lifecycle state {state} locks, and the unit can be "
            f"{self.flow.lifecycle[facts.lifecycle]} here{how}: run it before the advance to {state}",
        )
