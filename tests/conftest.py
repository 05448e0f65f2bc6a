"""Every simulated line a test opens is closed when the test ends, used up or not.

A SimLine holds pseudo-terminals and loopback sockets; a test run opens hundreds of lines, and
pyserial and pyvisa-py wait on their descriptors with select(), which fails past descriptor 1023.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from steps.sim import SimLine


@pytest.fixture(autouse=True)
def _close_simulated_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    opened: list[SimLine] = []
    original = SimLine.__init__

    def tracked(self: SimLine, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(SimLine, "__init__", tracked)
    yield
    for line in opened:
        line.close()
