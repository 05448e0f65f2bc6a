"""Exports of the records: JSON, CSV, JUnit XML or one self-contained HTML report, each written atomically.

Every format holds the same attempts: those that ended at or after ``since`` when it is given, of the
units that still have one, and the lots of those units.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import math
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.files import write_atomically
from engine.outcome import Outcome
from engine.record import Attempt, Decision, LotRecord, UnitRecord
from engine.report import html as htmlreport
from engine.report import strictjson
from engine.report.text import cell_text, failing, iso, lot_of, measurement_line
from engine.report.unitjson import unit_document

FORMATS = ("json", "csv", "junit", "html")

CSV_COLUMNS = (
    "serial",
    "lot",
    "product",
    "stage",
    "step",
    "attempt",
    "outcome",
    "station",
    "slot",
    "operator",
    "started",
    "ended",
    "duration_s",
    "error",
    "recipe",
    "recipe_version",
    "recipe_hash",
    "measurement",
    "value",
    "units",
    "low",
    "high",
    "verdict",
)
"""The CSV export's columns: one row per measurement, or one per attempt without a measurement."""


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot hold (control characters a device may print)."""

Writer = Callable[[Sequence[UnitRecord], Sequence[LotRecord], float, float | None], bytes]
"""Renders the selected records, the time the report was made and ``since`` as the file's bytes."""


def export(
    fmt: str,
    units: Sequence[UnitRecord],
    lots: Sequence[LotRecord],
    out: Path,
    *,
    since: float | None = None,
    generated: float | None = None,
    unreleased: Sequence[Decision] = (),
) -> int:
    """Write the records to ``out`` in format ``fmt`` (one of FORMATS); return the number of attempts written.

    ``since`` (seconds since the epoch) keeps only the attempts that ended at or after it; ``generated``
    is the time the report says it was made (now by default); ``unreleased``, the audit log's runs of
    recipe content never released, are flagged in the HTML report.
    """
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise ValueError(f"unknown export format '{fmt}': use one of {', '.join(FORMATS)}")
    if fmt == "html":
        writer = functools.partial(htmlreport.render, unreleased=unreleased)
    kept_units, kept_lots = _selected(units, lots, since)
    when = time.time() if generated is None else generated
    write_atomically(out, writer(kept_units, kept_lots, when, since))
    return sum(len(unit.attempts) for unit in kept_units)


# -- selection and writing --


def _selected(
    units: Sequence[UnitRecord], lots: Sequence[LotRecord], since: float | None
) -> tuple[list[UnitRecord], list[LotRecord]]:
    if since is None:
        return list(units), list(lots)
    kept: list[UnitRecord] = []
    for unit in units:
        attempts = [a for a in unit.attempts if a.ended >= since]
        if attempts:
            kept.append(dataclasses.replace(unit, attempts=attempts))
    names = {unit.lot for unit in kept}
    return kept, [lot for lot in lots if lot.lot in names]


# -- json --


def _json(units: Sequence[UnitRecord], lots: Sequence[LotRecord], generated: float, since: float | None) -> bytes:
    """The layout ``schemas/export.schema.json`` describes: each unit's whole record, and the lots."""
    holds = {lot.lot: lot.hold for lot in lots if lot.hold is not None}
    document = {
        "generated": iso(generated),
        "since": None if since is None else iso(since),
        "units": [unit_document(unit, lot_hold=holds.get(unit.lot or "")) for unit in units],
        "lots": [lot.as_json() for lot in lots],
    }
    return (strictjson.dumps(document, indent=2) + "\n").encode()


# -- csv --


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet takes a cell beginning with for a formula (the OWASP CSV-injection rule)."""


def csv_cell(value: Any) -> Any:
    """A CSV cell no spreadsheet runs as a formula: a finite number stays a number (-3.5 is a value);
    text beginning with = + - @, a tab or a carriage return gets a single quote before it."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    text = cell_text(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv(units: Sequence[UnitRecord], lots: Sequence[LotRecord], generated: float, since: float | None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for unit in units:
        for attempt in unit.attempts:
            common = [
                unit.serial,
                lot_of(unit, attempt),
                unit.product,
                attempt.stage,
                attempt.step,
                attempt.attempt,
                attempt.outcome.value,
                attempt.station,
                attempt.slot,
                attempt.operator,
                iso(attempt.started),
                iso(attempt.ended),
                round(attempt.ended - attempt.started, 6),
                attempt.error,
                attempt.recipe.recipe,
                attempt.recipe.version,
                attempt.recipe.content_hash,
            ]
            rows = [[m.name, m.value, m.units, m.low, m.high, m.verdict.value] for m in attempt.measurements]
            for row in rows or [[None] * 6]:
                writer.writerow([csv_cell(cell) for cell in (*common, *row)])
    return buffer.getvalue().encode()


