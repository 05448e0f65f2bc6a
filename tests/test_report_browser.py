"""The line report (`floorflow report`) in a real browser (Debian's chromium, driven by Playwright): the page of a
store of real units, opened from its file as a quality engineer opens it, on a desktop screen and on a phone.

The tests write the screenshots docs/reports.md shows (docs/images/report-*.png).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from reportkit import SPHERE, line_store
from screenkit import IMAGES, PATIENCE_MS, VIEWPORT, launched_chromium

with contextlib.suppress(ImportError):  # the [dev] extra installs it; without it the browser fixture says so
    from playwright.sync_api import Browser, Page

PHONE = {"width": 390, "height": 844}
"""A phone held upright, in CSS pixels."""
CHARTS = ("yield", "pareto-stage", "pareto-check", "retests", "throughput", "histogram", "run")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launched_chromium()


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of sixteen Sphere modules run on the simulated line, with the recipe's marginal bands."""
    directory = tmp_path_factory.mktemp("report")
    store = line_store(directory)
    out = directory / "report.html"
    command = [sys.executable, "-m", "engine.cli", "report", str(out), "--recipe", str(SPHERE), "--store", store]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return out


def opened(browser: Browser, report_file: Path, viewport: dict[str, int]) -> tuple[Page, list[str]]:
    """The report opened in a new page of this size, and every address the page asked for."""
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(PATIENCE_MS)
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(report_file.as_uri())
    return page, asked


def chart_sizes(page: Page) -> dict[str, list[tuple[float, float]]]:
    """Each kind of chart on the page: the width and height its SVG is drawn at, one per chart."""
    sizes: dict[str, list[tuple[float, float]]] = {}
    for figure in page.locator("figure.chart").all():
        name = figure.get_attribute("data-chart") or ""
        box = figure.locator("svg").bounding_box()
        assert box is not None, f"chart {name} is not drawn"
        sizes.setdefault(name, []).append((box["width"], box["height"]))
    return sizes


def shoot(page: Page, name: str, height: int) -> None:
    """docs/images/report-NAME.png: the top of the page, ``height`` CSS pixels of it."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else VIEWPORT["width"]
    page.screenshot(path=str(IMAGES / f"report-{name}.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": width, "height": height})  # fmt: skip


def test_every_chart_is_drawn_on_a_desktop_screen_and_nothing_is_fetched(browser: Browser, report_file: Path) -> None:
    """On a 1280x800 screen each kind of chart is there with a visible size (a measurement's two charts side by
    side), and the page asks for nothing but its own file."""
    page, asked = opened(browser, report_file, VIEWPORT)
    sizes = chart_sizes(page)
    assert set(sizes) == set(CHARTS)
    for name, boxes in sizes.items():
        for width, height in boxes:
            assert width > 300 and height > 150, (name, width, height)
    histogram, run = sizes["histogram"][0], sizes["run"][0]
    assert histogram[0] + run[0] < VIEWPORT["width"]  # side by side
    assert page.locator("figure[data-chart='yield'] svg text", has_text="%").count() >= 2
    assert asked == [report_file.as_uri()]
    shoot(page, "desktop", 2300)
    scrapped_on = page.locator("article[data-measurement='rf_cal_5g.tx_power_dbm']")  # SPH07: 17.6, limit 17
    scrapped_on.screenshot(path=str(IMAGES / "report-measurement.png"))
    page.context.close()


def test_the_page_fits_a_phone_and_its_charts_shrink_to_its_width(browser: Browser, report_file: Path) -> None:
    """On a phone (390 px wide) the page does not scroll sideways, every chart is as wide as the screen at most
    and still readable (over 250 px wide), and a measurement's histogram and run chart stack."""
    page, _ = opened(browser, report_file, PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    sizes = chart_sizes(page)
    assert set(sizes) == set(CHARTS)
    for name, boxes in sizes.items():
        for width, height in boxes:
            assert 250 < width <= PHONE["width"] and height > 80, (name, width, height)
    histogram = page.locator("figure[data-chart='histogram']").first.bounding_box()
    run = page.locator("figure[data-chart='run']").first.bounding_box()
    assert histogram is not None and run is not None and run["y"] >= histogram["y"] + histogram["height"]
    shoot(page, "phone", 1900)
    page.context.close()


def test_printed_the_charts_stay_on_the_paper(browser: Browser, report_file: Path) -> None:
    """Printed (print media, A4's width), each chart still has its size and none is wider than the paper."""
    page, _ = opened(browser, report_file, {"width": 794, "height": 1123})
    page.emulate_media(media="print")
    for name, boxes in chart_sizes(page).items():
        for width, height in boxes:
            assert 0 < width <= 794 and height > 0, (name, width, height)
    assert len(page.pdf(format="A4")) > 10_000
    page.context.close()
