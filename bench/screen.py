"""``event_to_screen_ms``: a step ending on a station to its operator screen showing it, in a real browser.

``floorflow station --ui`` runs 16 sockets busy under ``--sim`` at a hardware pace; Debian's chromium,
driven by Playwright, shows its screen. The page stamps each tile change it draws with how late it is:
from when what it shows happened on the station (a step's end, as the runner stamps it) to the frame
that shows it (``window.floorflow.lags``, taken in ``requestAnimationFrame``). Changes the browser was
too slow to take one by one are drawn once, stamped with the earliest among them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

CHROMIUM = os.environ.get("FLOORFLOW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADDRESS = re.compile(r"operator screen is at (http://\S+)")
WARM_S = 3.0
"""Time the sockets take to all be busy, not measured."""


def unavailable() -> str | None:
    """Why the browser cannot be driven here (None: it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def screen_round(command: list[str], sockets: int, seconds: float, tmp: Path, label: str) -> list[float]:
    """One station, watched for ``seconds`` after its sockets are busy: the lags (ms) of the changes drawn."""
    from playwright.sync_api import sync_playwright

    err = tmp / f"{label}.err"
    with err.open("wb") as stderr:
        station = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            address = _address(err, station)
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                page.goto(address)
                page.wait_for_function(f"document.querySelectorAll('article.tile').length === {sockets}")
                page.wait_for_function(
                    f"document.querySelectorAll('article.tile[data-state=running]').length >= {sockets // 2}",
                    timeout=WARM_S * 10_000,
                )
                time.sleep(WARM_S)
                page.evaluate("window.floorflow.lags.length = 0")
                time.sleep(seconds)
                lags: list[float] = page.evaluate("Array.from(window.floorflow.lags)")
                browser.close()
        finally:
            station.send_signal(signal.SIGTERM)
            station.wait(60)
    return lags


def _address(err: Path, station: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = ADDRESS.search(err.read_text(errors="replace"))
        if found:
            return found.group(1)
        if station.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"the station never served its screen: {err.read_text(errors='replace')[-1000:]}")
