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
from engine.recipetree import extended_file, os_problem
from engine.schema import validate_document
from engine.yamlload import YList, YMap, load_file

MAX_EXTENDS_DEPTH = 8
DIRECTIVES = ("after", "before", "remove")
_MERGED_DEEPER = ("with", "measurements")
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
    problems = validate_document(data)
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
            merged.put(key, _merge_map(merged[key], value), kpos, vpos)
        elif key in ("stages", "rework") and isinstance(merged.get(key), YList):
            merged.put(key, _merge_entries(merged[key], value, problems), kpos, vpos)
        else:
            merged.put(key, value, kpos, vpos)
    if problems:
        raise RecipeError(problems)
    return merged


def _merge_map(base: YMap, over: YMap, deeper: tuple[str, ...] = ()) -> YMap:
    """Key-by-key override; a key set to null is removed; ``deeper`` keys merge one level down."""
    out = YMap(base.pos)
    for key, value in base.items():
        out.put(key, value, base.key_pos[key], base.val_pos[key])
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif key in deeper and isinstance(out.get(key), YMap) and isinstance(value, YMap):
            out.put(key, _merge_map(out[key], value), over.key_pos[key], over.val_pos[key])
        else:
            out.put(key, value, over.key_pos[key], over.val_pos[key])
    return out


def entry_id(entry: Any) -> str | None:
    """Id of a route entry: a stage's ``id`` or an any_order group's ``id``."""
    if not isinstance(entry, dict):
        return None
    group = entry.get("any_order")
    if isinstance(group, dict):
        gid = group.get("id")
        return gid if isinstance(gid, str) else None
    sid = entry.get("id")
    return sid if isinstance(sid, str) else None


def _body(entry: YMap) -> YMap:
    """The mapping that holds an entry's keys (the group's inner mapping for a group)."""
    group = entry.get("any_order")
    return group if isinstance(group, YMap) else entry


def _strip(entry: YMap) -> YMap:
    body = _body(entry)
    clean = YMap(body.pos)
    for key, value in body.items():
        if key not in DIRECTIVES:
            clean.put(key, value, body.key_pos[key], body.val_pos[key])
    if body is entry:
        return clean
    wrapper = YMap(entry.pos)
    wrapper.put("any_order", clean, entry.key_pos["any_order"], entry.val_pos["any_order"])
    return wrapper


def _find(entries: YList, wanted: str) -> tuple[YList, int] | None:
    """The list and index holding the entry with id ``wanted``, searching into groups."""
    for i, entry in enumerate(entries):
        if entry_id(entry) == wanted:
            return entries, i
        members = _body(entry).get("stages") if isinstance(entry, YMap) else None
        if isinstance(entry, YMap) and "any_order" in entry and isinstance(members, YList):
            found = _find(members, wanted)
            if found:
                return found
    return None


def _all_ids(entries: YList) -> list[str]:
    ids: list[str] = []
    for entry in entries:
        eid = entry_id(entry)
        if eid:
            ids.append(eid)
        if isinstance(entry, YMap) and isinstance(_body(entry).get("stages"), YList):
            ids.extend(_all_ids(_body(entry)["stages"]))
    return ids


def _copy_list(entries: YList) -> YList:
    """Copy the list and every group's member list, so merging never edits the base recipe."""
    out = YList(entries.pos)
    for entry, pos in zip(entries, entries.item_pos, strict=True):
        if isinstance(entry, YMap) and isinstance(entry.get("any_order"), YMap):
            inner = _merge_map(entry["any_order"], YMap(entry.pos))
            if isinstance(inner.get("stages"), YList):
                inner.put(
                    "stages",
                    _copy_list(inner["stages"]),
                    inner.key_pos["stages"],
                    inner.val_pos["stages"],
                )
            entry = _merge_map(entry, YMap(entry.pos))
            entry.put("any_order", inner, entry.key_pos["any_order"], entry.val_pos["any_order"])
        out.add(entry, pos)
    return out


def _merge_entries(base: YList, child: Any, problems: list[Diagnostic]) -> YList:
    out = _copy_list(base)
    if not isinstance(child, YList):
        return out
    for entry, pos in zip(child, child.item_pos, strict=True):
        if not isinstance(entry, YMap):
            continue
        body = _body(entry)
        eid = entry_id(entry)
        found = _find(out, eid) if eid else None
        if body.get("remove") is True:
            if found is None:
                problems.append(
                    Diagnostic(
                        body.where("id"),
                        "error",
                        "extends-unknown-id",
                        f"cannot remove '{eid}': no such stage in the extended "
                        f"recipe{did_you_mean(eid or '', _all_ids(out))}",
                    )
                )
            else:
                del found[0][found[1]]
                del found[0].item_pos[found[1]]
            continue
        if found is not None:
            holder, i = found
            merged = _override(holder[i], entry, problems)
            if "after" in body or "before" in body:  # an inherited stage moved elsewhere
                del holder[i]
                old_pos = holder.item_pos.pop(i)
                _insert(out, merged, old_pos, body, problems)
            else:
                holder[i] = merged
            continue
        _insert(out, _strip(entry), pos, body, problems)
    return out


def _override(old: YMap, new: YMap, problems: list[Diagnostic]) -> YMap:
    old_body, new_body = _body(old), _body(new)
    if ("any_order" in old) != ("any_order" in new):
        problems.append(
            Diagnostic(
                new.pos,
                "error",
                "extends-kind",
                f"'{entry_id(new)}' overrides a "
                f"{'group' if 'any_order' in old else 'stage'} with a "
                f"{'group' if 'any_order' in new else 'stage'}",
            )
        )
        return old
    members = new_body.get("stages")
    merged = _merge_map(old_body, _strip(new) if new_body is new else _strip(new)["any_order"], _MERGED_DEEPER)
    if new_body is not new and isinstance(members, YList) and isinstance(old_body.get("stages"), YList):
        merged.put(
            "stages",
            _merge_entries(old_body["stages"], members, problems),
            new_body.key_pos["stages"],
            new_body.val_pos["stages"],
        )
    if old_body is old:
        return merged
    wrapper = YMap(old.pos)
    wrapper.put("any_order", merged, new.key_pos["any_order"], new.val_pos["any_order"])
    return wrapper


def _insert(out: YList, entry: YMap, pos: Pos, body: YMap, problems: list[Diagnostic]) -> None:
    for directive, offset in (("after", 1), ("before", 0)):
        anchor = body.get(directive)
        if anchor is None:
            continue
        found = _find(out, anchor)
        if found is None:
            problems.append(
                Diagnostic(
                    body.where(directive),
                    "error",
                    "extends-unknown-id",
                    f"'{directive}: {anchor}' names no stage of the extended "
                    f"recipe{did_you_mean(anchor, _all_ids(out))}",
                )
            )
            return
        holder, i = found
        holder.insert(i + offset, entry)
        holder.item_pos.insert(i + offset, pos)
        return
    out.add(entry, pos)


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
