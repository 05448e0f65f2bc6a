"""The operator at the screen: manual checks and failures to confirm are asked on the socket's tile.

``PageOperator.for_unit`` binds it to a unit in a socket, as every station operator is bound; its
``ask`` opens the question on that socket's tile and waits for the answer the page posts
(``answer``), however long the person takes, until the station stops. One socket asking never
holds up another: each waits on its own question.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from engine.context import Answer, FailureChoice
from engine.outcome import StationError
from engine.web.board import Board, Question

__all__ = ["PageOperator"]

_WAKE_S = 0.1
"""How often a question still open looks whether the station is stopping."""


@dataclass
class _Open:
    question: Question
    socket: int
    done: threading.Event = field(default_factory=threading.Event)
    answer: Answer | FailureChoice | None = None


class PageOperator:
    """Asks the person at the operator screen, on the tile of the socket that asks."""

    waits_for_a_person = True
    """Its questions wait for someone: the line is told of each (``engine.run.prompts``)."""

    def __init__(
        self,
        board: Board,
        name: str,
        *,
        serial: str | None = None,
        slot: int | None = None,
        cancelled: threading.Event | None = None,
        questions: dict[int, _Open] | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        self.board = board
        self._default = name
        self.serial = serial
        self.slot = slot
        self.cancelled = cancelled
        self._questions: dict[int, _Open] = questions if questions is not None else {}
        self._lock = lock if lock is not None else threading.Lock()

    @property
    def name(self) -> str:
        """Who is signed in at the screen (else the name the station started with)."""
        return self.board.operator or self._default

    @name.setter
    def name(self, name: str) -> None:
        self._default = name

    def for_unit(
        self, serial: str, slot: int | None = None, *, cancelled: threading.Event | None = None
    ) -> PageOperator:
        return PageOperator(
            self.board,
            self._default,
            serial=serial,
            slot=slot,
            cancelled=cancelled,
            questions=self._questions,
            lock=self._lock,
        )

    def ask(self, stage: str, check: str, prompt: str, picture: Path | None = None) -> Answer:
        text = prompt or f"Is '{check}' right?"
        answer = self._wait("check", stage, check, text, str(picture) if picture is not None else None)
        assert isinstance(answer, Answer)
        return answer

    def confirm_failure(self, stage: str, failed: str) -> FailureChoice:
        answer = self._wait("confirm", stage, f"{stage} failed", failed, None)
        assert isinstance(answer, FailureChoice)
        return answer

    def answer(self, socket: int, question: int, given: Answer | FailureChoice) -> None:
        """The page's answer to an open question (ValueError: no such question open at that socket, or the
        wrong kind of answer for it)."""
        with self._lock:
            found = self._questions.get(question)
            if found is None or found.socket != socket:
                raise ValueError(f"socket {socket} has no open question {question}: it was answered or withdrawn")
            wanted = Answer if found.question.kind == "check" else FailureChoice
            if not isinstance(given, wanted):
                takes = "an answer" if wanted is Answer else "retry or fail"
                raise ValueError(f"question {question} is a {found.question.kind}: it takes {takes}")
            del self._questions[question]
        found.answer = given
        found.done.set()

    def _wait(self, kind: str, stage: str, title: str, text: str, picture: str | None) -> Answer | FailureChoice:
        socket = self.slot if self.slot is not None else 1
        question = self.board.ask(socket, kind, stage, title, text, picture)
        asked = _Open(question, socket)
        with self._lock:
            self._questions[question.id] = asked
        try:
            while not asked.done.wait(_WAKE_S):
                if self.cancelled is not None and self.cancelled.is_set():
                    raise StationError(
                        f"socket {socket} unit {self.serial}: the station was stopped while '{title}' of stage "
                        f"'{stage}' was asked on the screen: no answer taken"
                    )
        finally:
            with self._lock:
                self._questions.pop(question.id, None)
            self.board.answered(socket, question)
        assert asked.answer is not None
        return asked.answer
