"""What the plain install leaves out, and the extra that brings each part in.

``pip install floorflow`` validates recipes, draws them and runs stations on the SQLite store with
USB and serial consoles: a pre-commit hook installs that much and no more. Everything else is an
extra named in pyproject.toml's ``[project.optional-dependencies]``: ``simulate``, ``plots``,
``postgresql``, ``instruments``, ``labels``, ``screen`` and ``cluster``. The code that needs one
imports its packages where it uses them, asking ``missing`` first, so a user without the extra
reads one line saying which to install, never a traceback.
"""

from __future__ import annotations

import importlib

OPTIONAL: dict[str, tuple[str, str]] = {
    "simpy": ("simpy", "simulate"),
    "numpy": ("numpy", "simulate"),
    "scipy": ("scipy", "simulate"),
    "distributed": ("dask[distributed]", "cluster"),
    "matplotlib": ("matplotlib", "plots"),
    "psycopg": ("psycopg", "postgresql"),
    "pyvisa": ("pyvisa", "instruments"),
    "pyvisa_py": ("pyvisa-py", "instruments"),
    "barcode": ("python-barcode", "labels"),
    "PIL": ("pillow", "labels"),
    "starlette": ("starlette", "screen"),
    "uvicorn": ("uvicorn", "screen"),
    "sse_starlette": ("sse-starlette", "screen"),
}
"""Each optional package by the name it is imported as: (its distribution, the extra that installs it)."""


def missing(what: str, *modules: str) -> str | None:
    """None when every one of ``modules`` imports; else one line: what needs which extra to install."""
    absent = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            absent.append(module)
    if not absent:
        return None
    packages = " and ".join(OPTIONAL[m][0] for m in absent)
    extras = ",".join(dict.fromkeys(OPTIONAL[m][1] for m in absent))
    return f"{what} needs {packages}, which the plain install leaves out: pip install 'floorflow[{extras}]'"
