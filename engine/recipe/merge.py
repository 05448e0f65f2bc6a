"""Merge a child recipe's route entries into its base's (``extends:``): override, move, insert, remove.

Each entry the child names, and each ``after:``/``before:`` anchor, is found by its id in an index
rather than by searching the route: a child of thousands of entries over a base of thousands of
stages merges in time in proportion to their sum, not their product. While merging, the route (and
each any_order group's members) is held as a linked list, so an entry is moved, inserted or
removed where the index finds it; the lists become YLists again at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine.diagnostics import Diagnostic, Pos, did_you_mean
from engine.yamlload import YList, YMap

DIRECTIVES = ("after", "before", "remove")
_MERGED_DEEPER = ("with", "measurements")


def merge_map(base: YMap, over: YMap, deeper: tuple[str, ...] = ()) -> YMap:
    """Key-by-key override; a key set to null is removed; ``deeper`` keys merge one level down."""
    out = YMap(base.pos)
    for key, value in base.items():
        out.put(key, value, base.key_pos[key], base.val_pos[key])
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif key in deeper and isinstance(out.get(key), YMap) and isinstance(value, YMap):
            out.put(key, merge_map(out[key], value), over.key_pos[key], over.val_pos[key])
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


def _members(entry: Any) -> YList | None:
    """The member list of an any_order group entry; None for a stage."""
    if isinstance(entry, YMap) and "any_order" in entry:
        members = _body(entry).get("stages")
        return members if isinstance(members, YList) else None
    return None


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


def _copy_list(entries: YList) -> YList:
    """Copy the list and every group's member list, so merging never edits the base recipe."""
    out = YList(entries.pos)
    for entry, pos in zip(entries, entries.item_pos, strict=True):
        if isinstance(entry, YMap) and isinstance(entry.get("any_order"), YMap):
            inner = merge_map(entry["any_order"], YMap(entry.pos))
            if isinstance(inner.get("stages"), YList):
                inner.put("stages", _copy_list(inner["stages"]), inner.key_pos["stages"], inner.val_pos["stages"])
            entry = merge_map(entry, YMap(entry.pos))
            entry.put("any_order", inner, entry.key_pos["any_order"], entry.val_pos["any_order"])
        out.add(entry, pos)
    return out


class _Node:
    """One entry of a list being merged; a group's node holds the list of its members."""

    __slots__ = ("entry", "members", "next", "pos", "prev")

    def __init__(self, entry: Any, pos: Pos) -> None:
        self.entry = entry
        self.pos = pos
        self.prev: _Node = self
        self.next: _Node = self
        self.members: _Node | None = None
        """The sentinel of the group's member list."""

    def link(self, before: _Node) -> None:
        """Put this node just before ``before`` in its list."""
        self.prev, self.next = before.prev, before
        before.prev.next = self
        before.prev = self

    def unlink(self) -> None:
        self.prev.next, self.next.prev = self.next, self.prev

    def __iter__(self) -> Iterator[_Node]:
        """The nodes of the list this sentinel heads."""
        node = self.next
        while node is not self:
            yield node
            node = node.next


