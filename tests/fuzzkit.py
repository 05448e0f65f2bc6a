"""Mutated recipes for fuzzing ``floorflow validate``, each one rebuilt exactly from (seed, index).

An input starts from one of the recipes in the repository (workflows/, workflows/base/,
tests/recipes/) and gets a few mutations: on the YAML node tree (keys deleted, duplicated or
swapped, scalars replaced by values of other types, wrong core tags, aliases, deep nesting, flow
style), on the bytes (flipped bits, truncation, control characters, invalid UTF-8, CRLF, tabs, a
BOM), or on ``extends:`` (absolute paths, ``..``, devices, /proc, directories, over-long names,
newlines). ``make_input(seed, index)`` draws everything from one generator seeded by the pair, so
the same pair gives the same files on any machine with the same recipes checked out (the recipes
it starts from are part of the input); ``write_input`` lays them out in a directory prepared once by
``prepare_dir``.
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from fuzzbytes import TEXT_MUTATORS
from fuzznodes import NODE_MUTATORS, RARE_NODE_MUTATORS, Tree, compose, serialize

ROOT = Path(__file__).resolve().parent.parent
BASE_NAME = "base/phone.yaml"
"""Where the child recipes of workflows/ find their parent, relative to the input."""

SENTINEL = "sentinel.yaml"
"""A recipe with one error, validated after every tenth input: its error must still be reported."""
SENTINEL_EVERY = 10
JSON_AT = 7
"""Inputs whose index ends in this digit are validated with ``--format json``."""

DIR_MARK = "{dir}"
"""Stands for the input directory's absolute path in an ``extends:`` target (it differs per run)."""

EXTENDS_TARGETS = (
    "/etc/passwd",
    "/etc/hostname",
    "/dev/zero",
    "/dev/null",
    "/dev/full",
    "/dev/urandom",
    "/proc/self/mem",
    "/proc/self/status",
    "/proc/self/cmdline",
    "/",
    ".",
    "..",
    "",
    " ",
    "adir",
    "adir/",
    "base",
    "fifo",
    "link-out.yaml",
    "../../../../../../../../etc/passwd",
    "../base/phone.yaml",
    "base/../base/phone.yaml",
    "./base/phone.yaml",
    "base//phone.yaml",
    "base/phone.yaml/",
    "base/phone.yaml\n",
    "base/phone.yaml\nversion: 2",
    "base/\x1b[31mphone.yaml",
    "base/phone.yaml\x00",
    "base/phone.yaml\u2028x",
    "base/phone\u0430.yaml",
    "x" * 300,
    "base/" + "x" * 255 + ".yaml",
    "a/" * 3000 + "phone.yaml",
    "~/phone.yaml",
    "http://example.com/phone.yaml",
    "C:\\recipes\\phone.yaml",
    "%2e%2e/%2e%2e/etc/passwd",
    DIR_MARK + "/base/phone.yaml",
    DIR_MARK + "/../../etc/passwd",
    "{self}",
)
"""Places an ``extends:`` may name that are not a plain recipe beside the input."""


@dataclass
class FuzzInput:
    """The files of one input (relative to its directory) and what was done to make them."""

    seed: int
    index: int
    main: str
    files: dict[str, bytes]
    steps: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    """Recipes validated after the input in the same command, each with an error the output must name."""
    json_output: bool = False

    @property
    def args(self) -> list[str]:
        """The arguments of ``floorflow validate``: the format, then the files in order."""
        return (["--format", "json"] if self.json_output else []) + [self.main, *self.after]

    def describe(self) -> str:
        return f"seed {self.seed} index {self.index}: " + "; ".join(self.steps)


