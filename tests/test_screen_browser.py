"""The operator screen of ``floorflow station --ui`` in a real browser (Debian's chromium, driven by Playwright):
an operator's shift on the test recipe's bench (tests/recipes/station-screen.yaml: bt_check, a Bluetooth power
measurement, then look, a manual check), each test with a station of its own under --sim.

The tests write the screenshots docs/station.md shows (docs/images/station-*.png) at the moments they prove.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from screenkit import (
    IMAGES,
    PATIENCE_MS,
    VIEWPORT,
    Station,
    launched_chromium,
)

from engine.outcome import Outcome, UnitStatus
from engine.store import open_store

with contextlib.suppress(ImportError):  # the [dev] extra installs it; without it the browser fixture says so
    from playwright.sync_api import Browser, Locator, Page, expect

SIM_CONFIG = """\
units:
  SLOW1: {hang: {bt_check: 2.0}}                            # silent 2 s at the start of bt_check
  LOW1: {measurements: {bt_check.tx_power_dbm: 12.5}}       # above the 10 dBm limit, every attempt
  AGAIN1: {fail: {bt_check: 2}}                             # both attempts fail, a third passes
  AGAIN2: {fail: {bt_check: 4}}                             # fails whatever is retried
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launched_chromium()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page, 1280x800, every address it asks for kept in ``page.asked``."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(PATIENCE_MS)
    opened = context.new_page()
    asked: list[str] = []
    opened.on("request", lambda request: asked.append(request.url))
    opened.asked = asked  # type: ignore[attr-defined]
    yield opened
    context.close()


def tile(page: Page, socket: int) -> Locator:
    return page.locator(f"article.tile[data-socket='{socket}']")


def open_screen(page: Page, station: Station) -> None:
    """Open the station's screen and wait for its tiles (the first pushed update has come)."""
    page.goto(station.url)
    expect(tile(page, 2)).to_have_attribute("data-state", "idle", timeout=PATIENCE_MS)


def seen(page: Page, socket: int) -> dict[str, str]:
    """What the socket's tile shows, read at one moment: its state, verdict and the text of its parts."""
    return page.evaluate(
        """(socket) => {
            const tile = document.querySelector(`article.tile[data-socket="${socket}"]`);
            const text = (part) => tile.querySelector(part).textContent;
            return {state: tile.dataset.state, verdict: tile.dataset.verdict, serial: text(".serial"),
                    stage: text(".stage"), failed: text(".failed"), reason: text(".reason"), next: text(".next")};
        }""",
        socket,
    )


def scan(page: Page, socket: int, serial: str) -> None:
    """Type a serial into the socket's scan box and press Enter, as a barcode scanner does."""
    box = tile(page, socket).locator(".scan-serial")
    box.fill(serial)
    box.press("Enter")


def ends(page: Page, socket: int, verdict: str) -> Locator:
    """The socket's tile once it shows ``verdict``."""
    found = tile(page, socket)
    expect(found).to_have_attribute("data-verdict", verdict, timeout=PATIENCE_MS)
    expect(found).to_have_attribute("data-state", "done", timeout=PATIENCE_MS)
    return found


def asks(page: Page, socket: int, title: str) -> Locator:
    """The question open on the socket's tile once it is titled ``title``."""
    question = tile(page, socket).locator(".question")
    expect(tile(page, socket)).to_have_attribute("data-state", "asking", timeout=PATIENCE_MS)
    expect(question).to_be_visible(timeout=PATIENCE_MS)
    expect(question.locator(".q-title")).to_have_text(title, timeout=PATIENCE_MS)
    return question


