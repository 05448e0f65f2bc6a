"""The operator screen's web application (Starlette): the page, its pushed updates, and what the operator does.

- ``GET /``: the page; ``/static/...``: its script and style, shipped in the package (no CDN: the page works
  on a line with no internet);
- ``GET /events``: Server-Sent Events, the board's snapshot first, then each change as it happens
  (changes that pile up while the browser is slow are coalesced to the latest of each tile);
- ``POST /signin`` ``{"name"}``, ``POST /scan`` ``{"socket", "serial"}``, ``POST /answer``
  ``{"socket", "question", "passed", "comment"}`` or ``{"socket", "question", "choice"}``: answered
  ``{"ok": true}``, or 400 with ``{"error": "..."}`` saying what is wrong;
- ``GET /pictures/N``: a picture a manual check shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import orjson
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from engine.context import Answer, FailureChoice
from engine.web.board import Board
from engine.web.operator import PageOperator

__all__ = ["Screen", "screen_app"]

_STATIC = files("engine.web") / "static"


@dataclass
class Screen:
    """What the page acts on: the station's board, and what a sign-in, a scan and an answer do."""

    board: Board
    sign_in: Callable[[str], None]
    """Signs the operator in (ValueError: not a name)."""
    scan: Callable[[int, str], None]
    """A serial scanned into a socket (ValueError: why the station does not take it)."""
    operator: PageOperator | None = None
    """Who asks on the page; None when the station's questions are answered elsewhere."""


def screen_app(screen: Screen) -> Starlette:
    """The operator screen of a station."""

    async def page(request: Request) -> Response:
        return FileResponse(str(_STATIC / "index.html"), headers={"Cache-Control": "no-store"})

    async def events(request: Request) -> EventSourceResponse:
        return EventSourceResponse(_changes(screen.board, request), ping=15)

    async def sign_in(request: Request) -> Response:
        body = await _body(request)
        return _done(lambda: screen.sign_in(_text(body, "name")))

    async def scan(request: Request) -> Response:
        body = await _body(request)
        if screen.board.operator is None:
            return _error("sign in first: scan or type your name or badge at the top of the screen")
        return _done(lambda: screen.scan(_number(body, "socket"), _text(body, "serial")))

    async def answer(request: Request) -> Response:
        body = await _body(request)
        if screen.operator is None:
            return _error("this station's questions are not answered on the screen")
        operator = screen.operator
        return _done(lambda: operator.answer(_number(body, "socket"), _number(body, "question"), _given(body)))

    async def picture(request: Request) -> Response:
        found = screen.board.pictures.get(request.url.path)
        return FileResponse(found) if found is not None else JSONResponse({"error": "no such picture"}, 404)

    return Starlette(
        routes=[
            Route("/", page),
            Route("/events", events),
            Route("/signin", sign_in, methods=["POST"]),
            Route("/scan", scan, methods=["POST"]),
            Route("/answer", answer, methods=["POST"]),
            Route("/pictures/{n:int}", picture),
            Mount("/static", StaticFiles(directory=str(_STATIC)), name="static"),
        ]
    )


async def _changes(board: Board, request: Request) -> AsyncIterator[dict[str, str]]:
    """The board's snapshot, then its changes, each tile's latest when several wait."""
    loop = asyncio.get_running_loop()
    waiting: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def watcher(change: dict[str, Any]) -> None:
        with suppress(RuntimeError):  # the stream's loop has closed
            loop.call_soon_threadsafe(waiting.put_nowait, change)

    for change in board.watch(watcher):
        yield _event(change)
    try:
        while not await request.is_disconnected():
            for change in _coalesced([await waiting.get(), *_drain(waiting)]):
                yield _event(change)
    finally:
        board.unwatch(watcher)


def _drain(queue: asyncio.Queue[dict[str, Any]]) -> list[dict[str, Any]]:
    taken = []
    while not queue.empty():
        taken.append(queue.get_nowait())
    return taken


def _coalesced(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latest change of each tile (and of the station), carrying when the earliest it stands for happened:
    the page, showing it, shows how late it is for the change it kept waiting longest."""
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for change in changes:
        key = change["kind"], change.get("socket", 0)
        before = latest.get(key)
        if before is not None and before.get("at") is not None and change.get("at") is not None:
            change = {**change, "at": min(before["at"], change["at"])}
        latest[key] = change
    return list(latest.values())


def _event(change: dict[str, Any]) -> dict[str, str]:
    return {"event": change["kind"], "data": orjson.dumps(change).decode()}


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'{key}' is missing")
    return value.strip()


def _number(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"'{key}' is not a number")
    return value


def _given(body: dict[str, Any]) -> Answer | FailureChoice:
    if "choice" in body:
        try:
            return FailureChoice(body["choice"])
        except ValueError:
            raise ValueError(f"'choice' is {body['choice']!r}: it is 'retry' or 'fail'") from None
    passed = body.get("passed")
    if not isinstance(passed, bool):
        raise ValueError("'passed' is true or false")
    comment = body.get("comment")
    return Answer(passed, comment.strip() or None if isinstance(comment, str) else None)


def _done(act: Callable[[], None]) -> Response:
    try:
        act()
    except ValueError as exc:
        return _error(str(exc))
    return JSONResponse({"ok": True})


def _error(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=400)
