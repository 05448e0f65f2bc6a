"""The mutations of tests/fuzzkit.py on a recipe's bytes: what editors, transfers and disks do to text.

Each takes the generator it is given and the bytes, and returns the new bytes and a few words
saying what it did.
"""

from __future__ import annotations

import random
from collections.abc import Callable

MAX_BYTES = 1 << 20
"""The loader's size limit, met from both sides."""

CONTROL = [bytes([c]) for c in range(0x20) if c != 0x0A] + [
    b"\x7f",
    "\x85".encode(),
    "\u2028".encode(),
    "\ufeff".encode(),
]
INVALID_UTF8 = (b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\xe2\x82")
PUNCTUATION = (b":", b": ", b"- ", b"{", b"}", b"[", b"]", b",", b"&a ", b"*a", b"*b ", b"!", b"!!", b"%", b"? ",
               b"|", b">", b"#", b"'", b'"', b"\\", b"@", b"`", b"---", b"...", b"\n-\n", b"\n  ")  # fmt: skip


def _at(rng: random.Random, data: bytes) -> int:
    return rng.randrange(len(data) + 1)


def _insert(data: bytes, at: int, what: bytes) -> bytes:
    return data[:at] + what + data[at:]


def flip_bits(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    if not data:
        return data, "flip: empty"
    out = bytearray(data)
    spots = sorted(rng.randrange(len(out)) for _ in range(rng.choice((1, 1, 2, 8))))
    for spot in spots:
        out[spot] ^= 1 << rng.randrange(8)
    return bytes(out), f"bit flips at bytes {spots[:4]}"


def truncate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    at = _at(rng, data)
    return data[:at], f"truncated to {at} bytes"


def insert_control(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    at, char = _at(rng, data), rng.choice(CONTROL)
    return _insert(data, at, char), f"control {char!r} at byte {at}"


def insert_nul(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    at = _at(rng, data)
    return _insert(data, at, b"\x00" * rng.choice((1, 4))), f"NUL at byte {at}"


def invalid_utf8(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    at, seq = _at(rng, data), rng.choice(INVALID_UTF8)
    return _insert(data, at, seq), f"invalid UTF-8 {seq!r} at byte {at}"


def line_ends(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    end = rng.choice((b"\r\n", b"\r", b"\n\r", b"\x85"))
    if rng.random() < 0.5:
        return data.replace(b"\n", end), f"every newline -> {end!r}"
    at = data.find(b"\n", _at(rng, data))
    if at < 0:
        return data, "newline: none after the spot"
    return data[:at] + end + data[at + 1 :], f"newline at byte {at} -> {end!r}"


def tabs(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    lines = data.split(b"\n")
    indented = [i for i, line in enumerate(lines) if line.startswith(b"  ")]
    if not indented:
        return data, "tabs: no indented line"
    chosen = indented if rng.random() < 0.3 else [rng.choice(indented)]
    for i in chosen:
        lines[i] = b"\t" + lines[i][2:]
    return b"\n".join(lines), f"tab indentation on {len(chosen)} lines"


def bom(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    kind = rng.choice(("utf-8 first", "utf-8 inside", "utf-16", "utf-32"))
    if kind == "utf-8 first":
        return b"\xef\xbb\xbf" + data, "UTF-8 BOM first"
    if kind == "utf-8 inside":
        at = _at(rng, data)
        return _insert(data, at, b"\xef\xbb\xbf"), f"UTF-8 BOM at byte {at}"
    text = data.decode("utf-8", "replace")
    return text.encode(kind), f"whole file as {kind} with its BOM"


def edit_lines(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    lines = data.split(b"\n")
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    kind = rng.choice(("delete", "duplicate", "swap", "indent", "dedent"))
    if kind == "delete":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(j, lines[i])
    elif kind == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "indent":
        lines[i] = b" " * rng.choice((1, 2, 3, 8)) + lines[i]
    else:
        lines[i] = lines[i][rng.choice((1, 2)) :]
    return b"\n".join(lines), f"{kind} line {i + 1}" + (f" and {j + 1}" if kind in ("duplicate", "swap") else "")


def punctuation(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    at, what = _at(rng, data), rng.choice(PUNCTUATION)
    return _insert(data, at, what), f"{what!r} at byte {at}"


def documents(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    kind = rng.choice(
        (b"%YAML 1.1\n---\n", b"%YAML 2.0\n---\n", b"%TAG ! tag:example.com,2000:\n---\n", b"---\n", b"--- !!str\n")
    )
    if rng.random() < 0.5:
        return kind + data, f"starts with {kind!r}"
    tail = rng.choice((b"\n---\nrecipe: two\n", b"\n...\n", b"\n...\n---\n", b"\n--- ["))
    return data + tail, f"ends with {tail!r}"


def size(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    kind = rng.choice(("empty", "blank", "comment only", "at the limit", "over the limit", "long line"))
    if kind == "empty":
        return b"", "empty file"
    if kind == "blank":
        return b" \n\t\n\n", "blank file"
    if kind == "comment only":
        return b"# nothing here\n", "comment only"
    if kind == "long line":
        return data + b"\ndescription2: " + b"z" * 200_000 + b"\n", "a 200,000-character line"
    target = MAX_BYTES if kind == "at the limit" else MAX_BYTES + 1
    pad = max(target - len(data) - 3, 0)
    return (data + b"\n#" + b"p" * pad + b"\n")[: max(target, len(data))], f"padded to {target} bytes"


def unicode_spaces(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    space = rng.choice(("\u00a0", "\u3000", "\u2003", "\u200b"))
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    lines[i] = lines[i].replace(b" ", space.encode(), 1) if rng.random() < 0.5 else space.encode() + lines[i]
    return b"\n".join(lines), f"{space!r} in line {i + 1}"


TEXT_MUTATORS: tuple[Callable[[random.Random, bytes], tuple[bytes, str]], ...] = (
    flip_bits,
    flip_bits,
    truncate,
    insert_control,
    insert_control,
    insert_nul,
    invalid_utf8,
    line_ends,
    tabs,
    bom,
    edit_lines,
    edit_lines,
    punctuation,
    punctuation,
    documents,
    size,
    unicode_spaces,
)
"""Drawn with equal chance: the commoner kinds of damage are listed more than once."""
