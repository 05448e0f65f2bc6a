"""Line events as a consumer reads them: every payload valid under schemas/line-event.schema.json,
each on its topic, built once with an id no other message has, and documented in docs/events.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engine import messages
from engine.context import MeasurementRecord
from engine.messages import Kind, Message, Source, StationState
from engine.outcome import Outcome, UnitStatus, Verdict
from engine.record import Attempt, RecipeRef
from engine.resources import schema_path

ROOT = Path(__file__).resolve().parent.parent
AT = 1767261600.25
"""2026-01-01T10:00:00.250000Z: every example happens then, or just after."""
STATION = Source("widget", "flash")
OFF_STATION = Source("widget")
RECIPE = RecipeRef("widget", 3, "9f2c")


def _formats() -> jsonschema.FormatChecker:
    """jsonschema's format checker, with RFC 3339 date-time checked even without its optional package."""
    checker = jsonschema.FormatChecker()
    if "date-time" not in checker.checkers:

        @checker.checks("date-time", raises=ValueError)
        def _date_time(value: object) -> bool:
            if not isinstance(value, str):
                return True
            if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
                return False
            datetime.fromisoformat(value.replace("Z", "+00:00"))  # a month 13 or a 25th hour raises
            return True

    return checker


SCHEMA = json.loads(schema_path("line-event.schema.json").read_text())
CHECK = jsonschema.Draft202012Validator(SCHEMA, format_checker=_formats())


def _strict_json(payload: bytes) -> Any:
    """The payload as a consumer's strict parser reads it: NaN and Infinity are not JSON."""

    def refuse(word: str) -> None:
        raise ValueError(f"{word} is not JSON")

    return json.loads(payload, parse_constant=refuse)


def _errors(document: Any) -> list[str]:
    return [e.message for e in CHECK.iter_errors(document)]


def _attempt(
    outcome: Outcome = Outcome.PASS, measurements: tuple[MeasurementRecord, ...] = (), **fields: Any
) -> Attempt:
    base: dict[str, Any] = {"lot": "L-0427", "station": "flash", "slot": 3, "operator": "ana"}
    base.update(fields)
    return Attempt("SN1001", "flash", "fw.flash", 1, outcome, AT - 12.5, AT, RECIPE, measurements=measurements, **base)


def _measured(value: Any, verdict: Verdict = Verdict.PASS) -> MeasurementRecord:
    return MeasurementRecord("vdd", value, verdict, "V", 3.0, 3.6)


def examples() -> dict[Kind, Message]:
    """One message of every kind, as a station (or a supervisor, for a release) tells it."""
    tested = _attempt(
        Outcome.FAIL,
        (_measured(3.31), MeasurementRecord("current", 212.0, Verdict.FAIL, "mA", None, 180.0)),
        error="current 212.0 mA above 180.0",
    )
    return {
        Kind.UNIT_STARTED: messages.unit_started(STATION, "SN1001", 3, "L-0427", "ana", AT - 13),
        Kind.ATTEMPT_ENDED: messages.attempt_ended(STATION, tested),
        Kind.UNIT_FINISHED: messages.unit_finished(STATION, "SN1001", 3, "scrapped", "current above 180.0", AT),
        Kind.LOT_HELD: messages.lot_held(STATION, "L-0427", "3 sampled units failed flash", AT),
        Kind.UNIT_QUARANTINED: messages.unit_quarantined(STATION, "SN1002", "fw.flash stopped mid-write", AT, 4),
        Kind.UNIT_RELEASED: messages.unit_released(OFF_STATION, "SN1002", "not-done", "lee", "reflashed", AT + 600),
        Kind.PROMPT_WAITING: messages.prompt_waiting(STATION, "SN1003", 2, "inspect", "led", "Is the LED green?", AT),
        Kind.STATION_STATUS: messages.station_status(STATION, StationState.ONLINE, AT - 3600, 16),
    }


