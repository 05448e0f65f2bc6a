"""Files shipped with floorflow: the schemas and the example workflows.

In a source checkout they sit beside ``engine/``; an installed wheel carries them inside it, as
``engine/schemas`` and ``engine/workflows`` (see the package-dir mapping in pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_ENGINE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    installed = _ENGINE / name
    return installed if installed.is_dir() else _ENGINE.parent / name


def schema_path(name: str) -> Path:
    return _data_dir("schemas") / name


def workflow_path(name: str) -> Path:
    return _data_dir("workflows") / name
