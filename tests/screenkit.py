"""Helpers of the operator screen's browser tests: ``floorflow station --ui`` in a process of its own, and
Debian's chromium driven by Playwright.

The tests skip when chromium or Playwright is not there, and fail instead with ``FLOORFLOW_REQUIRE_BROWSER=1``
(CI), so CI cannot go green by skipping them. Nothing is downloaded: the browser is the system's chromium.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "tests" / "recipes" / "station-screen.yaml"
"""The phone line cut down to one bench of two sockets: bt_check (Bluetooth power), then look (a manual check)."""
IMAGES = ROOT / "docs" / "images"
"""Where the screenshots go, for docs/station.md."""
REQUIRE_BROWSER = "FLOORFLOW_REQUIRE_BROWSER"
CHROMIUM = os.environ.get("FLOORFLOW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
PATIENCE_MS = 30_000
"""How long the page is waited for at most (generous: a slow CI machine still passes)."""
START_S = 60.0
"""How long a station has to say where its screen is, and to end once told to stop."""
ADDRESS = re.compile(r"floorflow: the operator screen is at (http://127\.0\.0\.1:\d+/)")


def browser_unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when the browser is required."""
    if os.environ.get(REQUIRE_BROWSER) == "1":
        pytest.fail(f"{REQUIRE_BROWSER}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def chromium_launch_options() -> dict[str, Any]:
    """How Playwright starts the system's chromium (skips, or fails under CI, when it is not installed)."""
    if not os.access(CHROMIUM, os.X_OK):
        browser_unavailable(f"no chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


def launched_chromium() -> Iterator[Any]:
    """The system's chromium started through Playwright, for a module's ``browser`` fixture to yield from."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the [dev] extra installs it
        browser_unavailable("Playwright is not installed: pip install -e '.[dev]'")
    options = chromium_launch_options()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(**options)
        yield launched
        launched.close()


class Station:
    """``floorflow station`` on the test recipe's bench, simulated, with its operator screen on a free port.

    ``options`` are added to the command (``--ask``, ``--operator NAME``); ``sim_config`` is the text of a
    ``--sim-config`` file. Its output goes to files in ``directory``; ``stop()`` ends it with SIGTERM.
    """

    def __init__(self, directory: Path, *options: str, sim_config: str | None = None) -> None:
        self.directory = directory
        self.store = f"sqlite:///{(directory / 'floorflow.db').resolve()}"
        command = [sys.executable, "-m", "engine.cli", "station", str(RECIPE), "--recipe-root", str(ROOT)]
        command += ["--station", "bench", "--sim", "--ui", "--ui-port", "0", "--store", self.store, *options]
        if sim_config is not None:
            config = directory / "sim.yaml"
            config.write_text(sim_config, encoding="utf-8")
            command += ["--sim-config", str(config)]
        self.command = command
        self.out_path = directory / "station.out"
        self.err_path = directory / "station.err"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> Station:
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=ROOT)
        deadline = time.monotonic() + START_S
        while (found := ADDRESS.search(self.err())) is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"the station did not serve its screen: {self.command}\n{self.err()}", pytrace=False)
            time.sleep(0.02)
        self.url = found.group(1)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(START_S)

    def stop(self) -> int:
        """End the shift as Ctrl-C or SIGTERM does; the station's exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(START_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"the station did not stop within {START_S:g} s of SIGTERM:\n{self.err()}", pytrace=False)

    def out(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def err(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")
