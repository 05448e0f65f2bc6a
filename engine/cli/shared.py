"""What every verb shares: the exit codes, the usage error, the word on units a dead station left, an
existing store opened, a time given on the command line.

The verbs import this module and the rooms, never each other.
"""

from __future__ import annotations

import os
import sys
import textwrap
from datetime import datetime
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING

from engine.files import NotRegularFile, replaceable_mode

if TYPE_CHECKING:  # the verbs that never open a store (validate, graph) stay light
    from collections.abc import Callable

    from engine.store import SqlStore


class ExitCode(IntEnum):
    """What ``floorflow``'s exit status tells a script; every verb means the same by each code."""

    OK = 0
    RECIPE_ERRORS = 1
    USAGE = 2
    ABORTED = 3
    STATION_ERROR = 4
    UNIT_FAILED = 5

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


MEANINGS = {
    ExitCode.OK: "ok: what was asked is done (recipes valid; every unit passed its stages or is in route)",
    ExitCode.RECIPE_ERRORS: (
        "a recipe has errors, each printed at its file:line:col, and nothing was run; "
        "or simulated units met a rule the recipe breaks"
    ),
    ExitCode.USAGE: (
        "usage: the command cannot be done as given (a bad argument; a file missing, unreadable or wrong: "
        "units list, answers, hardware or simulation config, line profile; a store or unit not there; "
        "an abstract or unreleased recipe; a unit not quarantined; the extra a verb needs not installed)"
    ),
    ExitCode.ABORTED: "aborted (Ctrl-C or SIGTERM); what was recorded is kept",
    ExitCode.STATION_ERROR: (
        "station error: a device, instrument or store missing or failing (or the extra that reaches it not "
        "installed), or a step that errored or timed out; the units it stopped end in error"
    ),
    ExitCode.UNIT_FAILED: "a unit failed: scrapped, or refused by a guard (the unit's record says which rule)",
}
"""One meaning per code: the ``--help`` epilog, README.md and docs/architecture.md say these."""


def exit_codes_help() -> str:
    """The exit codes as ``--help`` ends with them."""
    lines = (
        textwrap.fill(code.meaning, 79, initial_indent=f"  {code.value}  ", subsequent_indent=" " * 5)
        for code in ExitCode
    )
    return "exit codes:\n" + "\n".join(lines)


class UsageError(Exception):
    """The command cannot be done as given (exit 2); the message says why, on one line."""


def check_writable(out: Path) -> None:
    """OUT is a new file or a regular one, in a directory that is there and can be written to: checked before the
    store is read (and again as the file is written, ``engine.files``); UsageError saying why not."""
    if not out.parent.is_dir():
        raise UsageError(f"{out}: cannot be written: no such directory {out.parent}")
    try:
        replaceable_mode(out)
    except NotRegularFile as exc:
        raise UsageError(str(exc)) from None
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise UsageError(f"{out}: cannot be written: the directory {out.parent} is not writable")


def warn_recovered(store: SqlStore) -> None:
    """Quarantine what stations that died left inside irreversible steps, and say so on stderr."""
    for serial, reason in store.recover():
        print(f"warning: unit {serial} is quarantined: {reason}", file=sys.stderr)


def reading_store(work: Callable[[], int]) -> int:
    """Run a verb that reads a store: a store that cannot be opened or read is a usage error (exit 2), said in
    one line, under every such verb alike."""
    from engine.store import StoreError

    try:
        return int(work())
    except StoreError as exc:
        raise UsageError(str(exc)) from None


def open_existing(url: str | None) -> SqlStore:
    """The store at ``url`` (default: ``$FLOORFLOW_STORE``, else the default file), which must be there: a
    SQLite file that does not exist is a usage error, never silently created empty."""
    from engine.store import ENVIRONMENT, StoreError, default_url, open_store

    url = url or default_url()
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:" and not Path(url[len("sqlite:///") :]).is_file():
        raise UsageError(f"no store at {url}: give --store URL (or set ${ENVIRONMENT})")
    try:
        store = open_store(url)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    try:
        warn_recovered(store)  # a station that died shows as what it left, not as in-route
    except BaseException:
        store.close()
        raise
    return store


def parse_since(text: str, option: str = "--since") -> float:
    """An ISO 8601 date or date and time; without a zone it is the station's local time."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: give an ISO 8601 date or time, like 2026-11-21 or 2026-11-21T08:00"
        ) from None
    return when.astimezone().timestamp() if when.tzinfo is None else when.timestamp()
