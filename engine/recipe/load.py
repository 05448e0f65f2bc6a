"""Read a recipe: parse it, validate it against the schema, resolve ``extends``, fill in params.

The result is plain data (``YMap``/``YList``) in which every value still knows the file, line and
column it came from, so every later check can point at the source.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.diagnostics import Diagnostic, Pos, RecipeError, RecipeSchemaError, did_you_mean
from engine.recipe.merge import merge_entries, merge_map
from engine.recipe.schema import validate_document
from engine.recipe.schemawords import recipe_place
from engine.recipe.tree import extended_file, os_problem
from engine.yamlload import YList, YMap, load_file

MAX_EXTENDS_DEPTH = 8
_KEYED_SECTIONS = ("product", "params", "images", "stations")
_PARAM_REF = re.compile(r"\$\{params\.([A-Za-z][A-Za-z0-9_.-]*)\}")


@dataclass
class LoadedRecipe:
    """A recipe with its ``extends`` chain applied and params filled in."""

    path: Path
    shown_as: str
    data: YMap
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def content_hash(self) -> str:
        """sha256 of the merged recipe as canonical JSON: layout and comments do not count."""
        canonical = json.dumps(self.data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


def load_recipe(path: Path, shown_as: str | None = None, recipe_root: Path | None = None) -> LoadedRecipe:
    """Load ``path`` and everything it extends; raise RecipeError listing every problem found.

    ``extends:`` may only name a regular file at or below ``recipe_root`` (default: the directory
    of ``path``), symbolic links followed.
    """
    shown = shown_as if shown_as is not None else str(path)
    path = Path(path)
    root = recipe_root if recipe_root is not None else path.parent
    try:
        data = _load_chain(path, shown, [], Path(os.path.realpath(root)))
    except OSError as exc:
        raise RecipeError([Diagnostic(Pos(shown, 1, 1), "error", "file-unreadable", os_problem(exc))]) from None
    problems: list[Diagnostic] = []
    _fill_params(data, problems)
    if any(d.severity == "error" for d in problems):
        raise RecipeError(problems)
    return LoadedRecipe(path, shown, data, problems)


def _load_chain(path: Path, shown: str, chain: list[Path], root: Path) -> YMap:
    data = load_file(path, shown, finite=True)
    if not isinstance(data, YMap):
        raise RecipeError(
            [
                Diagnostic(
                    getattr(data, "pos", Pos(shown, 1, 1)),
                    "error",
                    "recipe-not-mapping",
                    "a recipe is a YAML mapping (recipe:, version:, stages:, ...)",
                )
            ]
        )
    problems = validate_document(data, place=recipe_place)
    if any(d.severity == "error" for d in problems):
        raise RecipeSchemaError(problems)
    parent_ref = data.get("extends")
    if parent_ref is None:
        return data
    resolved = Path(os.path.realpath(path))
    if resolved in chain or len(chain) >= MAX_EXTENDS_DEPTH:
        names = " -> ".join(p.name for p in [*chain, resolved])
        what = (
            f"extends itself ({names})" if resolved in chain else f"extends more than {MAX_EXTENDS_DEPTH} levels deep"
        )
        raise RecipeError([Diagnostic(data.where("extends"), "error", "extends-cycle", f"recipe {what}")])
    parent_path = extended_file(path.parent, parent_ref, root, data.where("extends"))
    parent_shown = str(Path(shown).parent / parent_ref)
    try:
        parent = _load_chain(parent_path, parent_shown, [*chain, resolved], root)
    except OSError as exc:  # gone or changed since it was looked at
        problem = Diagnostic(data.where("extends"), "error", "extends-unreadable", os_problem(exc))
        raise RecipeError([problem]) from None
    return _merge_recipe(parent, data)


def _merge_recipe(base: YMap, child: YMap) -> YMap:
    merged = YMap(child.pos)
    for key in base:
        if key not in ("abstract", "extends"):
            merged.put(key, base[key], base.key_pos[key], base.val_pos[key])
    problems: list[Diagnostic] = []
    for key, value in child.items():
        kpos, vpos = child.key_pos[key], child.val_pos[key]
        if key in _KEYED_SECTIONS and isinstance(merged.get(key), YMap) and isinstance(value, YMap):
            merged.put(key, merge_map(merged[key], value), kpos, vpos)
        elif key in ("stages", "rework") and isinstance(merged.get(key), YList):
            merged.put(key, merge_entries(merged[key], value, problems), kpos, vpos)
        else:
            merged.put(key, value, kpos, vpos)
    if problems:
        raise RecipeError(problems)
    return merged


def _fill_params(data: YMap, problems: list[Diagnostic]) -> None:
    params = data.get("params")
    params = params if isinstance(params, dict) else {}
    for stage in iter_stage_maps(data):
        for key in ("with", "measurements"):
            value = stage.get(key)
            if isinstance(value, (YMap, YList)):
                _fill(value, params, problems)


def iter_stage_maps(data: YMap) -> list[YMap]:
    """Every stage mapping of the route (group members included) and of rework."""
    out: list[YMap] = []
    for section in ("stages", "rework"):
        entries = data.get(section)
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, YMap):
                continue
            group = entry.get("any_order")
            if isinstance(group, YMap):
                members = group.get("stages")
                out.extend(m for m in (members or []) if isinstance(m, YMap))
            else:
                out.append(entry)
    return out


def _fill(container: YMap | YList, params: dict[str, Any], problems: list[Diagnostic]) -> None:
    keys = list(container.keys()) if isinstance(container, YMap) else list(range(len(container)))
    for key in keys:
        value = container[key]  # type: ignore[index]
        pos = container.where(key)  # type: ignore[arg-type]
        if isinstance(value, (YMap, YList)):
            _fill(value, params, problems)
        elif isinstance(value, str) and "${" in value:
            container[key] = _substitute(value, params, pos, problems)  # type: ignore[index]


def _substitute(text: str, params: dict[str, Any], pos: Pos, problems: list[Diagnostic]) -> Any:
    def lookup(dotted: str) -> Any:
        node: Any = params
        walked: list[str] = []
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                choices = node.keys() if isinstance(node, dict) else []
                where = "params" + "".join(f".{w}" for w in walked)
                problems.append(
                    Diagnostic(
                        pos,
                        "error",
                        "unknown-param",
                        f"unknown parameter '{part}' in {where}{did_you_mean(part, choices)}",
                    )
                )
                return None
            node = node[part]
            walked.append(part)
        return node

    whole = _PARAM_REF.fullmatch(text)
    if whole:
        return lookup(whole.group(1))
    if not _PARAM_REF.search(text):
        problems.append(
            Diagnostic(
                pos,
                "error",
                "bad-param-ref",
                f"'{text}' is not a parameter reference: write ${{params.NAME}}",
            )
        )
        return text

    def replace(match: re.Match[str]) -> str:
        value = lookup(match.group(1))
        if isinstance(value, (dict, list)):
            problems.append(
                Diagnostic(
                    pos,
                    "error",
                    "bad-param-ref",
                    f"${{params.{match.group(1)}}} is not a single value and cannot be part of a string",
                )
            )
        return str(value)

    return _PARAM_REF.sub(replace, text)