# -- junit --


def _xml(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", cell_text(value))


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.6f}"


def _junit_timestamp(epoch: float) -> str:
    """UTC without an offset: the form the JUnit schema accepts."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _junit(units: Sequence[UnitRecord], lots: Sequence[LotRecord], generated: float, since: float | None) -> bytes:
    root = ET.Element("testsuites", name="floorflow")
    totals: Counter[str] = Counter()
    total_time = 0.0
    for unit in units:
        suite = _junit_suite(unit, generated)
        root.append(suite)
        for key in ("tests", "failures", "errors", "skipped"):
            totals[key] += int(suite.get(key, "0"))
        total_time += float(suite.get("time", "0"))
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(totals[key]))
    root.set("time", _seconds(total_time))
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _junit_suite(unit: UnitRecord, generated: float) -> ET.Element:
    counts = Counter(a.outcome for a in unit.attempts)
    started = min((a.started for a in unit.attempts), default=generated)
    suite = ET.Element(
        "testsuite",
        name=_xml(unit.serial),
        tests=str(len(unit.attempts)),
        failures=str(counts[Outcome.FAIL]),
        errors=str(counts[Outcome.ERROR] + counts[Outcome.ABORTED]),
        skipped=str(counts[Outcome.SKIPPED]),
        time=_seconds(sum(max(a.ended - a.started, 0.0) for a in unit.attempts)),
        timestamp=_junit_timestamp(started),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("lot", unit.lot),
        ("product", unit.product),
        ("status", unit.status),
        ("reason", unit.reason),
        ("lifecycle", unit.lifecycle),
    ):
        if value is not None:
            ET.SubElement(properties, "property", name=name, value=_xml(value))
    for attempt in unit.attempts:
        suite.append(_junit_case(attempt))
    return suite


def _junit_case(attempt: Attempt) -> ET.Element:
    case = ET.Element(
        "testcase",
        classname=_xml(f"{attempt.recipe.recipe}.{attempt.stage}"),
        name=_xml(f"{attempt.stage} attempt {attempt.attempt}"),
        time=_seconds(attempt.ended - attempt.started),
    )
    properties = ET.SubElement(case, "properties")
    recipe = f"{attempt.recipe.recipe} v{attempt.recipe.version} {attempt.recipe.content_hash}"
    for name, value in (
        ("step", attempt.step),
        ("station", attempt.station),
        ("slot", attempt.slot),
        ("operator", attempt.operator),
        ("device_id", attempt.device_id),
        ("recipe", recipe),
    ):
        if value is not None:
            ET.SubElement(properties, "property", name=name, value=_xml(value))
    for m in attempt.measurements:
        ET.SubElement(properties, "property", name=_xml(m.name), value=_xml(measurement_line(m)))
    bad = failing(attempt)
    detail = "\n".join(measurement_line(m) for m in bad)
    if attempt.outcome is Outcome.FAIL:
        message = attempt.error or (f"{len(bad)} measurement(s) out of limits" if bad else "failed")
        failure = ET.SubElement(case, "failure", message=_xml(message), type="FAIL")
        failure.text = _xml(detail or message)
    elif attempt.outcome in (Outcome.ERROR, Outcome.ABORTED):
        message = attempt.error or attempt.outcome.value.lower()
        error = ET.SubElement(case, "error", message=_xml(message), type=attempt.outcome.value)
        error.text = _xml("\n".join(filter(None, (message, detail))))
    elif attempt.outcome is Outcome.SKIPPED:
        ET.SubElement(case, "skipped", message=_xml(attempt.error or "not run for this unit"))
    return case


_WRITERS: dict[str, Writer] = {"json": _json, "csv": _csv, "junit": _junit, "html": htmlreport.render}
