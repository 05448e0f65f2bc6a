"""The mutations of tests/fuzzkit.py on a recipe's YAML node tree.

Node mutations work on the tree ruamel.yaml composes and let its serializer write the result, so
tags, anchors, aliases and flow style come out as YAML a user could have written. What the
serializer cannot write (nesting deeper than it recurses, an alias to nothing) goes in as text
through a placeholder. Every mutation takes the generator it is given and nothing else random, and
returns a few words saying what it did.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

CORE = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL, MAP, SEQ = (CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq"))

ODD_SCALARS: tuple[tuple[str, str], ...] = (
    (INT, "1" + "0" * 400), (INT, "-1"), (INT, "0"), (INT, "9223372036854775808"), (INT, "-9223372036854775809"),
    (INT, "0x" + "f" * 40), (INT, "0o777"), (INT, "+12"),
    (FLOAT, ".nan"), (FLOAT, ".NaN"), (FLOAT, ".inf"), (FLOAT, "-.inf"), (FLOAT, "1e400"), (FLOAT, "-1e400"),
    (FLOAT, "1e-400"), (FLOAT, "-0.0"), (FLOAT, "1.7976931348623157e308"), (FLOAT, "-2.5"),
    (STR, ""), (STR, " "), (STR, "x" * 100_000), (STR, "y" * 5000), (STR, "\x00"), (STR, "\x00\x01\x1b[2J\x7f"),
    (STR, "\x1b]0;title\x07"), (STR, "line\nbreak"), (STR, "tab\there"), (STR, "\r"), (STR, "\u2028"), (STR, "\x85"),
    (STR, "Ω≈ç√∫ü"), (STR, "😀" * 8), (STR, "\u202eevil"), (STR, "e\u0301\u200b\ufeff"), (STR, "\ud800"),
    (STR, "../../etc/passwd"), (STR, "${params."), (STR, "${params.nope}"), (STR, "${params.${params.x}}"),
    (STR, "%s%n{0}"), (STR, "true"), (STR, "12"), (STR, "1e400"),
    (BOOL, "true"), (BOOL, "false"), (NULL, ""),
)  # fmt: skip
"""Scalars of every type, including values no field expects: huge, non-finite, empty, long, control."""

WRONG_TAGS: tuple[tuple[str, str], ...] = (
    (BOOL, "maybe"), (BOOL, ""), (INT, "abc"), (INT, ""), (INT, "1.5"), (FLOAT, "abc"), (FLOAT, ""), (NULL, "foo"),
    (CORE + "timestamp", "2020-13-45"), (CORE + "timestamp", "2020-01-01"),
    (CORE + "binary", "!!!not base64"), (CORE + "binary", "aGk="),
    (CORE + "python/object/apply:os.system", "true"), (CORE + "value", "="), (CORE + "merge", "<<"),
    ("!local", "bar"), ("tag:example.com,2000:app/thing", "x"),
)  # fmt: skip
"""A core tag with a value it cannot hold, and tags a recipe has no business using."""

ODD_KEYS: tuple[tuple[str, str], ...] = (
    (STR, ""), (STR, "stgaes"), (STR, "k" * 3000), (STR, "a:b"), (STR, "\x1b[31mred"), (STR, "new\nline"),
    (STR, "ключ"), (INT, "1"), (NULL, ""), (BOOL, "true"), (FLOAT, ".nan"), (CORE + "merge", "<<"),
)  # fmt: skip

PLACEHOLDER = "fuzzplaceholder"


class Tree:
    """A composed YAML document under mutation, with text fragments to splice in when written."""

    def __init__(self, root: Node) -> None:
        self.root = root
        self.fragments: dict[str, str] = {}

    def raw(self, fragment: str) -> ScalarNode:
        """A node that is written as ``fragment`` verbatim (one line of flow YAML)."""
        name = f"{PLACEHOLDER}{len(self.fragments):04d}"
        self.fragments[name] = fragment
        return ScalarNode(STR, name)

    def slots(self) -> list[tuple[Node, int]]:
        """(collection, index) of every value below the root; each node visited once, aliases too."""
        found: list[tuple[Node, int]] = []
        seen: set[int] = set()
        stack = [self.root]
        while stack:
            node = stack.pop()
            if id(node) in seen or isinstance(node, ScalarNode):
                continue
            seen.add(id(node))
            for i, item in enumerate(node.value):
                found.append((node, i))
                stack.append(item[1] if isinstance(node, MappingNode) else item)
        return found

    def collections(self, kind: type[Node]) -> list[Node]:
        nodes = [self.root] if isinstance(self.root, kind) else []
        nodes += [n for n in (get(c, i) for c, i in self.slots()) if isinstance(n, kind)]
        return nodes

    def set_top(self, key: str, text: str) -> None:
        self._put_top(key, ScalarNode(STR, text))

    def set_top_raw(self, key: str, fragment: str) -> None:
        self._put_top(key, self.raw(fragment))

    def _put_top(self, key: str, value: Node) -> None:
        assert isinstance(self.root, MappingNode)
        for i, (k, _) in enumerate(self.root.value):
            if isinstance(k, ScalarNode) and k.value == key:
                self.root.value[i] = (k, value)
                return
        self.root.value.insert(1, (ScalarNode(STR, key), value))


def get(container: Node, index: int) -> Node:
    item = container.value[index]
    return item[1] if isinstance(container, MappingNode) else item  # type: ignore[no-any-return]


def put(container: Node, index: int, node: Node) -> None:
    if isinstance(container, MappingNode):
        container.value[index] = (container.value[index][0], node)
    else:
        container.value[index] = node


def _yaml() -> YAML:
    # The pure-Python emitter: the C one cannot write a lone surrogate, which YAML can hold escaped.
    yaml = YAML(typ="safe", pure=True)
    yaml.width = 4096  # long lines stay long: a mutation should not be reflowed away
    yaml.allow_unicode = True
    return yaml


def compose(text: str) -> Tree | None:
    """The document's tree; None for an empty document or one the pure-Python reader refuses."""
    try:
        node = _yaml().compose(text)
    except YAMLError:  # a source recipe that is itself bad YAML gets byte mutations only
        return None
    return None if node is None else Tree(node)


