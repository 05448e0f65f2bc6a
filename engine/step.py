"""The step contract: what a step type declares to the engine.

A step type is a class with a unique dotted ``name``, a frozen dataclass ``Params`` holding its
``with:`` parameters, and ``effects()`` telling the flow checker what running it does to a unit
(images loaded or removed, lifecycle advanced, ready-to-ship gate). Step types live in ``steps/``
and reach the engine only through the registry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from engine.context import StepContext
    from engine.outcome import Outcome

RefKind = Literal["image", "lifecycle"]


def param(doc: str, *, default: Any = dataclasses.MISSING, ref: RefKind | None = None) -> Any:
    """Declare one step parameter with its help text.

    ``ref`` marks a parameter whose value names an image or a lifecycle state of the recipe, so
    the checker can verify it (and suggest the right name).
    """
    metadata: dict[str, Any] = {"doc": doc}
    if ref is not None:
        metadata["ref"] = ref
    if isinstance(default, list | dict | set):
        raise TypeError("mutable defaults are not allowed in step parameters; use a tuple")
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Effects:
    """What one stage does to a unit, as far as the route rules care."""

    loads: tuple[str, ...] = ()
    """Images written to the unit's persistent storage, next to what is there."""
    loads_volatile: tuple[str, ...] = ()
    """Images booted from RAM: gone at the next reboot."""
    removes: tuple[str, ...] = ()
    """Images deleted from the unit."""
    replaces_storage: bool = False
    """Writes a whole storage image: everything on persistent storage before is gone."""
    clears_volatile: bool = False
    """Reboots the unit from its storage: RAM-booted images are gone."""
    advances_to: str | None = None
    """Lifecycle state the unit moves to when the stage passes."""
    ready_check: bool = False
    """A ready-to-ship gate: no temporary image may be left on the unit."""
    expects_state: str | None = None
    """Lifecycle state the unit must be in when the stage runs (the step checks it on the unit)."""
    asks: tuple[str, ...] = ()
    """Manual checks the operator is asked (an answers file is checked against them)."""


class StepType:
    """Base of every step type.

    Subclasses set ``name``, ``summary`` and ``Params``, implement ``run`` and override ``effects``
    when running them changes what the route rules track. The runner makes one instance per stage.

    ``run`` returns None (PASS, unless a measurement fails its limits) or an Outcome; it raises
    ``engine.outcome.StepFailed`` when the unit is bad (FAIL) and ``StationError`` (or anything
    else) when the station is (ERROR). It must not time or log its own start and end: the
    runner does that for every step.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type]
    example: ClassVar[Mapping[str, Any]] = {}
    """A minimal valid ``with:`` for this type, used by docs and the contract tests."""

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects()

    def run(self, ctx: StepContext) -> Outcome | None:
        raise NotImplementedError(f"step type '{self.name}' cannot run")


@dataclass(frozen=True)
class NoParams:
    """A step type that takes no parameters."""