def shoot(page: Page, name: str) -> None:
    """docs/images/station-NAME.png: the page down to its list of finished units (no empty screen below)."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    bottom = page.evaluate("document.getElementById('finished-box').getBoundingClientRect().bottom")
    height = min(VIEWPORT["height"], int(bottom) + 8)
    page.screenshot(
        path=str(IMAGES / f"station-{name}.png"), clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height}
    )


def test_scans_are_refused_until_an_operator_signs_in_and_the_record_names_them(page: Page, tmp_path: Path) -> None:
    """Before anyone signs in the page asks for a sign-in and a scan is refused with the reason in the socket's
    box; once signed in the name is shown, the scan starts the unit and its attempts are recorded under it."""
    with Station(tmp_path) as station:
        open_screen(page, station)
        expect(page.locator("#notice")).to_contain_text("Sign in to start")
        scan(page, 1, "SIGN1")
        expect(tile(page, 1).locator(".scan-error")).to_contain_text("sign in first", timeout=PATIENCE_MS)
        expect(tile(page, 1)).to_have_attribute("data-state", "idle")
        shoot(page, "signin")

        page.locator("#signin-name").fill("Ana Ruiz")
        page.locator("#signin button[type=submit]").click()
        expect(page.locator("#operator")).to_have_text("signed in: Ana Ruiz", timeout=PATIENCE_MS)
        expect(page.locator("#notice")).to_be_hidden()
        scan(page, 1, "SIGN1")
        ends(page, 1, "PASS")
        assert station.stop() == 0
    with open_store(station.store) as records:
        unit = records.unit("SIGN1")
    assert unit.status == UnitStatus.SHIPPED
    assert {attempt.operator for attempt in unit.attempts} == {"Ana Ruiz"}


def test_a_scanned_unit_runs_in_its_socket_and_its_tile_says_pass(page: Page, tmp_path: Path) -> None:
    """A serial scanned into socket 2 runs there: its tile shows the serial and the stage running, then PASS in
    large and what to do with the unit; socket 1 stays idle, and the page draws each update soon after it
    happens."""
    with Station(tmp_path, "--operator", "Ana", sim_config=SIM_CONFIG) as station:
        open_screen(page, station)
        scan(page, 2, "SLOW1")
        running = page.locator("article.tile[data-socket='2'][data-state='running']")
        expect(running.locator(".stage")).to_contain_text("bt_check", timeout=PATIENCE_MS)
        shown = seen(page, 2)  # SLOW1 stays 2 s in bt_check: all of it at once, while it runs
        shoot(page, "running")
        assert shown["state"] == "running" and shown["verdict"] == "", shown
        assert shown["serial"] == "SLOW1" and shown["stage"] == "bt_check", shown
        assert shown["next"] == "Leave the unit in the socket", shown
        assert seen(page, 1)["state"] == "idle"
        expect(tile(page, 2).locator(".scan-serial")).to_have_value("")

        done = ends(page, 2, "PASS")
        expect(done.locator(".verdict")).to_have_text("PASS")
        expect(done.locator(".next")).to_have_text("Remove the unit: it ships")
        expect(done.locator(".failed")).to_be_empty()
        expect(tile(page, 1)).to_have_attribute("data-state", "idle")
        expect(page.locator("#finished li")).to_have_text(["SLOW1 PASS (socket 2)"])
        lags = page.evaluate("window.floorflow.lags")
        assert lags and max(lags) < 5000, lags
        assert station.stop() == 0


def test_a_manual_check_is_answered_on_the_page(page: Page, tmp_path: Path) -> None:
    """With --ask the manual check opens on the unit's tile (its name and the recipe's instructions) and the
    unit waits for it; Pass on the page passes the stage, recorded as the operator's answer."""
    with Station(tmp_path, "--operator", "Ana", "--ask") as station:
        open_screen(page, station)
        scan(page, 1, "LOOK1")
        question = asks(page, 1, "label_straight")
        expect(question.locator(".q-text")).to_have_text("Is the label straight and readable?")
        expect(question.locator(".pass")).to_be_visible()
        expect(question.locator(".retry")).to_be_hidden()
        expect(tile(page, 1).locator(".next")).to_have_text("Answer the question on this socket")
        shoot(page, "question")

        question.locator(".pass").click()
        expect(question).to_be_hidden(timeout=PATIENCE_MS)
        ends(page, 1, "PASS")
        assert station.stop() == 0
    with open_store(station.store) as records:
        look = [a for a in records.unit("LOOK1").attempts if a.stage == "look"]
    assert [(a.outcome, a.operator) for a in look] == [(Outcome.PASS, "Ana")]
    assert [(m.name, m.value) for m in look[0].measurements] == [("label_straight", "pass")]


def test_a_failed_measurement_shows_its_value_and_limits_beside_a_pass(page: Page, tmp_path: Path) -> None:
    """A unit whose Bluetooth power reads 12.5 dBm (limit 0 to 10) ends FAIL with the measurement, its value and
    its limits on the tile and is sent to scrap; a good unit beside it passes."""
    with Station(tmp_path, "--operator", "Ana", sim_config=SIM_CONFIG) as station:
        open_screen(page, station)
        scan(page, 1, "GOOD1")
        scan(page, 2, "LOW1")
        ends(page, 1, "PASS")
        failed = ends(page, 2, "FAIL")
        expect(failed.locator(".verdict")).to_have_text("FAIL")
        expect(failed.locator(".failed")).to_contain_text("tx_power_dbm = 12.5 dBm")
        expect(failed.locator(".failed")).to_contain_text("limits 0 to 10 dBm")
        expect(failed.locator(".next")).to_have_text("Remove the unit to the scrap bin")
        expect(page.locator("#counts")).to_contain_text("FAIL 1")
        shoot(page, "pass-fail")
        assert station.stop() == 5  # a unit was scrapped this shift
    with open_store(station.store) as records:
        assert records.unit("LOW1").status == UnitStatus.SCRAPPED


