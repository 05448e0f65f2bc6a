"""The rules on what a unit's storage holds, checked at each stage of every route the walk takes.

``engine.recipe.routewalk`` carries, at each point of a route, the images on the unit's storage and
in its RAM and whether its storage holds an OS; these rules hold a stage's effects against that, as
the unit itself would: installing an image needs an OS on storage (``needs_os``), waiting for the
unit to come up needs something to boot (``boots``), a ready-to-ship check names exactly the images
the unit holds (``expects_images``), and UART self-tests need the factory test application on the
unit (``needs_image_type``). A unit starts the route blank, with no OS and no image.

An abstract recipe is not held to them: the recipes extending it add the stages that put an OS and
images on the unit, and each of those is checked in full.
"""

from __future__ import annotations

from typing import Protocol

from engine.diagnostics import Pos
from engine.flow import Flow, Stage
from engine.step import Effects


class Report(Protocol):
    def add(self, pos: Pos, code: str, message: str, severity: str = "error") -> None: ...


def os_after(fx: Effects, has_os: bool) -> bool:
    """Whether the unit's storage holds an OS once a stage with effects ``fx`` has passed."""
    if fx.installs_os:
        return True
    return has_os and not fx.replaces_storage


def _names(images: frozenset[str] | set[str] | tuple[str, ...]) -> str:
    return f"[{', '.join(sorted(images))}]"


class StorageRules:
    """The storage rules of one flow, each reported once per stage (at the first route that breaks it).

    What ``check`` finds is kept until ``report``: a walk cut short (a route too complex to walk) has
    not seen every route, and reports only that.
    """

    def __init__(self, flow: Flow, problems: Report) -> None:
        self.flow = flow
        self.problems = problems
        self.active = not flow.abstract
        self._found: dict[tuple[str, str], tuple[Pos, str]] = {}
        self.os_installers = [s.id for s in flow.stages.values() if s.effects.installs_os]

    def check(self, stage: Stage, storage: frozenset[str], ram: frozenset[str], has_os: bool, via: str | None) -> None:
        """Hold ``stage`` against a unit arriving at it with these images and OS (through rework ``via``)."""
        if not self.active:
            return
        fx = stage.effects
        how = f" (through rework '{via}')" if via else ""
        if fx.needs_os and not has_os:
            self._add(
                stage,
                stage.pos,
                "needs-os",
                f"stage '{stage.id}' installs on the unit's OS, but on a route its storage holds no OS here{how}: "
                f"{self._how_to_install()}",
            )
        if fx.boots and not has_os and not (ram and not fx.clears_volatile):
            self._add(
                stage,
                stage.pos,
                "nothing-to-boot",
                f"stage '{stage.id}' waits for the unit to come up, but on a route there is no OS on its storage "
                f"here{how}, so it never boots: {self._how_to_install()}",
            )
        if fx.expects_images is not None:
            held = storage | ram
            if fx.ready_check:  # a temporary image left there is check 5's to report, once
                held = frozenset(n for n in held if n in fx.expects_images or not self._temporary(n))
            self._exact_images(stage, set(fx.expects_images), held, how)
        if fx.needs_image_type is not None:
            self._image_of_type(stage, fx.needs_image_type, storage | ram, how)

    def _temporary(self, name: str) -> bool:
        image = self.flow.images.get(name)
        return image is not None and image.temporary

    def _how_to_install(self) -> str:
        if not self.os_installers:
            return "no stage of the recipe puts one there (a full storage image or an OS recovery)"
        return f"put one there first on every route ({', '.join(self.os_installers)} installs one)"

    def _exact_images(self, stage: Stage, expected: set[str], held: frozenset[str], how: str) -> None:
        if expected == held:
            return
        self._add(
            stage,
            stage.at("with"),
            "images-expected",
            f"stage '{stage.id}' expects exactly the images {_names(expected)} on the unit, but on a route "
            f"it holds {_names(held)} here{how}",
        )

    def _image_of_type(self, stage: Stage, kind: str, held: frozenset[str], how: str) -> None:
        images = self.flow.images
        if any(name in images and images[name].type == kind for name in held):
            return
        if held:
            typed = [f"{name} (type: {images[name].type or 'none'})" for name in sorted(held) if name in images]
            listed = ", ".join(typed)
            holds = f"the unit holds only {listed}"
        else:
            holds = "the unit holds no image"
        self._add(
            stage,
            stage.pos,
            "image-type-missing",
            f"stage '{stage.id}' needs an image of type: {kind} on the unit, but on a route {holds} here{how}: "
            f"declare the image it needs with type: {kind}, and load it before this stage",
        )

    def _add(self, stage: Stage, pos: Pos, code: str, message: str) -> None:
        self._found.setdefault((stage.id, code), (pos, message))

    def report(self) -> None:
        """Report what every route walked broke."""
        for (_stage, code), (pos, message) in self._found.items():
            self.problems.add(pos, code, message)
