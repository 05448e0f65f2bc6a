"""Units as JSON for machines: a unit's whole record and a unit's summary.

``units show --format json`` prints a unit's record, ``units list --format json`` the summaries and
``floorflow export --format json`` the records of many; ``schemas/export.schema.json`` describes each
layout (``$defs/unit``, ``$defs/unitSummary``). Every key is always there (null or an empty list when
nothing is recorded), and times are RFC 3339 in UTC, as the records write them.
"""

from __future__ import annotations

from typing import Any

from engine.record import UnitRecord
from engine.report import strictjson
from engine.report.text import iso


def _standing(record: UnitRecord, lot_hold: str | None) -> dict[str, Any]:
    """What a unit is and where it stands, the first keys of both its record and its summary."""
    return {
        "serial": record.serial,
        "lot": record.lot,
        "product": record.product,
        "status": str(record.status),
        "reason": record.reason,
        "lifecycle": record.lifecycle,
        "lot_hold": lot_hold,
    }


def unit_document(record: UnitRecord, *, lot_hold: str | None = None) -> dict[str, Any]:
    """Everything recorded of one unit; ``lot_hold`` is why its lot is on hold, when it is."""
    last = record.attempts[-1].recipe if record.attempts else None
    return {
        **_standing(record, lot_hold),
        "recipe": None if last is None else {"id": last.recipe, "version": last.version, "hash": last.content_hash},
        "identities": [identity.as_json() for identity in record.identities],
        "images": [image.as_json() for image in record.images],
        "decisions": [decision.as_json() for decision in record.decisions],
        "attempts": [attempt.as_json() for attempt in record.attempts],
    }


def unit_summary(record: UnitRecord, *, lot_hold: str | None = None) -> dict[str, Any]:
    """What ``units list`` says of a unit: what it is, where it stands and its last attempt."""
    last = record.attempts[-1] if record.attempts else None
    return {
        **_standing(record, lot_hold),
        "attempts": len(record.attempts),
        "last_attempt": None
        if last is None
        else {
            "stage": last.stage,
            "attempt": last.attempt,
            "outcome": last.outcome.value,
            "station": last.station,
            "slot": last.slot,
            "ended": iso(last.ended),
        },
    }


def json_text(document: Any) -> str:
    """A document as the verbs print it: indented, non-ASCII kept as it is, ending with a newline."""
    return strictjson.dumps(document, indent=2, ensure_ascii=False) + "\n"