def _variants() -> Iterator[tuple[str, Message]]:
    """Messages with every optional field empty, every outcome, status and verdict the builders know."""
    yield "started unsigned", messages.unit_started(STATION, "SN1", 1, None, None, AT)
    yield "attempt bare", messages.attempt_ended(STATION, _attempt(lot=None, operator=None, slot=0))
    for outcome in (o for o in Outcome if o is not Outcome.NOT_DONE):
        yield f"attempt {outcome}", messages.attempt_ended(STATION, _attempt(outcome, error="why"))
    for verdict in Verdict:
        unlimited = MeasurementRecord("name", "abc", verdict)
        yield f"measured {verdict}", messages.attempt_ended(STATION, _attempt(measurements=(unlimited,)))
    for status in UnitStatus:
        yield f"finished {status}", messages.unit_finished(STATION, "SN1", 1, status.value, None, AT)
    yield "quarantined off a socket", messages.unit_quarantined(OFF_STATION, "SN1", "why", AT)
    yield "released noteless", messages.unit_released(OFF_STATION, "SN1", "done", "lee", None, AT)
    yield "offline on the second", messages.station_status(STATION, StationState.OFFLINE, 1767261600.0)


@pytest.mark.parametrize("message", list(examples().values()) + [m for _, m in _variants()], ids=str)
def test_every_builder_gives_a_valid_payload(message: Message) -> None:
    """Each builder's payload, with its fields full or empty, is valid under the schema, dates and all."""
    assert _errors(_strict_json(message.payload)) == []


def test_a_not_done_attempt_gives_a_valid_payload() -> None:
    """A supervisor's not-done decision is an attempt row too: its AttemptEnded is valid."""
    message = messages.attempt_ended(OFF_STATION, _attempt(Outcome.NOT_DONE, slot=0, error="lee decided: not-done"))
    assert _errors(_strict_json(message.payload)) == []


