"""Where step types are found: the ``floorflow.steps`` entry-point group.

A registry is an object handed to whoever needs it, never a module global. ``Registry.discover``
fills one from the installed distributions, so a third-party package adds step types by declaring
entry points, without touching floorflow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from engine.diagnostics import did_you_mean
from engine.step import StepType

ENTRY_POINT_GROUP = "floorflow.steps"
LINES_GROUP = "floorflow.lines"


class RegistrationError(Exception):
    """A step type cannot be registered (duplicate name, malformed class)."""


class UnknownStepType(KeyError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.message = f"unknown step type '{name}'{did_you_mean(name, known)}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class Registry:
    def __init__(self) -> None:
        self._types: dict[str, type[StepType]] = {}
        self._origin: dict[str, str] = {}
        self._pending: dict[str, EntryPoint] = {}
        """Entry points found but not imported yet: a recipe imports only the step types it uses."""

    def register(self, step_type: type[StepType], origin: str = "") -> None:
        name = getattr(step_type, "name", None)
        if not isinstance(name, str) or not name:
            raise RegistrationError(f"{step_type!r} has no step name")
        params = getattr(step_type, "Params", None)
        if not (dataclasses.is_dataclass(params) and params.__dataclass_params__.frozen):  # type: ignore[union-attr]
            raise RegistrationError(f"step type '{name}': Params must be a frozen dataclass")
        if name in self._pending or (name in self._types and self._types[name] is not step_type):
            raise RegistrationError(f"step type '{name}' is registered twice: by {self._origin[name]} and by {origin}")
        self._types[name] = step_type
        self._origin[name] = origin or step_type.__module__

    def _declare(self, ep: EntryPoint) -> None:
        origin = f"{ep.dist.name if ep.dist is not None else '?'} ({ep.value})"
        if ep.name in self._origin and self._origin[ep.name] != origin:
            raise RegistrationError(
                f"step type '{ep.name}' is registered twice: by {self._origin[ep.name]} and by {origin}"
            )
        self._pending[ep.name] = ep
        self._origin[ep.name] = origin

    def _load(self, name: str) -> type[StepType]:
        ep = self._pending.pop(name)
        step_type: type[StepType] = ep.load()
        if getattr(step_type, "name", None) != ep.name:
            raise RegistrationError(
                f"entry point '{ep.name}' ({ep.value}) loads a step type named '{getattr(step_type, 'name', None)}'"
            )
        self.register(step_type, origin=self._origin.pop(name))
        return step_type

    def get(self, name: str) -> type[StepType]:
        if name in self._types:
            return self._types[name]
        if name in self._pending:
            return self._load(name)
        raise UnknownStepType(name, self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._types or name in self._pending

    def __iter__(self) -> Iterator[type[StepType]]:
        return iter(self.get(name) for name in self.names())

    def names(self) -> list[str]:
        return sorted({*self._types, *self._pending})

    @classmethod
    def discover(cls) -> Registry:
        """Every step type that installed distributions declare in the entry-point group.

        Names are known at once; a step type's module is imported when it is first asked for.
        """
        registry = cls()
        seen: set[tuple[str, str]] = set()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if (ep.name, ep.value) in seen:  # one distribution seen twice on sys.path
                continue
            seen.add((ep.name, ep.value))
            registry._declare(ep)
        return registry


def line_factory(name: str) -> Any:
    """The Line class registered as ``name`` in the ``floorflow.lines`` group (``sim``, ``hardware``)."""
    found = {ep.name: ep for ep in entry_points(group=LINES_GROUP)}
    if name not in found:
        raise RegistrationError(f"no station hardware named '{name}' is installed{did_you_mean(name, found)}")
    return found[name].load()