class _Route:
    """The entries of a route being merged, each found by id in the order a search would meet them."""

    def __init__(self, entries: YList) -> None:
        self.top = _Node(None, entries.pos)
        self.by_id: dict[str, list[_Node]] = {}
        """Live nodes of each id: one, unless the recipes repeat an id (which compiling reports)."""
        for entry, pos in zip(entries, entries.item_pos, strict=True):
            self._add(_Node(entry, pos), self.top)

    def _add(self, node: _Node, before: _Node) -> None:
        node.link(before)
        self._index(node)

    def _index(self, node: _Node) -> None:
        eid = entry_id(node.entry)
        if eid is not None:
            self.by_id.setdefault(eid, []).append(node)
        members = _members(node.entry)
        if members is not None:
            node.members = _Node(None, members.pos)
            for entry, pos in zip(members, members.item_pos, strict=True):
                self._add(_Node(entry, pos), node.members)

    def _unindex(self, node: _Node) -> None:
        eid = entry_id(node.entry)
        if eid is not None:
            same = self.by_id[eid]
            same.remove(node)
            if not same:
                del self.by_id[eid]
        if node.members is not None:
            for member in node.members:
                self._unindex(member)
            node.members = None

    def find(self, wanted: str) -> _Node | None:
        """The node of id ``wanted``: the first met walking the route, into each group after the group."""
        same = self.by_id.get(wanted)
        if not same:
            return None
        if len(same) == 1:
            return same[0]
        candidates = set(same)
        return next(node for node in self._walk(self.top) if node in candidates)

    def _walk(self, head: _Node) -> Iterator[_Node]:
        for node in head:
            yield node
            if node.members is not None:
                yield from self._walk(node.members)

    def current(self, node: _Node) -> YMap:
        """The node's entry, with a group's member list as merged so far."""
        if node.members is not None:
            inner = node.entry["any_order"]
            members = self._list(node.members, node.members.pos)
            inner.put("stages", members, inner.key_pos["stages"], inner.val_pos["stages"])
        return node.entry  # type: ignore[no-any-return]

    def remove(self, node: _Node) -> None:
        node.unlink()
        self._unindex(node)

    def replace(self, node: _Node, entry: YMap) -> None:
        self._unindex(node)
        node.entry = entry
        self._index(node)

    def insert(self, entry: YMap, pos: Pos, anchor: _Node, *, after: bool) -> None:
        self._add(_Node(entry, pos), anchor.next if after else anchor)

    def append(self, entry: YMap, pos: Pos) -> None:
        self._add(_Node(entry, pos), self.top)

    def to_list(self) -> YList:
        return self._list(self.top, self.top.pos)

    def _list(self, head: _Node, pos: Pos) -> YList:
        out = YList(pos)
        for node in head:
            out.add(self.current(node), node.pos)
        return out


def merge_entries(base: YList, child: Any, problems: list[Diagnostic]) -> YList:
    """``base``'s entries with ``child``'s applied in order; problems appended to ``problems``."""
    route = _Route(_copy_list(base))
    if not isinstance(child, YList):
        return route.to_list()
    for entry, pos in zip(child, child.item_pos, strict=True):
        if not isinstance(entry, YMap):
            continue
        body = _body(entry)
        eid = entry_id(entry)
        found = route.find(eid) if eid else None
        if body.get("remove") is True:
            if found is None:
                problems.append(
                    Diagnostic(
                        body.where("id"),
                        "error",
                        "extends-unknown-id",
                        f"cannot remove '{eid}': no such stage in the extended "
                        f"recipe{did_you_mean(eid or '', route.by_id)}",
                    )
                )
            else:
                route.remove(found)
            continue
        if found is not None:
            merged = _override(route.current(found), entry, problems)
            if "after" in body or "before" in body:  # an inherited stage moved elsewhere
                route.remove(found)
                _insert(route, merged, found.pos, body, problems)
            else:
                route.replace(found, merged)
            continue
        _insert(route, _strip(entry), pos, body, problems)
    return route.to_list()


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
    merged = merge_map(old_body, _strip(new) if new_body is new else _strip(new)["any_order"], _MERGED_DEEPER)
    if new_body is not new and isinstance(members, YList) and isinstance(old_body.get("stages"), YList):
        merged.put(
            "stages",
            merge_entries(old_body["stages"], members, problems),
            new_body.key_pos["stages"],
            new_body.val_pos["stages"],
        )
    if old_body is old:
        return merged
    wrapper = YMap(old.pos)
    wrapper.put("any_order", merged, new.key_pos["any_order"], new.val_pos["any_order"])
    return wrapper


def _insert(route: _Route, entry: YMap, pos: Pos, body: YMap, problems: list[Diagnostic]) -> None:
    for directive, after in (("after", True), ("before", False)):
        anchor = body.get(directive)
        if anchor is None:
            continue
        found = route.find(anchor)
        if found is None:
            problems.append(
                Diagnostic(
                    body.where(directive),
                    "error",
                    "extends-unknown-id",
                    f"'{directive}: {anchor}' names no stage of the extended "
                    f"recipe{did_you_mean(anchor, route.by_id)}",
                )
            )
            return
        route.insert(entry, pos, found, after=after)
        return
    route.append(entry, pos)
