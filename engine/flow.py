"""The compiled flow: immutable, typed, and the one thing the checker, graph and runner read.

A Flow is a route of stages (some gathered in any_order groups) plus rework stages outside the
route. Each stage knows the step type that runs it, its parameters as that type's dataclass, and
the effects running it has on a unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from engine.diagnostics import Pos
from engine.outcome import UnitStatus
from engine.step import Effects

SCRAP = "scrap"
START = "start"
SHIPPED = UnitStatus.SHIPPED.value
SCRAPPED = UnitStatus.SCRAPPED.value
RESERVED_IDS = (START, SHIPPED, SCRAPPED, SCRAP)
"""Names of the flow's own states (its ends are named for the unit's status there) and of on_fail's scrap: no
stage or group may take them."""
_NOWHERE = Pos("<flow>", 1, 1)


def _frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Limits:
    low: float | None = None
    high: float | None = None

    def contains(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


@dataclass(frozen=True)
class Measurement:
    name: str
    limits: Limits | None = None
    marginal: Limits | None = None
    equals: Any = None
    matches: str | None = None
    units: str | None = None


@dataclass(frozen=True)
class Sampling:
    rate: float | None = None
    aql: float | None = None
    level: str = "II"
    lot_size: int | None = None
    recall_threshold: int | None = None


@dataclass(frozen=True)
class Stage:
    id: str
    step: str
    params: Any = None
    effects: Effects = field(default_factory=Effects)
    station: str | None = None
    requires: tuple[str, ...] = ()
    irreversible: bool = False
    retry_max: int = 0
    on_fail: str = SCRAP
    timeout_s: float | None = None
    measurements: tuple[Measurement, ...] = ()
    allowed_until: str | None = None
    allowed_from: str | None = None
    sampling: Sampling | None = None
    group: str | None = None
    """Id of the any_order group the stage belongs to."""
    rework: bool = False
    then: str | None = None
    """For a rework stage: where the unit resumes when it passes."""
    max_visits: int | None = None
    pos: Pos = _NOWHERE
    where: Mapping[str, Pos] = field(default_factory=_frozen)
    """Position of each key's value in the recipe, for diagnostics."""

    def at(self, key: str) -> Pos:
        return self.where.get(key, self.pos)


@dataclass(frozen=True)
class Group:
    id: str
    members: tuple[str, ...]
    pos: Pos = _NOWHERE


@dataclass(frozen=True)
class Image:
    name: str
    file: str | None = None
    kind: str | None = None
    platform: str | None = None
    type: str | None = None
    temporary: bool = False
    features: tuple[str, ...] = ()
    pos: Pos = _NOWHERE
    feature_pos: tuple[Pos, ...] = ()


@dataclass(frozen=True)
class Flow:
    recipe: str
    version: int
    stages: Mapping[str, Stage]
    """Every stage by id: the route's (in route order) then the rework stages."""
    route: tuple[str | Group, ...]
    """The route: stage ids and any_order groups, in order."""
    lifecycle: tuple[str, ...] = ()
    locks: Mapping[str, str] = field(default_factory=_frozen)
    """Capabilities of the unit a lifecycle state locks away: capability -> the state it is locked from."""
    images: Mapping[str, Image] = field(default_factory=_frozen)
    stations: Mapping[str, int] = field(default_factory=_frozen)
    content_hash: str = ""
    abstract: bool = False
    source: str = "<flow>"
    pos: Pos = _NOWHERE
    product: str | None = None
    """The product built (its SKU, else its name), as units are recorded under."""
    serial_pattern: str | None = None
    """A regular expression every serial run with this flow must match whole (``product.serial_pattern``)."""

    def __post_init__(self) -> None:
        groups = [entry.id for entry in self.route if isinstance(entry, Group)]
        reserved = sorted({*self.stages, *groups} & set(RESERVED_IDS))
        if reserved:
            raise ValueError(f"stage or group ids {reserved} are reserved for the flow's own states")
        object.__setattr__(self, "stages", _frozen(self.stages))
        object.__setattr__(self, "locks", _frozen(self.locks))
        object.__setattr__(self, "images", _frozen(self.images))
        object.__setattr__(self, "stations", _frozen(self.stations))

    @property
    def route_ids(self) -> tuple[str, ...]:
        """Stage ids of the route in order, group members in their written order."""
        ids: list[str] = []
        for entry in self.route:
            ids.extend(entry.members if isinstance(entry, Group) else (entry,))
        return tuple(ids)

    @property
    def rework_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.stages.values() if s.rework)

    def lifecycle_index(self, state: str) -> int:
        return self.lifecycle.index(state)

    def first_lock(self, stage: Stage) -> tuple[str, str] | None:
        """(capability, state) of the first lifecycle state that locks a capability ``stage`` needs, or None."""
        locked = [
            (self.lifecycle_index(self.locks[capability]), capability)
            for capability in stage.effects.needs_capabilities
            if self.locks.get(capability) in self.lifecycle
        ]
        if not locked:
            return None
        index, capability = min(locked)
        return capability, self.lifecycle[index]

    @cached_property
    def _blocks(self) -> dict[str, int]:
        blocks: dict[str, int] = {}
        for i, entry in enumerate(self.route):
            for member in entry.members if isinstance(entry, Group) else (entry,):
                blocks[member] = i
        return blocks

    def block_of(self, stage_id: str) -> int:
        """Index in ``route`` of the entry holding the stage."""
        return self._blocks[stage_id]
