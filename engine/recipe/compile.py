"""Compile a loaded recipe into a Flow, reporting every problem with its position."""

from __future__ import annotations

import math
from typing import Any

from engine.diagnostics import Diagnostic, Pos, did_you_mean
from engine.flow import RESERVED_IDS, SCRAP, Flow, Group, Image, Limits, Measurement, Sampling, Stage
from engine.inputs import recipe_serial_pattern
from engine.recipe.load import LoadedRecipe
from engine.recipe.params import build_params, refs
from engine.registry import Registry, UnknownStepType
from engine.step import Effects
from engine.yamlload import YList, YMap


class _Compiler:
    def __init__(self, recipe: LoadedRecipe, registry: Registry) -> None:
        self.recipe = recipe
        self.data = recipe.data
        self.registry = registry
        self.problems: list[Diagnostic] = []
        self.lock_pos: dict[str, Pos] = {}
        self.lifecycle, self.locks = self._lifecycle()
        self.images = self._images()
        stations = self.data.get("stations") or {}
        self.stations = {name: (spec or {}).get("slots", 1) for name, spec in stations.items()}
        self.stages: dict[str, Stage] = {}
        self.group_ids: dict[str, Pos] = {}

    def error(self, pos: Pos, code: str, message: str) -> None:
        self.problems.append(Diagnostic(pos, "error", code, message))

    def _lifecycle(self) -> tuple[tuple[str, ...], dict[str, str]]:
        """The lifecycle's states, and the state each capability is locked from (``locks:``).

        ``lifecycle:`` is a list of states, or ``{states: [...], locks: {CAPABILITY: STATE}}``.
        """
        section = self.data.get("lifecycle")
        if not isinstance(section, YMap):
            return tuple(section or ()), {}
        states = tuple(section.get("states") or ())
        locks = section.get("locks") or YMap(section.pos)
        for capability, state in locks.items():
            if state not in states:
                self.error(
                    locks.where(capability),
                    "unknown-state",
                    f"lifecycle lock {capability}: unknown lifecycle state '{state}'{did_you_mean(state, states)}",
                )
        self.lock_pos = {capability: locks.where(capability, of_key=True) for capability in locks}
        return states, {capability: state for capability, state in locks.items() if state in states}

    def _unused_locks(self) -> None:
        """A lock of a capability no stage needs locks nothing: a misspelt capability, most likely."""
        if self.data.get("abstract"):
            return  # a base may lock what the recipes extending it need
        needed = {c for stage in self.stages.values() for c in stage.effects.needs_capabilities}
        for capability, pos in self.lock_pos.items():
            if capability not in needed:
                message = (
                    f"lifecycle lock {capability}: no stage of the recipe needs it, so it locks nothing"
                    f"{did_you_mean(capability, sorted(needed))}"
                )
                self.problems.append(Diagnostic(pos, "warning", "lock-unused", message))

    def _images(self) -> dict[str, Image]:
        images: dict[str, Image] = {}
        section = self.data.get("images") or YMap(self.data.pos)
        for name, spec in section.items():
            spec = spec or YMap(section.where(name))
            features = spec.get("features") or YList(spec.pos)
            images[name] = Image(
                name=name,
                file=spec.get("file"),
                kind=spec.get("kind"),
                platform=spec.get("platform"),
                type=spec.get("type"),
                temporary=bool(spec.get("temporary", False)),
                features=tuple(features),
                pos=section.where(name, of_key=True),
                feature_pos=tuple(features.where(i) for i in range(len(features))),
            )
            if images[name].file is None:
                self.error(
                    images[name].pos,
                    "image-no-file",
                    f"image '{name}' has no file: a station has nothing to write to the unit; "
                    "name its file (relative to the station's image directory)",
                )
        return images

    def compile(self) -> Flow:
        route: list[str | Group] = []
        for index, entry in enumerate(self.data.get("stages") or []):
            group = entry.get("any_order")
            if isinstance(group, YMap):
                gid = group.get("id") or f"any_order_{index + 1}"
                if not self._new_id(gid, group.where("id") if "id" in group else entry.pos):
                    continue
                self.group_ids[gid] = group.where("id") if "id" in group else entry.pos
                members = []
                for member in group.get("stages") or []:
                    stage = self._stage(member, group=gid, default_station=group.get("station"))
                    if stage:
                        members.append(stage.id)
                route.append(Group(gid, tuple(members), entry.pos))
            else:
                stage = self._stage(entry)
                if stage:
                    route.append(stage.id)
        for entry in self.data.get("rework") or []:
            self._stage(entry, rework=True)
        self._unused_locks()
        if not route and not self.data.get("abstract"):
            self.error(self.data.where("stages", of_key=True), "empty-route", "the route has no stages")
        return Flow(
            recipe=self.data.get("recipe", ""),
            version=self.data.get("version", 0),
            stages=self.stages,
            route=tuple(route),
            lifecycle=self.lifecycle,
            locks=self.locks,
            images=self.images,
            stations=self.stations,
            content_hash=self.recipe.content_hash,
            abstract=bool(self.data.get("abstract", False)),
            source=self.recipe.shown_as,
            pos=self.data.pos,
            product=_product(self.data.get("product")),
            serial_pattern=recipe_serial_pattern(self.data.get("product"), self.problems),
        )

    def _stage(
        self,
        m: YMap,
        *,
        group: str | None = None,
        default_station: str | None = None,
        rework: bool = False,
    ) -> Stage | None:
        sid = m["id"]
        if not self._new_id(sid, m.where("id")):
            return None
        where = {key: m.where(key) for key in m}
        step_name = m.get("step")
        params, effects = None, Effects()
        if step_name is None:
            self.error(m.pos, "stage-no-step", f"stage '{sid}' names no step type (step:)")
        else:
            params, effects = self._params(sid, step_name, m)
        station = m.get("station", default_station)
        self._check_station(m, sid, station)
        for key in ("allowed_until", "allowed_from"):
            self._check_state(m.get(key), m.where(key), key)
        stage = Stage(
            id=sid,
            step=step_name or "",
            params=params,
            effects=effects,
            station=station,
            requires=tuple(m.get("requires") or ()),
            irreversible=bool(m.get("irreversible", False)),
            retry_max=(m.get("retry") or {}).get("max", 0),
            on_fail=m.get("on_fail", SCRAP),
            timeout_s=m.get("timeout_s"),
            measurements=self._measurements(m.get("measurements")),
            allowed_until=m.get("allowed_until"),
            allowed_from=m.get("allowed_from"),
            sampling=self._sampling(m.get("sampling")),
            group=group,
            rework=rework,
            then=m.get("then"),
            max_visits=m.get("max_visits"),
            pos=m.where("id"),
            where=where,
        )
        self.stages[sid] = stage
        return stage

    def _new_id(self, name: str, pos: Pos) -> bool:
        """True when ``name`` may name a new stage or group; reports why not otherwise."""
        if name in RESERVED_IDS:
            self.error(
                pos,
                "reserved-id",
                f"id '{name}' is reserved ({', '.join(RESERVED_IDS)} name the flow's own states)",
            )
            return False
        first = self.stages[name].pos if name in self.stages else self.group_ids.get(name)
        if first is not None:
            self.error(pos, "duplicate-id", f"id '{name}' is used twice (first at {first.file}:{first.line})")
            return False
        return True

    def _params(self, sid: str, step_name: str, m: YMap) -> tuple[Any, Effects]:
        try:
            step_type = self.registry.get(step_name)
        except UnknownStepType as exc:
            self.error(m.where("step"), "unknown-step", f"stage '{sid}': {exc}")
            return None, Effects()
        given = m.get("with")
        with_map = given if isinstance(given, YMap) else YMap(m.where("with"))
        params, problems = build_params(step_type, with_map)
        for problem in problems:
            pos = with_map.where(problem.key, of_key=True) if problem.key else m.where("with")
            if problem.key is None and "with" not in m:
                pos = m.where("step")
            self.error(pos, "step-param", f"stage '{sid}': {problem.message}")
        if params is None:
            return None, Effects()
        for key, kind, name in refs(step_type, params):
            pos = with_map.where(key)
            if kind == "image" and name not in self.images:
                self.error(
                    pos,
                    "unknown-image",
                    f"stage '{sid}': unknown image '{name}'{did_you_mean(name, self.images)}",
                )
            elif kind == "lifecycle":
                self._check_state(name, pos, key)
        return params, step_type.effects(params)

    def _check_station(self, m: YMap, sid: str, station: str | None) -> None:
        if not self.stations:
            return
        if station is None:
            self.error(
                m.where("id"),
                "stage-no-station",
                f"stage '{sid}' names no station (stations: {', '.join(self.stations)})",
            )
        elif station not in self.stations:
            self.error(
                m.where("station"),
                "unknown-station",
                f"stage '{sid}': unknown station '{station}'{did_you_mean(station, self.stations)}",
            )

    def _check_state(self, state: str | None, pos: Pos, key: str) -> None:
        if state is None:
            return
        if not self.lifecycle:
            self.error(pos, "no-lifecycle", f"{key}: '{state}' needs a lifecycle: list in the recipe")
        elif state not in self.lifecycle:
            self.error(
                pos,
                "unknown-state",
                f"{key}: unknown lifecycle state '{state}'{did_you_mean(state, self.lifecycle)}",
            )

    def _measurements(self, section: YMap | None) -> tuple[Measurement, ...]:
        out = []
        for name, spec in (section or {}).items():
            limits = self._limits(spec, "limits", name)
            marginal = self._limits(spec, "marginal", name)
            if limits and marginal and not (_inside(marginal.low, limits) and _inside(marginal.high, limits)):
                self.error(
                    spec.where("marginal"),
                    "marginal-outside",
                    f"measurement '{name}': marginal band lies outside its limits",
                )
            out.append(
                Measurement(
                    name,
                    limits,
                    marginal,
                    spec.get("equals"),
                    spec.get("matches"),
                    spec.get("units"),
                )
            )
        return tuple(out)

    def _limits(self, spec: YMap, key: str, name: str) -> Limits | None:
        value = spec.get(key)
        if value is None:
            return None
        ok = (
            isinstance(value, dict)
            and set(value) <= {"min", "max"}
            and all(isinstance(v, int | float) and not isinstance(v, bool) and _finite(v) for v in value.values())
        )
        if not ok:
            self.error(
                spec.where(key),
                "bad-limits",
                f"measurement '{name}': {key} must be {{min, max}} finite numbers, got {value!r}",
            )
            return None
        limits = Limits(value.get("min"), value.get("max"))
        if limits.low is not None and limits.high is not None and limits.low > limits.high:
            self.error(
                spec.where(key),
                "bad-limits",
                f"measurement '{name}': {key} min {limits.low} is above max {limits.high}",
            )
        return limits

    @staticmethod
    def _sampling(spec: YMap | None) -> Sampling | None:
        if spec is None:
            return None
        aql = spec.get("aql") or {}
        return Sampling(
            rate=spec.get("rate"),
            aql=aql.get("aql"),
            level=aql.get("level", "II"),
            lot_size=spec.get("lot_size"),
            recall_threshold=spec.get("recall_threshold"),
        )


def _finite(value: float) -> bool:
    """A bound a value can be compared with: .nan passes every comparison, an integer past float overflows."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _inside(value: float | None, limits: Limits) -> bool:
    return value is None or limits.contains(value)


def compile_recipe(recipe: LoadedRecipe, registry: Registry) -> tuple[Flow, list[Diagnostic]]:
    """The Flow and the problems found while compiling it (the Flow is unusable if any is an error)."""
    compiler = _Compiler(recipe, registry)
    flow = compiler.compile()
    return flow, compiler.problems


def _product(product: Any) -> str | None:
    if not isinstance(product, dict):
        return None
    named = product.get("sku") or product.get("name")
    return str(named) if named is not None else None
