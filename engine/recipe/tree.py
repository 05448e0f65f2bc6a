"""Which files ``extends:`` may name: regular files inside the recipe tree, nothing else.

The tree is the directory of the recipe a check starts from, or a root the user names
(``--recipe-root``). Links are followed before the test, so a link cannot lead out of it; an
absolute path, ``..`` that climbs out, a directory, a device, a FIFO and the kernel's files under
/proc and /sys are refused at the ``extends:`` line, never opened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.diagnostics import Diagnostic, Pos, RecipeError, quoted

_KERNEL_FILES = ("/proc", "/sys")
"""Their "regular files" are the kernel's: never a recipe, whatever root the user names."""


def os_problem(exc: OSError) -> str:
    """How a file that cannot be read is described in a diagnostic."""
    return f"cannot be read: {exc.strerror or exc}"


def extended_file(directory: Path, ref: str, root: Path, pos: Pos) -> Path:
    """The real path of the recipe ``extends: ref`` names; RecipeError at ``pos`` unless it is a
    regular file at or below ``root`` (after following links: a link cannot lead out of the tree)."""

    def refuse(code: str, why: str) -> RecipeError:
        return RecipeError([Diagnostic(pos, "error", code, f"extends {quoted(ref)}: {why}")])

    if not ref.isprintable() or "\x00" in ref:
        raise refuse("extends-bad-path", "a path cannot hold a control character")
    if Path(ref).is_absolute():
        raise refuse("extends-outside", "name the recipe by a path relative to this file, not an absolute one")
    try:
        real = Path(os.path.realpath(directory / ref, strict=True))
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        raise refuse("extends-missing", f"no such recipe (looked for {directory / ref})") from None
    except (OSError, ValueError) as exc:
        problem = os_problem(exc) if isinstance(exc, OSError) else str(exc)
        raise refuse("extends-unreadable", problem) from None
    if any(real.is_relative_to(kernel) for kernel in _KERNEL_FILES):
        raise refuse("extends-outside", f"it is a file of the kernel ({real}), not a recipe")
    if not real.is_relative_to(root):
        raise refuse(
            "extends-outside",
            f"it lies outside the recipe tree {quoted(str(root))} (extends names recipes at or below the "
            "directory of the recipe checked, or the --recipe-root given)",
        )
    if not stat.S_ISREG(mode):
        what = "a directory" if stat.S_ISDIR(mode) else "a device, FIFO or socket"
        raise refuse("extends-not-file", f"it is {what}, not a recipe file")
    return real
