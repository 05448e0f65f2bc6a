"""Where step types are found: the ``floorflow.steps`` entry-point group.

A registry is an object handed to whoever needs it, never a module global. ``Registry.discover``
fills one from the installed distributions, so a third-party package adds step types by declaring
entry points, without touching floorflow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from importlib.metadata import entry_points

from engine.diagnostics import did_you_mean
from engine.step import StepType

ENTRY_POINT_GROUP = "floorflow.steps"


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

    def register(self, step_type: type[StepType], origin: str = "") -> None:
        name = getattr(step_type, "name", None)
        if not isinstance(name, str) or not name:
            raise RegistrationError(f"{step_type!r} has no step name")
        params = getattr(step_type, "Params", None)
        if not (dataclasses.is_dataclass(params) and params.__dataclass_params__.frozen):  # type: ignore[union-attr]
            raise RegistrationError(f"step type '{name}': Params must be a frozen dataclass")
        if name in self._types and self._types[name] is not step_type:
            raise RegistrationError(
                f"step type '{name}' is registered twice: by {self._origin[name]} and by {origin}"
            )
        self._types[name] = step_type
        self._origin[name] = origin or step_type.__module__

    def get(self, name: str) -> type[StepType]:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownStepType(name, sorted(self._types)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[type[StepType]]:
        return iter(self._types[name] for name in sorted(self._types))

    def names(self) -> list[str]:
        return sorted(self._types)

    @classmethod
    def discover(cls) -> Registry:
        """Every step type that installed distributions declare in the entry-point group."""
        registry = cls()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            step_type = ep.load()
            if getattr(step_type, "name", None) != ep.name:
                raise RegistrationError(
                    f"entry point '{ep.name}' ({ep.value}) loads a step type named "
                    f"'{getattr(step_type, 'name', None)}'"
                )
            dist = ep.dist.name if ep.dist is not None else "?"
            registry.register(step_type, origin=f"{dist} ({ep.value})")
        return registry
