"""Line events: the messages a station tells the line (an MES, a dashboard, an andon board) of what happens.

Each message is JSON naming its schema (``SCHEMA``, with ``schemas/line-event.schema.json``) and is
built here, once, when the record it describes is written: the store keeps it in its outbox in the
same transaction, and a sink (MQTT, ``engine.linebus``) publishes it later, as often as it must,
always the same bytes under the same ``UniqueID``, so a consumer drops a copy by its id.

Fields that mean what a field of IPC-CFX's WorkStarted, WorkCompleted or UnitsTested means carry
that field's name (``UnitIdentifier``, ``PositionNumber``, ``Result``, ``TestName``,
``MeasuredValue``, ``LowerLimit``, …); ``docs/events.md`` gives the mapping.

Topics are relative to the sink's prefix: ``LINE/STATION/SOCKET/KIND`` for what happens at a
socket, ``LINE/STATION/-/KIND`` for what happens at the station but no socket (a lot held),
``LINE/-/-/KIND`` for what happens off any station (a supervisor's release), and
``LINE/STATION/status`` for the station's retained status.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

import orjson

from engine.context import MeasurementRecord
from engine.outcome import Outcome, UnitStatus, Verdict
from engine.record import Attempt

__all__ = ["SCHEMA", "Kind", "Message", "Source", "StationState", "new_id"]

SCHEMA = "floorflow.line-event/1"
"""The payloads' schema and its version: a consumer reads ``SchemaVersion`` before anything else."""
NO_PLACE = "-"
"""The topic level of a station or socket an event has none of."""


class Kind(StrEnum):
    """What a message says; the last level of its topic, and its ``MessageName`` after ``floorflow.``."""

    UNIT_STARTED = "unit-started"
    ATTEMPT_ENDED = "attempt-ended"
    UNIT_FINISHED = "unit-finished"
    LOT_HELD = "lot-held"
    UNIT_QUARANTINED = "unit-quarantined"
    UNIT_RELEASED = "unit-released"
    PROMPT_WAITING = "prompt-waiting"
    STATION_STATUS = "status"


_LEVELS = {kind: kind.value for kind in Kind}
"""Each kind's topic level (a plain str: an enum's value is looked up at every message)."""
_NAMES = {kind: "floorflow." + "".join(word.title() for word in kind.value.split("-")) for kind in Kind}


class StationState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class Message(NamedTuple):
    """One line event as published: its id, its topic under the sink's prefix, its JSON payload."""

    unique_id: str
    topic: str
    payload: bytes
    kind: Kind
    serial: str | None = None
    """The unit it is about (None: a lot, a station): what its order is kept for."""


@dataclass(frozen=True)
class Source:
    """Who tells: the line and the station (None: a verb off any station, such as a supervisor's release)."""

    line: str
    station: str | None = None

    def topic(self, kind: Kind, socket: int | None = None) -> str:
        station = self.station or NO_PLACE
        if kind is Kind.STATION_STATUS:
            return f"{self.line}/{station}/status"
        return f"{self.line}/{station}/{socket if socket else NO_PLACE}/{_LEVELS[kind]}"

    @property
    def name(self) -> str:
        return f"{self.line}/{self.station or NO_PLACE}"

    @classmethod
    def named(cls, name: str) -> Source:
        """The source whose ``name`` this is (a line's name holds no ``/``: ``--line`` refuses one)."""
        line, _, station = name.partition("/")
        return cls(line, None if station in ("", NO_PLACE) else station)


# -- what happens to a unit ------------------------------------------------------------------------------


def unit_started(source: Source, serial: str, socket: int, lot: str | None, operator: str | None, at: float) -> Message:
    """WorkStarted: a unit claimed at a socket, its route here about to run."""
    body = {"UnitIdentifier": serial, "PositionNumber": socket, "Lot": lot, "Operator": operator}
    return _message(source, Kind.UNIT_STARTED, at, body, socket, serial)


_RESULTS = {
    Outcome.PASS: "Passed",
    Outcome.FAIL: "Failed",
    Outcome.ERROR: "Error",
    Outcome.ABORTED: "Aborted",
    Outcome.SKIPPED: "Skipped",
    Outcome.NOT_DONE: "NotDone",
}
"""An attempt's outcome as UnitsTested's TestResult names it (NotDone, floorflow's own: a step stopped before it
changed the unit, or a supervisor's decision that an interrupted one did not)."""
_VERDICTS = {Verdict.PASS: "Passed", Verdict.FAIL: "Failed"}


def attempt_ended(source: Source, attempt: Attempt, unique_id: str | None = None) -> Message:
    """UnitsTested: one attempt of a stage on a unit, with its measurements, limits and units; under
    ``unique_id`` when it has one already (the outbox keeps the id and builds the payload when it is read)."""
    ended = _iso(attempt.ended)
    body = {
        "UnitIdentifier": attempt.serial,
        "PositionNumber": attempt.slot,
        "Lot": attempt.lot,
        "Operator": attempt.operator,
        "TestName": attempt.stage,
        "Step": attempt.step,
        "Attempt": attempt.attempt,
        "Result": _RESULTS[attempt.outcome],
        "TestStartTime": _iso(attempt.started),
        "TestEndTime": ended,
        "Measurements": [_measurement(m, ended) for m in attempt.measurements],
        "Error": attempt.error,
        "Recipe": {"Id": attempt.recipe.recipe, "Version": attempt.recipe.version},
    }
    return _message(source, Kind.ATTEMPT_ENDED, ended, body, attempt.slot, attempt.serial, unique_id)