def serialize(tree: Tree) -> bytes:
    out = io.StringIO()
    _yaml().serialize(tree.root, out)
    text = out.getvalue()
    for name, fragment in tree.fragments.items():
        text = text.replace(name, fragment)
    return text.encode("utf-8", "surrogatepass")


def _slot(rng: random.Random, tree: Tree) -> tuple[Node, int] | None:
    slots = tree.slots()
    return rng.choice(slots) if slots else None


def _where(container: Node, index: int) -> str:
    mark = container.start_mark
    line = f"line {mark.line + 1}" if mark is not None else "new node"
    if isinstance(container, MappingNode):
        key = container.value[index][0]
        return f"{getattr(key, 'value', '?')!s:.30} ({line})"
    return f"item {index} ({line})"


def replace_scalar(rng: random.Random, tree: Tree) -> str:
    slot = _slot(rng, tree)
    if slot is None:
        return "replace: nothing"
    tag, value = rng.choice(ODD_SCALARS)
    put(*slot, ScalarNode(tag, value))
    return f"value of {_where(*slot)} -> {tag.removeprefix(CORE)} {value[:40]!r}"


def odd_number(rng: random.Random, tree: Tree) -> str:
    """A number where a number belongs, but huge, non-finite, negative or zero: what only a range check sees."""
    numeric = [slot for slot in tree.slots() if getattr(get(*slot), "tag", None) in (INT, FLOAT)]
    if not numeric:
        return replace_scalar(rng, tree)
    slot = rng.choice(numeric)
    tag, value = rng.choice([(t, v) for t, v in ODD_SCALARS if t in (INT, FLOAT)] + [(INT, "1" + "0" * 20)])
    put(*slot, ScalarNode(tag, value))
    return f"number {_where(*slot)} -> {tag.removeprefix(CORE)} {value[:40]!r}"


