"""The operator screen without a browser: the board kept from events, the page's operator, the HTTP app."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.context import Answer, FailureChoice, MeasurementRecord
from engine.events import StepEnded, StepStarted, Stopping, UnitEnded, UnitStarted
from engine.outcome import Outcome, StationError, UnitStatus, Verdict
from engine.web.app import Screen, screen_app
from engine.web.board import Board, TileState
from engine.web.board import Verdict as Shown
from engine.web.operator import PageOperator
from engine.web.server import ScreenServer


def _ended(serial: str, stage: str, outcome: Outcome, *measured: MeasurementRecord, slot: int = 1) -> StepEnded:
    return StepEnded(serial, slot, stage, stage, 1, outcome, time.time(), 0.5, measured, None)


def _unit(board: Board, serial: str, *events: Any, status: UnitStatus, reason: str | None = None) -> None:
    board(UnitStarted(serial, 1))
    for event in events:
        board(event)
    board(UnitEnded(serial, 1, status, reason))


TX = MeasurementRecord("tx_power_dbm", 30.0, Verdict.FAIL, "dBm", 20.0, 24.0)


def test_a_unit_that_ships_shows_pass_and_is_counted() -> None:
    board = Board(2, "phone v1", "final")
    board(UnitStarted("SN1", 1, operator="Ana"))
    board(StepStarted("SN1", 1, "boot", "boot.wait", 1, None, time.time()))
    tile = board.tiles[1]
    assert (tile.state, tile.stage, tile.operator) == (TileState.RUNNING, "boot", "Ana")
    board(_ended("SN1", "boot", Outcome.PASS))
    board(UnitEnded("SN1", 1, UnitStatus.SHIPPED))
    assert (tile.state, tile.verdict, tile.failed) == (TileState.DONE, Shown.PASS, None)
    assert "ships" in tile.next
    assert board.counts["PASS"] == 1 and board.finished[0]["serial"] == "SN1"
    assert board.tiles[2].state is TileState.IDLE


def test_a_scrapped_unit_shows_fail_with_the_measurement_and_its_limits() -> None:
    board = Board(1, "phone v1", None)
    _unit(board, "SN2", _ended("SN2", "rf_tx", Outcome.FAIL, TX), status=UnitStatus.SCRAPPED, reason="rf_tx failed")
    tile = board.tiles[1]
    assert tile.verdict is Shown.FAIL
    assert tile.failed == "rf_tx: tx_power_dbm = 30 dBm (limits 20 to 24 dBm)"
    assert "scrap" in tile.next


def test_a_unit_sent_to_rework_is_a_fail_and_one_passed_on_a_retry_is_a_pass() -> None:
    board = Board(1, "phone v1", None)
    failed = _ended("SN3", "rf_tx", Outcome.FAIL, TX)
    _unit(board, "SN3", failed, status=UnitStatus.IN_ROUTE, reason="next: 'rework' at station rework")
    assert board.tiles[1].verdict is Shown.FAIL and "rework" in board.tiles[1].next
    _unit(
        board, "SN4", failed._replace(serial="SN4"), _ended("SN4", "rf_tx", Outcome.PASS), status=UnitStatus.IN_ROUTE
    )
    assert board.tiles[1].verdict is Shown.PASS and board.tiles[1].failed is None


@pytest.mark.parametrize(
    ("status", "shown"),
    [(UnitStatus.REFUSED, Shown.REFUSED), (UnitStatus.ERROR, Shown.ERROR), (UnitStatus.ABORTED, Shown.ABORTED)],
)
def test_a_unit_that_did_not_run_through_says_why(status: UnitStatus, shown: Shown) -> None:
    board = Board(1, "phone v1", None)
    _unit(board, "SN5", status=status, reason="the unit already shipped")
    assert board.tiles[1].verdict is shown and board.tiles[1].reason == "the unit already shipped"


def test_watchers_start_from_the_snapshot_and_get_each_change() -> None:
    board = Board(2, "phone v1", "final")
    seen: list[dict[str, Any]] = []
    start = board.watch(seen.append)
    assert [c["kind"] for c in start] == ["station", "tile", "tile"]
    board.sign_in("Ana")
    board.queued(2, "SN9")
    board(Stopping(1, 5.0))
    assert seen[0]["operator"] == "Ana"
    assert seen[1]["socket"] == 2 and seen[1]["state"] == "queued"
    assert seen[2]["stopping"] is True
    json.dumps(seen)  # each change is JSON as it is
    board.unwatch(seen.append)
    board.sign_in("Bo")
    assert len(seen) == 3


def test_the_page_operator_waits_for_the_answer_of_its_own_socket(tmp_path: Path) -> None:
    board = Board(2, "phone v1", None, operator="Ana")
    operator = PageOperator(board, "login").for_unit("SN1", 2, cancelled=threading.Event())
    assert operator.name == "Ana"
    got: list[Answer] = []
    picture = tmp_path / "antenna.png"
    asking = threading.Thread(target=lambda: got.append(operator.ask("visual", "antenna", "Seated?", picture)))
    asking.start()
    question = _open_question(board, 2)
    assert board.tiles[2].state is TileState.ASKING and question.picture is not None
    assert board.pictures[question.picture] == str(picture)
    assert board.ask(1, "check", "visual", "antenna", "", str(picture)).picture == question.picture  # one address
    with pytest.raises(ValueError, match="no open question"):
        operator.answer(1, question.id, Answer(True))
    with pytest.raises(ValueError, match="is a check: it takes an answer"):
        operator.answer(2, question.id, FailureChoice.RETRY)
    operator.answer(2, question.id, Answer(False, "bent"))
    asking.join(5)
    assert got == [Answer(False, "bent")]
    assert board.tiles[2].question is None and board.tiles[2].state is TileState.RUNNING


def test_a_confirm_is_asked_and_a_stop_ends_an_open_question() -> None:
    board = Board(1, "phone v1", None)
    cancelled = threading.Event()
    operator = PageOperator(board, "login").for_unit("SN1", 1, cancelled=cancelled)
    chosen: list[FailureChoice] = []
    asking = threading.Thread(target=lambda: chosen.append(operator.confirm_failure("rf_tx", "tx_power_dbm = 30")))
    asking.start()
    question = _open_question(board, 1)
    assert question.kind == "confirm" and question.text == "tx_power_dbm = 30"
    operator.answer(1, question.id, FailureChoice.RETRY)
    asking.join(5)
    assert chosen == [FailureChoice.RETRY]
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            operator.ask("visual", "antenna", "")
        except StationError as exc:
            errors.append(exc)

    asking = threading.Thread(target=ask)
    asking.start()
    _open_question(board, 1)
    cancelled.set()
    asking.join(5)
    assert errors and "stopped" in str(errors[0])


def _open_question(board: Board, socket: int) -> Any:
    deadline = time.monotonic() + 5
    while board.tiles[socket].question is None:
        assert time.monotonic() < deadline, "no question opened"
        time.sleep(0.01)
    return board.tiles[socket].question


# -- the HTTP app on a real server ---------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[ScreenServer, Board, list[tuple[int, str]]]]:
    board = Board(2, "phone v1", "final")
    scanned: list[tuple[int, str]] = []

    def scan(socket: int, serial: str) -> None:
        if socket > 2:
            raise ValueError(f"there is no socket {socket}")
        scanned.append((socket, serial))

    operator = PageOperator(board, "login")
    server = ScreenServer(screen_app(Screen(board, board.sign_in, scan, operator)), "127.0.0.1", 0)
    server.start()
    yield server, board, scanned
    server.stop()


def _post(server: ScreenServer, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("POST", path, json.dumps(body) if not isinstance(body, bytes) else body)
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def test_a_scan_needs_a_sign_in_and_a_socket_and_bad_posts_say_what_is_wrong(served: Any) -> None:
    server, board, scanned = served
    assert _post(server, "/scan", {"socket": 1, "serial": "SN1"}) == (
        400,
        {"error": "sign in first: scan or type your name or badge at the top of the screen"},
    )
    assert _post(server, "/signin", {"name": "Ana"}) == (200, {"ok": True})
    assert board.operator == "Ana"
    assert _post(server, "/scan", {"socket": "2", "serial": " SN1 "}) == (200, {"ok": True})
    assert scanned == [(2, "SN1")]
    assert _post(server, "/scan", {"socket": 3, "serial": "SN2"}) == (400, {"error": "there is no socket 3"})
    assert _post(server, "/scan", {"socket": 1})[1] == {"error": "'serial' is missing"}
    assert _post(server, "/scan", b"{not json")[1] == {"error": "'socket' is not a number"}
    assert _post(server, "/answer", {"socket": 1, "question": 7, "passed": True})[0] == 400
    assert _post(server, "/answer", {"socket": 1, "question": 7, "choice": "maybe"})[1] == {
        "error": "'choice' is 'maybe': it is 'retry' or 'fail'"
    }


def test_the_event_stream_starts_with_the_board_and_pushes_changes(served: Any) -> None:
    server, board, _ = served
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/events")
    response = connection.getresponse()
    assert response.getheader("content-type", "").startswith("text/event-stream")
    first = [_next_event(response) for _ in range(3)]
    assert [kind for kind, _ in first] == ["station", "tile", "tile"]
    board(UnitStarted("SN7", 2))
    kind, data = _next_event(response)
    assert kind == "tile" and data["serial"] == "SN7" and data["state"] == "running"
    connection.close()


def _next_event(response: http.client.HTTPResponse) -> tuple[str, dict[str, Any]]:
    kind, data = "", ""
    while True:
        line = response.readline().decode().rstrip("\r\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data += line[6:]
        elif not line and kind:
            return kind, json.loads(data)


def test_the_page_and_its_assets_are_served_from_the_package(served: Any) -> None:
    server, _, _ = served
    for path, kind in [("/", "text/html"), ("/static/station.js", "javascript"), ("/static/station.css", "text/css")]:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read().decode()
        assert response.status == 200 and kind in response.getheader("content-type", ""), path
        assert "http://" not in body and "https://" not in body, f"{path} loads something from elsewhere"


def test_changes_that_pile_up_are_coalesced_to_each_tiles_latest_carrying_the_earliest_time() -> None:
    from engine.web.app import _coalesced

    changes = [
        {"kind": "tile", "socket": 1, "state": "running", "at": 10.0},
        {"kind": "tile", "socket": 2, "state": "running", "at": 11.0},
        {"kind": "station", "operator": "Ana"},
        {"kind": "tile", "socket": 1, "state": "done", "at": 12.0},
    ]
    shown = _coalesced(changes)
    assert [(c["kind"], c.get("socket"), c.get("state"), c.get("at")) for c in shown] == [
        ("tile", 1, "done", 10.0),
        ("tile", 2, "running", 11.0),
        ("station", None, None, None),
    ]
    assert changes[3]["at"] == 12.0  # what other streams were handed is left as it was


def test_a_port_in_use_is_said_in_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    server = ScreenServer(screen_app(Screen(Board(1, "x", None), print, print)), "127.0.0.1", port)
    with pytest.raises(OSError, match=rf"cannot serve the operator screen on 127.0.0.1:{port} \(in use"):
        server.start()
    taken.close()
    captured = capfd.readouterr()
    assert "Errno" not in captured.err + captured.out  # the server's own lines are not the station's