@cache
def sources() -> tuple[tuple[str, str], ...]:
    """(name, text) of every recipe the mutations start from, in a fixed order."""
    paths = sorted((ROOT / "workflows").glob("*.yaml")) + sorted((ROOT / "workflows" / "base").glob("*.yaml"))
    paths += sorted((ROOT / "tests" / "recipes").rglob("*.yaml"))
    return tuple((str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in paths)


def prepare_dir(directory: Path) -> None:
    """The fixtures every input may meet: the pristine parent recipe, a directory, a FIFO, a symlink out."""
    base = ROOT / "workflows" / BASE_NAME
    (directory / "base").mkdir(parents=True, exist_ok=True)
    (directory / BASE_NAME).write_bytes(base.read_bytes())
    (directory / SENTINEL).write_text('recipe: sentinel\nversion: "one"\n', encoding="utf-8")
    (directory / "adir").mkdir(exist_ok=True)
    if not (directory / "fifo").exists():
        os.mkfifo(directory / "fifo")
    if not (directory / "link-out.yaml").is_symlink():
        (directory / "link-out.yaml").symlink_to("/etc/hostname")


def write_input(directory: Path, fuzz: FuzzInput) -> list[Path]:
    """Write the input's files into ``directory``; the paths written, to remove afterwards."""
    written = []
    for name, data in fuzz.files.items():
        path = directory / name
        path.write_bytes(data.replace(DIR_MARK.encode(), str(directory.resolve()).encode()))
        written.append(path)
    return written


def _rng(seed: int, index: int) -> random.Random:
    # A string seed is hashed with SHA-512: the same on every machine and every run.
    return random.Random(f"floorflow-fuzz:{seed}:{index}")


def make_input(seed: int, index: int) -> FuzzInput:
    """The input number ``index`` of the run seeded ``seed``."""
    rng = _rng(seed, index)
    # Valid recipes get further (compile, flow rules) before a mutation stops them: drawn more often.
    workflows = [s for s in sources() if s[0].startswith("workflows/")]
    name, text = rng.choice(workflows if rng.random() < 0.6 else sources())
    main = f"in-{index}.yaml"
    fuzz = FuzzInput(seed, index, main, {}, [f"from {name}"])
    roll = rng.random()
    if roll < 0.03:
        fuzz.files[main] = text.encode()
        fuzz.steps.append("unchanged")
    elif roll < 0.14 and compose(text) is not None:
        fuzz.files[main] = _odd_extends(rng, text, main, fuzz.steps)
    elif roll < 0.20:
        parent = f"in-{index}-base.yaml"
        base_text = dict(sources())["workflows/" + BASE_NAME]
        fuzz.steps.append(f"extends {parent}, a mutated {BASE_NAME}")
        fuzz.files[parent] = _mutated(rng, base_text, fuzz.steps)
        child = _child_text(rng)
        fuzz.files[main] = _with_extends(child, parent).encode()
    else:
        fuzz.files[main] = _mutated(rng, text, fuzz.steps)
    if index % SENTINEL_EVERY == SENTINEL_EVERY // 2:
        fuzz.after.append(SENTINEL)
        fuzz.steps.append(f"then {SENTINEL}, a recipe with an error")
    if index % 10 == JSON_AT:
        fuzz.json_output = True
        fuzz.steps.append("--format json")
    return fuzz


def _mutated(rng: random.Random, text: str, steps: list[str]) -> bytes:
    """Node mutations (re-serialized), byte mutations on top, or byte mutations of the original text."""
    mode = rng.random()
    data = text.encode()
    tree = compose(text) if mode < 0.65 else None
    if tree is not None:
        if rng.random() < 0.01:
            steps.append(rng.choice(RARE_NODE_MUTATORS)(rng, tree))
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            apply_node: Callable[[random.Random, Tree], str] = rng.choice(NODE_MUTATORS)
            steps.append(apply_node(rng, tree))
        data = serialize(tree)
    if mode >= 0.45 or tree is None:
        for _ in range(rng.choice((1, 1, 2))):
            apply_text: Callable[[random.Random, bytes], tuple[bytes, str]] = rng.choice(TEXT_MUTATORS)
            data, step = apply_text(rng, data)
            steps.append(step)
    return data


def _child_text(rng: random.Random) -> str:
    children = [text for name, text in sources() if name.startswith("workflows/") and "extends:" in text]
    return rng.choice(children)


def _with_extends(text: str, target: str) -> str:
    tree = compose(text)
    assert tree is not None
    tree.set_top("extends", target)
    return serialize(tree).decode()


def _odd_extends(rng: random.Random, text: str, main: str, steps: list[str]) -> bytes:
    """The recipe with ``extends:`` set to an odd place (as text, or as a value of another type)."""
    tree = compose(text)
    assert tree is not None
    if rng.random() < 0.85:
        target = rng.choice(EXTENDS_TARGETS).replace("{self}", main)
        tree.set_top("extends", target)
        steps.append(f"extends: {target[:80]!r}")
    else:
        odd = rng.choice(("1", "[base/phone.yaml]", "{a: b}", "null", "true", "!!binary aGk=", "*x"))
        tree.set_top_raw("extends", odd)
        steps.append(f"extends: {odd}")
    data = serialize(tree)
    if rng.random() < 0.2:
        apply_text = rng.choice(TEXT_MUTATORS)
        data, step = apply_text(rng, data)
        steps.append(step)
    return data


def dump_input(fuzz: FuzzInput, directory: Path) -> Path:
    """Write the input and a note saying how it was made into ``directory``/seed-S-index-I/."""
    target = directory / f"seed-{fuzz.seed}-index-{fuzz.index}"
    target.mkdir(parents=True, exist_ok=True)
    prepare_dir(target)
    write_input(target, fuzz)
    note = io.StringIO()
    note.write(fuzz.describe() + "\n")
    note.write(f"reproduce: cd {target} && floorflow validate {' '.join(fuzz.args)}\n")
    (target / "HOW.txt").write_text(note.getvalue(), encoding="utf-8")
    return target
