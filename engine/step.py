"""The step contract: what a step type declares to the engine.

A step type is a class with a unique dotted ``name``, a frozen dataclass ``Params`` holding its
``with:`` parameters, and ``effects()`` telling the flow checker what running it does to a unit
(images loaded or removed, lifecycle advanced, ready-to-ship gate). A step type may also declare
what one attempt typically costs on a line (``Typical``), which ``floorflow simulate`` uses where a
profile names no figure of its own. Step types live in ``steps/`` (or in any installed package) and
reach the engine only through the registry.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from engine.context import StepContext
    from engine.outcome import Outcome

RefKind = Literal["image", "lifecycle"]
DurationKind = Literal["fixed", "exponential", "triangular", "lognormal"]


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
    connects: bool = False
    """Opens the station's link to the unit: every stage that talks to the unit comes after it."""
    talks_to_unit: bool = True
    """Talks to the unit (commands, reads, writes: most steps do). False for what the operator or the
    station does alone (a manual check, a sample inspection): it may come before the connect, or after
    the final lifecycle advance."""
    needs_capabilities: tuple[str, ...] = ()
    """Capabilities of the unit the stage uses (``rf-test-mode``): a lifecycle state may lock one away."""
    installs_os: bool = False
    """Puts an OS on the unit's persistent storage (a full storage image, an OS recovery). A stage that
    ``replaces_storage`` without installing one leaves the unit with no OS."""
    needs_os: bool = False
    """Works on the OS on the unit's storage (installs an image next to it): a unit without one refuses it."""
    boots: bool = False
    """Waits for the unit to come up: from the OS on its storage, or from the image it already runs in
    RAM (unless ``clears_volatile``: rebooted first, it comes up from its storage only)."""
    expects_images: tuple[str, ...] | None = None
    """Images that must be exactly those on the unit (storage and RAM) when the stage runs; None checks none."""
    needs_image_type: str | None = None
    """An image of this ``type:`` must be on the unit when the stage runs (``test``: the factory test
    application that self-tests over the UART answer from)."""


@dataclass(frozen=True)
class Duration:
    """Seconds one attempt takes, as a distribution: what a line profile's ``time:`` says.

    Build one with ``fixed``, ``exponential``, ``triangular`` or ``lognormal``; the fields hold their
    figures in that order (``lognormal``: mean, then standard deviation).
    """

    kind: DurationKind
    a: float
    b: float = 0.0
    c: float = 0.0

    @classmethod
    def fixed(cls, seconds: float) -> Duration:
        return cls("fixed", seconds)

    @classmethod
    def exponential(cls, mean: float) -> Duration:
        return cls("exponential", mean)

    @classmethod
    def triangular(cls, low: float, mode: float, high: float) -> Duration:
        return cls("triangular", low, mode, high)

    @classmethod
    def lognormal(cls, mean: float, sd: float) -> Duration:
        return cls("lognormal", mean, sd)

    @property
    def mean(self) -> float:
        if self.kind == "triangular":
            return (self.a + self.b + self.c) / 3
        return self.a  # fixed, exponential (its mean), lognormal (its mean)


@dataclass(frozen=True)
class Typical:
    """What one attempt of a step type typically costs on a line.

    ``floorflow simulate`` uses it for every stage of the type that the profile given names no figure
    for: the profile's ``stages:``, ``steps:`` and ``defaults:`` win over it, and the shipped default
    profile's ``defaults:`` stand in only for a type that declares none.
    """

    time: Duration
    fail: float
    """Chance that one attempt fails (0 to 1)."""
    operator: bool = False
    """An operator is busy for the whole attempt (a manual check): simulated stations share operators."""

    def problem(self) -> str | None:
        """What makes these figures unusable (a chance outside 0 to 1, a negative time), or None."""
        if not 0.0 <= self.fail <= 1.0:
            return f"typical fail is a chance from 0 to 1, not {self.fail}"
        time = self.time
        figures = (time.a, time.b, time.c)
        if not all(math.isfinite(x) and x >= 0 for x in figures):
            return f"typical time {time.kind} needs finite figures of 0 or more, not {list(figures)}"
        if time.kind == "triangular" and not time.a <= time.b <= time.c:
            return f"typical time triangular is [min, mode, max] with min <= mode <= max, not {list(figures)}"
        if time.kind == "lognormal" and time.a <= 0:
            return f"typical time lognormal needs a mean above 0, not {time.a}"
        return None


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
    typical: ClassVar[Typical | None] = None
    """What one attempt typically costs on a line; None leaves it to the profile's ``defaults:``."""

    @classmethod
    def effects(cls, params: Any) -> Effects:
        return Effects()

    def run(self, ctx: StepContext) -> Outcome | None:
        raise NotImplementedError(f"step type '{self.name}' cannot run")


@dataclass(frozen=True)
class NoParams:
    """A step type that takes no parameters."""
