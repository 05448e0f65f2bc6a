"""What the commands take from people and files: input files, unit serials, names, and where a config value is.

Each is refused with one line naming it, before anything touches a unit: a serial or a name that
would split a line of output, reach the terminal as an escape sequence or name no file is a usage
error, and so is an input file that is not a regular UTF-8 text file of reasonable size.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
from pathlib import Path
from typing import Any

from engine.diagnostics import Diagnostic, Pos, quoted

MAX_INPUT_BYTES = 1 << 20
"""Units files, answers, simulation and station configs are written by people: a megabyte is plenty."""
SERIAL_MAX = 64
"""The longest unit serial accepted, in characters (docs/running.md says so)."""
NAME_MAX = 100
"""The longest name of a person, lot or station accepted, in characters."""
NOTE_MAX = 1000
"""The longest note for the audit log."""

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class InputError(ValueError):
    """An input that cannot be used; the message names it (a usage error)."""


def file_kind(mode: int) -> str:
    """What a file of ``mode`` is, as a message names it ("a directory", "a FIFO", ...)."""
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "not a regular file"


def check_input_file(path: Path) -> None:
    """InputError unless ``path`` (followed through links) is a regular file.

    Checked before opening: opening a FIFO would wait for a writer, and a device never ends. Whoever
    reads the file bounds what it reads (``read_input_text``, ``engine.yamlload.load_file``).
    """
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path}: is {file_kind(info.st_mode)}, not a regular file")


def read_input_text(path: Path) -> str:
    """The text of an input file; InputError for anything that is not a readable, reasonable UTF-8 file."""
    check_input_file(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_INPUT_BYTES:
        raise InputError(f"{path}: is larger than {MAX_INPUT_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text ({exc.reason})") from None


def _unprintable(text: str, *, spaces: bool) -> str | None:
    """What ``text`` holds that a line of output must not (None: nothing); ``spaces``: a plain space is fine."""
    for char in text:
        if char == " " and spaces:
            continue
        if char.isspace() and not spaces:
            return "whitespace"
        if not char.isprintable():
            return "a control or non-printable character"
    return None


def serial_problem(serial: str) -> str | None:
    """Why ``serial`` is not a unit serial (None: it is): empty, too long, or holding whitespace or
    a control or non-printable character."""
    if not serial:
        return "a serial cannot be empty"
    if len(serial) > SERIAL_MAX:
        return f"a serial is at most {SERIAL_MAX} characters, not {len(serial)}"
    what = _unprintable(serial, spaces=False)
    return None if what is None else f"a serial cannot hold {what}"


def name_problem(name: str, limit: int = NAME_MAX) -> str | None:
    """Why ``name`` is not a name (None: it is): blank, too long, or holding a control character."""
    if not name.strip():
        return "it cannot be empty or blank"
    if len(name) > limit:
        return f"it is at most {limit} characters, not {len(name)}"
    what = _unprintable(name, spaces=True)
    return None if what is None else f"it cannot hold {what}"


def serial_argument(text: str) -> str:
    """The argparse type of a unit serial."""
    problem = serial_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{quoted(text, 40)}: {problem}")
    return text


def name_argument(text: str) -> str:
    """The argparse type of a name (a person, a lot, a station): surrounding spaces are dropped."""
    problem = name_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{quoted(text, 40)}: {problem}")
    return text.strip()


def note_argument(text: str) -> str:
    """The argparse type of a note for the audit log: one line of text."""
    problem = name_problem(text, NOTE_MAX)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{quoted(text, 40)}: {problem}")
    return text.strip()


class ConfigError(ValueError):
    """A config value that cannot be used; ``where`` is its dotted path (``units.SN1.hang.rf_cal``).

    ``of_key``: the mistake is the key itself (an unknown one), not its value.
    """

    def __init__(self, message: str, where: str = "", *, of_key: bool = False) -> None:
        super().__init__(message)
        self.where = where
        self.of_key = of_key


def config_position(data: Any, where: str, *, of_key: bool = False) -> Pos | None:
    """The position of the value (or ``of_key``: the key) at the dotted path ``where`` in a loaded file,
    as near as it can be found.

    Keys may hold dots themselves (a serial, a stage.measurement): the longest key that fits is taken.
    """
    from engine.yamlload import YList, YMap  # here: the command line's types need no YAML parser

    pos: Pos | None = getattr(data, "pos", None)
    node, rest = data, where
    while rest:
        if isinstance(node, YMap):
            key = next((k for k in sorted(node, key=len, reverse=True) if rest == k or rest.startswith(k + ".")), None)
            if key is None:
                break
            rest = rest[len(key) + 1 :]
            pos, node = node.where(key, of_key=of_key and not rest), node[key]
        elif isinstance(node, YList):
            index = next((i for i, item in enumerate(node) if str(item) == rest), None)
            if index is not None:
                pos = node.where(index)
            break
        else:
            break
    return pos


def recipe_serial_pattern(product: Any, problems: list[Diagnostic]) -> str | None:
    """A recipe's ``product.serial_pattern``: a regular expression every serial it runs must match whole.

    One that does not compile is a recipe error at its position (added to ``problems``).
    """
    from engine.yamlload import YMap

    if not isinstance(product, YMap) or not isinstance(product.get("serial_pattern"), str):
        return None  # absent, or not text: the schema says so
    pattern: str = product["serial_pattern"]
    try:
        re.compile(pattern)
    except re.error as exc:
        message = f"serial_pattern {quoted(pattern, 40)} is not a regular expression: {exc}"
        problems.append(Diagnostic(product.where("serial_pattern"), "error", "serial-pattern", message))
        return None
    return pattern