def test_a_failure_confirmed_as_retry_on_the_page_runs_the_stage_again(page: Page, tmp_path: Path) -> None:
    """When bt_check has failed after its retry the page asks to confirm the failure: Retry runs it once more.
    AGAIN1 (two failures) then passes; AGAIN2 fails again, is asked again, and Fail scraps it. Each choice is
    in the audit log under the operator's name."""
    with Station(tmp_path, "--operator", "Ana", "--ask", sim_config=SIM_CONFIG) as station:
        open_screen(page, station)
        scan(page, 1, "AGAIN1")
        confirm = asks(page, 1, "bt_check failed")
        expect(confirm.locator(".retry")).to_be_visible()
        expect(confirm.locator(".fail-confirm")).to_be_visible()
        expect(confirm.locator(".pass")).to_be_hidden()
        expect(tile(page, 1).locator(".stage")).to_contain_text("attempt 2")
        shoot(page, "confirm")
        confirm.locator(".retry").click()
        asks(page, 1, "label_straight").locator(".pass").click()
        ends(page, 1, "PASS")

        scan(page, 2, "AGAIN2")
        asks(page, 2, "bt_check failed").locator(".retry").click()
        again = tile(page, 2)
        expect(again.locator(".stage")).to_contain_text("attempt 3", timeout=PATIENCE_MS)
        asks(page, 2, "bt_check failed").locator(".fail-confirm").click()
        failed = ends(page, 2, "FAIL")
        expect(failed.locator(".next")).to_have_text("Remove the unit to the scrap bin")
        assert station.stop() == 5
    with open_store(station.store) as records:
        first, second = records.unit("AGAIN1"), records.unit("AGAIN2")
    assert first.status == UnitStatus.SHIPPED and second.status == UnitStatus.SCRAPPED
    assert [(d.by, d.action) for d in first.decisions] == [("Ana", "failure-retried")]
    assert [(d.by, d.action) for d in second.decisions] == [("Ana", "failure-retried"), ("Ana", "failure-confirmed")]
    assert [a.attempt for a in first.attempts if a.stage == "bt_check"] == [1, 2, 3]


def test_a_shipped_unit_scanned_again_is_refused_with_the_reason(page: Page, tmp_path: Path) -> None:
    """A unit scanned again after it shipped is refused at its socket before any step runs: REFUSED, the
    reason, and what to do with it."""
    with Station(tmp_path, "--operator", "Ana") as station:
        open_screen(page, station)
        scan(page, 1, "SHIP1")
        ends(page, 1, "PASS")
        scan(page, 1, "SHIP1")
        refused = ends(page, 1, "REFUSED")
        expect(refused.locator(".reason")).to_contain_text("shipped")
        expect(refused.locator(".next")).to_have_text("Remove the unit: it is refused here")
        expect(page.locator("#finished li")).to_have_text(["SHIP1 REFUSED (socket 1)", "SHIP1 PASS (socket 1)"])
        shoot(page, "refused")
        assert station.stop() == 5  # a refused unit
    with open_store(station.store) as records:
        assert len([a for a in records.unit("SHIP1").attempts if a.stage == "bt_check"]) == 1


def test_the_page_loads_nothing_from_outside_loopback(page: Page, tmp_path: Path) -> None:
    """Everything the page asks for while a unit runs to its verdict (page, script, style, event stream, posts)
    comes from the station on 127.0.0.1: the screen works on a line without internet."""
    with Station(tmp_path, "--operator", "Ana") as station:
        open_screen(page, station)
        scan(page, 1, "NET1")
        ends(page, 1, "PASS")
        asked: list[str] = page.asked  # type: ignore[attr-defined]
        assert station.stop() == 0
    assert asked, "no request was seen"
    outside = [url for url in asked if not url.startswith(station.url)]
    assert not outside, outside
    paths = {url.removeprefix(station.url.rstrip("/")) for url in asked}
    assert {"/", "/static/station.js", "/static/station.css", "/events", "/scan"} <= paths, paths


def test_stopping_the_station_aborts_a_unit_waiting_for_an_answer(page: Page, tmp_path: Path) -> None:
    """SIGTERM (as Ctrl-C) at the end of the shift while a unit waits for its manual check: the station stops
    without an answer, the tile says ABORTED and why, the page says the station is not answering, the unit is
    recorded aborted, and the exit code is 3."""
    with Station(tmp_path, "--operator", "Ana", "--ask") as station:
        open_screen(page, station)
        scan(page, 1, "LATE1")
        asks(page, 1, "label_straight")
        assert station.stop() == 3
        stopped = ends(page, 1, "ABORTED")
        expect(stopped.locator(".reason")).to_contain_text("the station was stopped while 'label_straight'")
        expect(stopped.locator(".next")).to_have_text("The station stopped: remove the unit")
        expect(page.locator("#notice")).to_contain_text("The station is not answering", timeout=PATIENCE_MS)
        shoot(page, "stopped")
    assert "LATE1 aborted" in station.out(), station.out()