def _measurement(m: MeasurementRecord, at: datetime) -> dict[str, Any]:
    value = m.value
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        value = str(value)  # past JSON's safe range: a 128-bit chip id, as its digits
    elif not (isinstance(value, int | float | str | bool) or value is None):
        value = str(value)
    return {
        "MeasurementName": m.name,
        "MeasuredValue": value,
        "MeasurementUnits": m.units,
        "LowerLimit": m.low,
        "UpperLimit": m.high,
        "Result": _VERDICTS.get(m.verdict, "Passed"),
        "TimeRecorded": at,
    }


_FINISHED = {
    UnitStatus.SHIPPED: "Completed",
    UnitStatus.IN_ROUTE: "Completed",
    UnitStatus.SCRAPPED: "Failed",
    UnitStatus.REFUSED: "Rejected",
    UnitStatus.ABORTED: "Aborted",
    UnitStatus.ERROR: "Error",
    UnitStatus.QUARANTINED: "Failed",
    UnitStatus.HELD: "Failed",
}
"""How a unit's visit ended as WorkCompleted's Result names it (its ``Status`` says floorflow's own word)."""


def unit_finished(source: Source, serial: str, socket: int, status: str, reason: str | None, at: float) -> Message:
    """WorkCompleted: the unit leaves its socket: shipped, scrapped, in route to its next station, refused, …"""
    shown = UnitStatus(status)
    body = {
        "UnitIdentifier": serial,
        "PositionNumber": socket,
        "Result": _FINISHED.get(shown, "Completed"),
        "Status": shown.value,
        "Reason": reason,
    }
    return _message(source, Kind.UNIT_FINISHED, at, body, socket, serial)


def lot_held(source: Source, lot: str, reason: str, at: float) -> Message:
    return _message(source, Kind.LOT_HELD, at, {"Lot": lot, "Reason": reason}, None, None)


def unit_quarantined(source: Source, serial: str, reason: str, at: float, socket: int | None = None) -> Message:
    body = {"UnitIdentifier": serial, "PositionNumber": socket, "Reason": reason}
    return _message(source, Kind.UNIT_QUARANTINED, at, body, socket, serial)


def unit_released(source: Source, serial: str, decision: str, by: str, note: str | None, at: float) -> Message:
    body = {"UnitIdentifier": serial, "Decision": decision, "By": by, "Note": note}
    return _message(source, Kind.UNIT_RELEASED, at, body, None, serial)


def prompt_waiting(
    source: Source, serial: str, socket: int, stage: str, question: str, text: str, at: float
) -> Message:
    """An operator's answer is awaited at a socket: a manual check, or a failure to confirm."""
    body = {"UnitIdentifier": serial, "PositionNumber": socket, "TestName": stage, "Question": question, "Text": text}
    return _message(source, Kind.PROMPT_WAITING, at, body, socket, serial)


def station_status(source: Source, state: StationState, at: float, sockets: int | None = None) -> Message:
    """The station's retained status; the broker publishes the OFFLINE one itself when the station drops."""
    body = {"State": state.value, "Sockets": sockets}
    return _message(source, Kind.STATION_STATUS, at, body, None, None)


# -- the envelope ---------------------------------------------------------------------------------------


_RUN = os.urandom(8).hex()
"""This process's part of every id it gives: random, so no other station's run, nor a later one, gives the same."""
_NUMBERS = itertools.count(1)


def new_id() -> str:
    """A ``UniqueID`` no message of any station's run, this one's or a later one's, has been given."""
    return f"{_RUN}-{next(_NUMBERS):x}"


def _message(
    source: Source,
    kind: Kind,
    at: float | datetime,
    body: Mapping[str, Any],
    socket: int | None,
    serial: str | None,
    unique_id: str | None = None,
) -> Message:
    if unique_id is None:
        unique_id = new_id()
    payload = {
        "SchemaVersion": SCHEMA,
        "MessageName": _NAMES[kind],
        "UniqueID": unique_id,
        "TimeStamp": at if isinstance(at, datetime) else _iso(at),
        "Source": source.name,
        "MessageBody": body,
    }
    try:
        text = orjson.dumps(payload)
    except TypeError:  # a string that is not Unicode (a lone surrogate from a device's garbled answer)
        text = json.dumps(payload, default=_plain, ensure_ascii=True).encode()
    return Message(unique_id, source.topic(kind, socket), text, kind, serial)


def _plain(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _iso(at: float) -> datetime:
    """A time as the payload writes it: RFC 3339 in UTC, to the microsecond (orjson writes the datetime)."""
    return datetime.fromtimestamp(at, UTC)
