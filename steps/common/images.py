"""The station's image files: where a recipe's image is on disk, its size and its sha256.

An image's ``file:`` is a path relative to the station's image directory (every recipe's image
names one; an image built in code without one is looked up by its name). The hash is what the
unit's storage must read back after a write; it is computed once per file version (path, size and
modification time) and shared by every slot, however many ask at once.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.diagnostics import did_you_mean
from engine.flow import Image
from engine.outcome import StationError

CHUNK = 1024 * 1024
"""Bytes per read and per USB transfer."""


@dataclass(frozen=True)
class ImageSource:
    name: str
    path: Path
    size: int
    sha256: str

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        with self.path.open("rb") as data:
            while block := data.read(size):
                yield block


class FileImageStore:
    """Images as files under ``root``; the ``image_store`` resource of a station."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._hashing: dict[Path, threading.Lock] = {}
        self._known: dict[tuple[Path, int, int], str] = {}
        self.offline = False

    def path(self, image: Image) -> Path:
        return self.root / (image.file or image.name)

    def source(self, image: Image) -> ImageSource:
        if self.offline:
            raise StationError("the image store is offline")
        path = self.path(image)
        try:
            stat = path.stat()
        except OSError:
            present = sorted(p.name for p in path.parent.glob("*")) if path.parent.is_dir() else []
            hint = did_you_mean(path.name, present) if present else f" ({path.parent} holds no files)"
            raise StationError(f"image '{image.name}': {path} is not there{hint}") from None
        key = (path, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            lock = self._hashing.setdefault(path, threading.Lock())
        with lock:
            digest = self._known.get(key)
            if digest is None:
                with path.open("rb") as data:
                    digest = hashlib.file_digest(data, "sha256").hexdigest()
                self._known[key] = digest
        return ImageSource(image.name, path, stat.st_size, digest)

    def digest(self, image: Image) -> str:
        return self.source(image).sha256
