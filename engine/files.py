"""Files written whole or not at all: a temporary file beside the target, synced, renamed over it.

Only a new path or a regular file is written: a directory, a FIFO, a device or a socket at the path
(or at the end of a link there) is refused, so writing a report never replaces ``/dev/full``.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from engine.inputs import file_kind

NEW_FILE_MODE = 0o644
"""The mode of a new file: readable by whoever reads the records and reports."""


class NotRegularFile(OSError):
    """Something other than a regular file is where a file is to be written."""


def replaceable_mode(path: Path) -> int:
    """The mode a file written at ``path`` gets: its present file's, or NEW_FILE_MODE for a new path.

    NotRegularFile when what is there (followed through links) is not a regular file.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return NEW_FILE_MODE
    if not stat.S_ISREG(info.st_mode):
        raise NotRegularFile(f"{path}: is {file_kind(info.st_mode)}: only a new file or a regular file is written")
    return stat.S_IMODE(info.st_mode)


def write_atomically(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` (keeping its mode); on any error leave ``path`` as it was and nothing else.

    ``sync`` False skips the fsync: the file is then safe from a crash of the process, not of the machine.
    NotRegularFile when a directory, FIFO, device or socket is at ``path``.
    """
    mode = replaceable_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