def wrong_tag(rng: random.Random, tree: Tree) -> str:
    slot = _slot(rng, tree)
    if slot is None:
        return "tag: nothing"
    node = get(*slot)
    if isinstance(node, MappingNode | SequenceNode) and rng.random() < 0.5:
        node.tag = rng.choice((STR, CORE + "set", CORE + "omap", CORE + "pairs", MAP, SEQ, "!local"))
        return f"tag of {_where(*slot)} -> {node.tag}"
    tag, value = rng.choice(WRONG_TAGS)
    put(*slot, ScalarNode(tag, value))
    return f"value of {_where(*slot)} -> !<{tag}> {value!r}"


def retype(rng: random.Random, tree: Tree) -> str:
    slot = _slot(rng, tree)
    if slot is None:
        return "retype: nothing"
    old = get(*slot)
    kind = rng.choice(("empty map", "empty list", "null", "map around", "list around", "text"))
    new: Node = {
        "empty map": lambda: MappingNode(MAP, []),
        "empty list": lambda: SequenceNode(SEQ, []),
        "null": lambda: ScalarNode(NULL, ""),
        "map around": lambda: MappingNode(MAP, [(ScalarNode(STR, "value"), old)]),
        "list around": lambda: SequenceNode(SEQ, [old]),
        "text": lambda: ScalarNode(STR, "text"),
    }[kind]()
    put(*slot, new)
    return f"value of {_where(*slot)} -> {kind}"


def delete_entry(rng: random.Random, tree: Tree) -> str:
    slot = _slot(rng, tree)
    if slot is None:
        return "delete: nothing"
    what = _where(*slot)
    del slot[0].value[slot[1]]
    return f"deleted {what}"


def duplicate_entry(rng: random.Random, tree: Tree) -> str:
    slot = _slot(rng, tree)
    if slot is None:
        return "duplicate: nothing"
    container, index = slot
    container.value.insert(rng.randrange(len(container.value) + 1), container.value[index])
    return f"duplicated {_where(container, index)}"


def swap_entries(rng: random.Random, tree: Tree) -> str:
    """Two entries of one collection change places; in a mapping, two keys swap their values."""
    slot = _slot(rng, tree)
    if slot is None or len(slot[0].value) < 2:
        return "swap: nothing"
    container, i = slot
    j = rng.randrange(len(container.value))
    a, b = get(container, i), get(container, j)
    put(container, i, b)
    put(container, j, a)
    return f"swapped {_where(container, i)} and {_where(container, j)}"


def rename_key(rng: random.Random, tree: Tree) -> str:
    maps = [m for m in tree.collections(MappingNode) if m.value]
    if not maps:
        return "rename: nothing"
    mapping = rng.choice(maps)
    index = rng.randrange(len(mapping.value))
    what = _where(mapping, index)
    if rng.random() < 0.15:
        complex_keys = (MappingNode(MAP, [(ScalarNode(STR, "a"), ScalarNode(INT, "1"))]), SequenceNode(SEQ, []))
        key: Node = rng.choice(complex_keys)
    else:
        key = ScalarNode(*rng.choice(ODD_KEYS))
    mapping.value[index] = (key, mapping.value[index][1])
    return f"key {what} -> {type(key).__name__} {str(key.value)[:30]!r}"


def alias(rng: random.Random, tree: Tree) -> str:
    """A value becomes the same node as another one: written as an anchor and an alias, maybe recursive."""
    slots = tree.slots()
    if len(slots) < 2:
        return "alias: nothing"
    target, source = rng.choice(slots), rng.choice(slots)
    put(*target, tree.root if rng.random() < 0.1 else get(*source))
    return f"value of {_where(*target)} -> alias of {_where(*source)}"


def alias_bomb(rng: random.Random, tree: Tree) -> str:
    slot = _slot(rng, tree)
    if slot is None:
        return "alias bomb: nothing"
    levels = rng.choice((3, 6, 9))
    node: Node = SequenceNode(SEQ, [ScalarNode(STR, "lol")] * 10, flow_style=True)
    for _ in range(levels):
        node = SequenceNode(SEQ, [node] * 10, flow_style=True)
    put(*slot, node)
    return f"value of {_where(*slot)} -> alias bomb 10^{levels + 1}"


