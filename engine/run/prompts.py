"""An operator's questions told to the line: a prompt waiting at a socket is a line event (prompt waiting).

``announced`` wraps the operator bound to a unit when a person answers it (the terminal, the operator
screen: operators that say ``waits_for_a_person``) and the record tells the line (a store told the
line has a ``line_source``): each question, a manual check or a failure to confirm, is written to the
outbox before it is asked, so an andon board shows the socket waiting for its operator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.context import Answer, FailureChoice, Operator
from engine.messages import Message, Source, prompt_waiting

__all__ = ["announced"]

Tell = Callable[[Message], None]


def announced(operator: Operator, history: Any, serial: str, socket: int) -> Operator:
    """``operator``, telling the line of each question it asks about ``serial`` at ``socket`` when it asks a
    person and ``history`` tells the line; else ``operator`` itself."""
    source: Source | None = getattr(history, "line_source", None)
    if source is None or not getattr(operator, "waits_for_a_person", False):
        return operator
    return _Announced(operator, source, history.tell, serial, socket)


class _Announced:
    def __init__(self, operator: Operator, source: Source, tell: Tell, serial: str, socket: int) -> None:
        self._operator = operator
        self._source = source
        self._tell = tell
        self._serial = serial
        self._socket = socket

    @property
    def name(self) -> str:
        return self._operator.name

    @name.setter
    def name(self, name: str) -> None:
        self._operator.name = name

    def ask(self, stage: str, check: str, prompt: str, picture: Path | None = None) -> Answer:
        self._waiting(stage, check, prompt)
        if picture is None:
            return self._operator.ask(stage, check, prompt)
        return self._operator.ask(stage, check, prompt, picture)

    def __getattr__(self, attribute: str) -> Any:
        found = getattr(self._operator, attribute)  # AttributeError as the operator's own
        if attribute != "confirm_failure":
            return found

        def confirm_failure(stage: str, failed: str) -> FailureChoice:
            self._waiting(stage, f"{stage} failed: retry or fail", failed)
            return FailureChoice(found(stage, failed))

        return confirm_failure

    def _waiting(self, stage: str, question: str, text: str) -> None:
        self._tell(prompt_waiting(self._source, self._serial, self._socket, stage, question, text, time.time()))