def _bodies(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object of the payload the schema closes: the body, each measurement, the recipe."""
    body = document["MessageBody"]
    yield "MessageBody", body
    for n, measurement in enumerate(body.get("Measurements", [])):
        yield f"Measurements[{n}]", measurement
    if "Recipe" in body:
        yield "Recipe", body["Recipe"]


@pytest.mark.parametrize("kind", list(Kind))
def test_a_body_missing_a_field_or_with_one_more_is_invalid(kind: Kind) -> None:
    """Dropping, adding or renaming any field of a body (or a measurement, or the recipe) breaks the schema."""
    document = _strict_json(examples()[kind].payload)
    for where, part in _bodies(document):
        for field in list(part):
            value = part.pop(field)
            assert _errors(document), f"{kind}: {where} without {field} passed"
            part[field.lower()] = value
            assert _errors(document), f"{kind}: {where} with {field} renamed passed"
            del part[field.lower()]
            part[field] = value
        part["Extra"] = 1
        assert _errors(document), f"{kind}: {where} with an extra field passed"
        del part["Extra"]
    assert _errors(document) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("SchemaVersion", "floorflow.line-event/2"),
        ("MessageName", "floorflow.UnitExploded"),
        ("UniqueID", ""),
        ("TimeStamp", "yesterday"),
        ("TimeStamp", "2026-13-01T10:00:00+00:00"),
        ("Source", "widget"),
    ],
)
def test_a_wrong_envelope_is_invalid(field: str, value: str) -> None:
    """Another schema version, an unknown message, an empty id, a time not RFC 3339 or a bad source fail."""
    document = _strict_json(examples()[Kind.UNIT_STARTED].payload)
    document[field] = value
    assert _errors(document)
    del document[field]
    assert _errors(document)


def test_a_body_of_another_message_is_invalid() -> None:
    """A body is checked against its MessageName's: a UnitStarted body under UnitFinished's name fails."""
    document = _strict_json(examples()[Kind.UNIT_STARTED].payload)
    document["MessageName"] = "floorflow.UnitFinished"
    assert _errors(document)


def test_the_schema_names_every_kind_and_no_other() -> None:
    """The schema's MessageName list is the builders' names, one per Kind."""
    names = {_strict_json(m.payload)["MessageName"] for m in examples().values()}
    assert set(SCHEMA["properties"]["MessageName"]["enum"]) == names
    assert len(names) == len(Kind)


def test_topics_are_line_station_socket_kind() -> None:
    """A socket's events go to LINE/STATION/SOCKET/KIND, a station's to LINE/STATION/-/KIND, the others' as said."""
    topics = {kind: message.topic for kind, message in examples().items()}
    assert topics == {
        Kind.UNIT_STARTED: "widget/flash/3/unit-started",
        Kind.ATTEMPT_ENDED: "widget/flash/3/attempt-ended",
        Kind.UNIT_FINISHED: "widget/flash/3/unit-finished",
        Kind.LOT_HELD: "widget/flash/-/lot-held",
        Kind.UNIT_QUARANTINED: "widget/flash/4/unit-quarantined",
        Kind.UNIT_RELEASED: "widget/-/-/unit-released",
        Kind.PROMPT_WAITING: "widget/flash/2/prompt-waiting",
        Kind.STATION_STATUS: "widget/flash/status",
    }
    assert messages.unit_quarantined(STATION, "SN1", "why", AT).topic == "widget/flash/-/unit-quarantined"


@pytest.mark.parametrize("kind", list(Kind))
def test_a_message_says_its_kind_unit_id_and_source(kind: Kind) -> None:
    """The Message's kind, serial and id are its payload's: the outbox and the publisher read them unparsed."""
    message = examples()[kind]
    document = _strict_json(message.payload)
    assert message.kind is kind
    assert message.unique_id == document["UniqueID"]
    assert message.serial == document["MessageBody"].get("UnitIdentifier")
    assert document["Source"] == ("widget/-" if kind is Kind.UNIT_RELEASED else "widget/flash")
    camel = "".join(word.title() for word in kind.value.split("-"))
    assert document["MessageName"] == f"floorflow.{camel}"


def test_a_message_is_built_once_and_never_changes() -> None:
    """A Message is immutable bytes: what its inputs become later, or when it is built, changes nothing in it."""
    value = [1, 2]
    first = messages.attempt_ended(STATION, _attempt(measurements=(_measured(value),)))
    kept = bytes(first.payload)
    value.append(3)
    assert isinstance(first.payload, bytes) and first.payload == kept
    with pytest.raises(AttributeError):
        first.payload = b"{}"  # type: ignore[misc]
    again = messages.attempt_ended(STATION, _attempt(measurements=(_measured([1, 2]),)))
    assert again.unique_id != first.unique_id
    assert again.payload.replace(again.unique_id.encode(), first.unique_id.encode()) == kept


def test_unique_ids_are_unique_across_threads() -> None:
    """Sixteen threads building at once never give two messages the same UniqueID."""
    built: list[list[str]] = [[] for _ in range(16)]

    def build(into: list[str]) -> None:
        for n in range(2000):
            into.append(messages.unit_started(STATION, f"SN{n}", 1, None, None, AT).unique_id)

    threads = [threading.Thread(target=build, args=(into,)) for into in built]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [i for into in built for i in into]
    assert len(ids) == 32000 and len(set(ids)) == len(ids)


def test_unique_ids_are_unique_across_runs() -> None:
    """A station restarted (or another station) never gives an id an earlier run gave, its count starting anew."""
    code = (
        "from engine import messages as m\n"
        "s = m.Source('widget', 'flash')\n"
        "print(' '.join(m.unit_started(s, 'SN', 1, None, None, 0.0).unique_id for _ in range(500)))"
    )
    runs = [
        set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
        for _ in range(2)
    ]
    assert [len(ids) for ids in runs] == [500, 500]
    assert not runs[0] & runs[1]


def test_measurements_carry_their_limits_units_and_verdicts() -> None:
    """Each measurement says its value, units, both limits, its verdict and when, in the attempt's order."""
    body = _strict_json(examples()[Kind.ATTEMPT_ENDED].payload)["MessageBody"]
    assert body["Measurements"] == [
        {
            "MeasurementName": "vdd",
            "MeasuredValue": 3.31,
            "MeasurementUnits": "V",
            "LowerLimit": 3.0,
            "UpperLimit": 3.6,
            "Result": "Passed",
            "TimeRecorded": "2026-01-01T10:00:00.250000+00:00",
        },
        {
            "MeasurementName": "current",
            "MeasuredValue": 212.0,
            "MeasurementUnits": "mA",
            "LowerLimit": None,
            "UpperLimit": 180.0,
            "Result": "Failed",
            "TimeRecorded": "2026-01-01T10:00:00.250000+00:00",
        },
    ]
    assert (body["Result"], body["Error"], body["Recipe"]) == ("Failed", "current 212.0 mA above 180.0", {
        "Id": "widget", "Version": 3})  # fmt: skip
    assert (body["TestStartTime"], body["TestEndTime"]) == (
        "2026-01-01T09:59:47.750000+00:00",
        "2026-01-01T10:00:00.250000+00:00",
    )


class _Reading:
    """A value a step may measure that JSON has no type for."""

    def __str__(self) -> str:
        return "reading 7"


ODD_VALUES: list[tuple[object, object]] = [
    (b"\xff\x00", "b'\\xff\\x00'"),
    ((1, 2), "(1, 2)"),
    ({"a": 1}, "{'a': 1}"),
    (Decimal("1.5"), "1.5"),
    (_Reading(), "reading 7"),
    (float("nan"), None),
    (float("inf"), None),
    (True, True),
    (None, None),
    (2**63 - 1, 2**63 - 1),
]


@pytest.mark.parametrize(("value", "shown"), ODD_VALUES, ids=repr)
def test_a_value_json_has_no_type_for_still_gives_valid_json(value: object, shown: object) -> None:
    """A measured value of any kind gives a strictly valid payload: its text, or null when not finite."""
    message = messages.attempt_ended(STATION, _attempt(measurements=(_measured(value),)))
    document = _strict_json(message.payload)
    assert _errors(document) == []
    assert document["MessageBody"]["Measurements"][0]["MeasuredValue"] == shown


def test_an_int_past_64_bits_still_gives_valid_json() -> None:
    """A 128-bit value (a chip's unique id read as an int) gives a valid payload, as the record keeps it."""
    message = messages.attempt_ended(STATION, _attempt(measurements=(_measured(2**127 + 1),)))
    assert _errors(_strict_json(message.payload)) == []
    assert _strict_json(message.payload)["MessageBody"]["Measurements"][0]["MeasuredValue"] == str(2**127 + 1)


def test_a_string_that_is_not_unicode_still_gives_valid_json() -> None:
    """A device's garbled answer (a lone surrogate) in an attempt's error still gives a payload."""
    message = messages.attempt_ended(STATION, _attempt(error="bad \udc80 byte"))
    assert _errors(_strict_json(message.payload)) == []


# -- docs/events.md ---------------------------------------------------------------------------------------

DOC = (ROOT / "docs" / "events.md").read_text()


def _doc_examples() -> list[dict[str, Any]]:
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOC, re.S)]
    return [b for b in blocks if isinstance(b, dict) and "SchemaVersion" in b]


def test_the_docs_examples_are_valid() -> None:
    """Every payload docs/events.md shows is valid under the schema."""
    shown = _doc_examples()
    assert shown
    for document in shown:
        assert _errors(document) == [], document["MessageName"]


@pytest.mark.parametrize("kind", list(Kind))
def test_the_docs_show_every_kind(kind: Kind) -> None:
    """docs/events.md shows each kind's topic and a full example of its payload."""
    name = _strict_json(examples()[kind].payload)["MessageName"]
    assert name in {d["MessageName"] for d in _doc_examples()}
    assert f"/{kind.value}`" in DOC


def _builders() -> list[Callable[..., Message]]:
    return [getattr(messages, kind.name.lower()) for kind in Kind]


def test_every_kind_has_its_builder() -> None:
    """Each Kind has a builder of its name, and the examples cover them all."""
    assert all(callable(builder) for builder in _builders())
    assert set(examples()) == set(Kind)
