"""Files shipped with floorflow: the schemas and the example workflows.

In a source checkout they sit beside ``engine/``; an installed wheel carries them as the
``engine.schemas`` and ``engine.workflows`` package data.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def _data_dir(name: str) -> Path:
    local = _CHECKOUT / name
    if local.is_dir():
        return local
    return Path(str(resources.files(f"engine.{name}")))


def schema_path(name: str) -> Path:
    return _data_dir("schemas") / name


def workflows_dir() -> Path:
    return _data_dir("workflows")
