"""A running station's operator screen: its board on the runner, its page's acts on the station."""

from __future__ import annotations

from engine.run.runner import StationRunner
from engine.run.slots import UnitSpec
from engine.run.station import Arrivals, Check
from engine.web.app import Screen, screen_app
from engine.web.board import Board
from engine.web.operator import PageOperator
from engine.web.server import ScreenServer

__all__ = ["screen_for"]


def screen_for(
    runner: StationRunner,
    arrivals: Arrivals,
    check: Check,
    lot: str | None,
    *,
    host: str,
    port: int,
    asks: bool,
) -> ScreenServer:
    """The screen of ``runner``'s station fed by ``arrivals`` (not yet started): its board watches the runner,
    a serial scanned into a socket's box joins that socket's arrivals once ``check`` takes it, and with
    ``asks`` the person at the screen answers the station's manual checks and confirms its failures."""
    flow = runner.flow
    board = Board(arrivals.sockets, f"{flow.recipe} v{flow.version}", runner.station, runner.signed_in)
    operator = PageOperator(board, runner.operator_name or "operator") if asks else None
    if operator is not None:
        runner.operator = operator
    runner.subscribers.append(board)  # before any socket runs: the screen sees every unit

    def sign_in(name: str) -> None:
        runner.sign_in(name)
        board.sign_in(name)

    def scan(socket: int, serial: str) -> None:
        problem = check(serial)
        if problem is not None:
            raise ValueError(f"serial {serial}: {problem}")
        arrivals.put(UnitSpec(serial, lot), socket)
        board.queued(socket, serial)

    return ScreenServer(screen_app(Screen(board, sign_in, scan, operator)), host, port)