def deep_nest(rng: random.Random, tree: Tree) -> str:
    slot = _slot(rng, tree)
    if slot is None:
        return "nest: nothing"
    depth = rng.choice((30, 63, 64, 65, 200, 1000, 100_000))
    kind = rng.choice(("list", "map"))
    if depth <= 100:
        flow = rng.random() < 0.5
        node = get(*slot)
        for _ in range(depth):
            if kind == "list":
                node = SequenceNode(SEQ, [node], flow_style=flow)
            else:
                node = MappingNode(MAP, [(ScalarNode(STR, "k"), node)], flow_style=flow)
        put(*slot, node)
        return f"value of {_where(*slot)} -> nested {depth} {kind}s ({'flow' if flow else 'block'})"
    opening, closing = ("[", "]") if kind == "list" else ("{k: ", "}")
    put(*slot, tree.raw(opening * depth + "1" + closing * depth))
    return f"value of {_where(*slot)} -> nested {depth} flow {kind}s"


def odd_fragment(rng: random.Random, tree: Tree) -> str:
    slot = _slot(rng, tree)
    if slot is None:
        return "fragment: nothing"
    fragment = rng.choice(("*undefined", "&a 1", "!!str", "! x", "[1, *a]", "{? [1]: 2}", "'unterminated", '"\\q"'))
    put(*slot, tree.raw(fragment))
    return f"value of {_where(*slot)} -> {fragment!r}"


def flow_style(rng: random.Random, tree: Tree) -> str:
    collections = tree.collections(MappingNode) + tree.collections(SequenceNode)
    flow = rng.random() < 0.7
    chosen = collections if rng.random() < 0.2 else rng.sample(collections, min(len(collections), 3))
    for node in chosen:
        node.flow_style = flow
    return f"{len(chosen)} collections in {'flow' if flow else 'block'} style"


def scalar_style(rng: random.Random, tree: Tree) -> str:
    scalars = [n for n in (get(c, i) for c, i in tree.slots()) if isinstance(n, ScalarNode)]
    if not scalars:
        return "style: nothing"
    style = rng.choice(("'", '"', "|", ">", "|-", ">+"))
    for node in rng.sample(scalars, min(len(scalars), 4)):
        node.style = style
    return f"scalars in style {style}"


def grow_stages(rng: random.Random, tree: Tree) -> str:
    """Many more stages, each with its own id: the size a big real recipe might reach."""
    stages = [get(c, i) for c, i in tree.slots() if isinstance(get(c, i), SequenceNode) and _key(c, i) == "stages"]
    if not stages:
        return "grow: no stages"
    route = stages[0]
    copies = rng.choice((5, 20, 60, 100))
    original = list(route.value)
    for n in range(1, copies):
        route.value.extend(_renamed(item, f"_{n}") for item in original)
    return f"stages x{copies} ({len(route.value)} stages)"


def _key(container: Node, index: int) -> str | None:
    if isinstance(container, MappingNode):
        return getattr(container.value[index][0], "value", None)
    return None


def _renamed(node: Node, suffix: str) -> Node:
    """A deep copy of a stage with every ``id`` given ``suffix``."""
    if isinstance(node, ScalarNode):
        return ScalarNode(node.tag, node.value, style=node.style)
    if isinstance(node, SequenceNode):
        return SequenceNode(node.tag, [_renamed(n, suffix) for n in node.value], flow_style=node.flow_style)
    pairs = []
    for k, v in node.value:
        if getattr(k, "value", None) == "id" and isinstance(v, ScalarNode):
            v = ScalarNode(v.tag, v.value + suffix)
        pairs.append((k, _renamed(v, suffix)))
    return MappingNode(node.tag, pairs, flow_style=node.flow_style)


NODE_MUTATORS: tuple[Callable[[random.Random, Tree], str], ...] = (
    replace_scalar,
    replace_scalar,
    odd_number,
    odd_number,
    wrong_tag,
    wrong_tag,
    retype,
    delete_entry,
    delete_entry,
    duplicate_entry,
    swap_entries,
    rename_key,
    alias,
    alias_bomb,
    deep_nest,
    odd_fragment,
    flow_style,
    scalar_style,
)
"""Drawn with equal chance: the commoner kinds of mistake are listed more than once."""

RARE_NODE_MUTATORS = (grow_stages,)
"""Slow to validate by design; drawn only now and then so that a run stays short."""
