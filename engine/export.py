"""Exports of the records: JSON, CSV, JUnit XML or one self-contained HTML report, each written atomically.

Every format holds the same attempts: those that ended at or after ``since`` when it is given, of the
units that still have one, and the lots of those units.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import stat
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from engine.context import MeasurementRecord
from engine.outcome import Outcome, Verdict
from engine.record import Attempt, LotRecord, UnitRecord

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

STATUSES = ("shipped", "scrapped", "quarantined", "in-route")
"""A unit's statuses, in the order the reports count them."""

_NEW_FILE_MODE = 0o644
"""The mode of a new export: readable by whoever reads the reports."""

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
) -> int:
    """Write the records to ``out`` in format ``fmt`` (one of FORMATS); return the number of attempts written.

    ``since`` (seconds since the epoch) keeps only the attempts that ended at or after it; ``generated``
    is the time the report says it was made (now by default).
    """
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise ValueError(f"unknown export format '{fmt}': use one of {', '.join(FORMATS)}")
    kept_units, kept_lots = _selected(units, lots, since)
    when = time.time() if generated is None else generated
    _write_atomically(out, writer(kept_units, kept_lots, when, since))
    return sum(len(unit.attempts) for unit in kept_units)


def first_pass(unit: UnitRecord) -> bool:
    """True when every stage of the unit passed on its first attempt (a skipped stage does not count against it).

    A unit without an attempt has passed nothing, so it is not first-pass.
    """
    first: dict[str, Attempt] = {}
    for attempt in unit.attempts:
        first.setdefault(attempt.stage, attempt)
    return bool(first) and all(a.outcome in (Outcome.PASS, Outcome.SKIPPED) for a in first.values())


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


def _write_atomically(path: Path, data: bytes) -> None:
    """Write a temporary file next to ``path``, sync it and move it over ``path``; on error leave nothing."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = _NEW_FILE_MODE
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- shared text --


def _iso(epoch: float) -> str:
    """ISO 8601 in UTC, as the records write times."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds")


def _readable_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _text(value: Any) -> str:
    """A value as a cell shows it: nothing for None, true/false for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _limits(m: MeasurementRecord) -> str:
    if m.low is None and m.high is None:
        return "no limits"
    return f"limits {_text(m.low) or '-inf'}..{_text(m.high) or '+inf'}"


def _measurement_line(m: MeasurementRecord) -> str:
    """E.g. ``tx_power_dbm = 19.2 dBm (limits 14.0..18.0) FAIL``."""
    units = f" {m.units}" if m.units else ""
    return f"{m.name} = {_text(m.value)}{units} ({_limits(m)}) {m.verdict.value}"


def _failing(attempt: Attempt) -> list[MeasurementRecord]:
    return [m for m in attempt.measurements if m.verdict is Verdict.FAIL]


def _lot_of(unit: UnitRecord, attempt: Attempt) -> str | None:
    return attempt.lot if attempt.lot is not None else unit.lot


# -- json --


def _json(units: Sequence[UnitRecord], lots: Sequence[LotRecord], generated: float, since: float | None) -> bytes:
    document = {
        "generated": _iso(generated),
        "since": None if since is None else _iso(since),
        "units": [unit.as_json() for unit in units],
        "lots": [lot.as_json() for lot in lots],
    }
    return (json.dumps(document, indent=2) + "\n").encode()


# -- csv --


def _csv(units: Sequence[UnitRecord], lots: Sequence[LotRecord], generated: float, since: float | None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for unit in units:
        for attempt in unit.attempts:
            common = [
                unit.serial,
                _text(_lot_of(unit, attempt)),
                _text(unit.product),
                attempt.stage,
                attempt.step,
                attempt.attempt,
                attempt.outcome.value,
                _text(attempt.station),
                attempt.slot,
                _text(attempt.operator),
                _iso(attempt.started),
                _iso(attempt.ended),
                round(attempt.ended - attempt.started, 6),
                _text(attempt.error),
                attempt.recipe.recipe,
                attempt.recipe.version,
                attempt.recipe.content_hash,
            ]
            if not attempt.measurements:
                writer.writerow([*common, "", "", "", "", "", ""])
            for m in attempt.measurements:
                writer.writerow(
                    [*common, m.name, _text(m.value), _text(m.units), _text(m.low), _text(m.high), m.verdict.value]
                )
    return buffer.getvalue().encode()


# -- junit --


def _xml(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", _text(value))


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
        ET.SubElement(properties, "property", name=_xml(m.name), value=_xml(_measurement_line(m)))
    failing = _failing(attempt)
    detail = "\n".join(_measurement_line(m) for m in failing)
    if attempt.outcome is Outcome.FAIL:
        message = attempt.error or (f"{len(failing)} measurement(s) out of limits" if failing else "failed")
        failure = ET.SubElement(case, "failure", message=_xml(message), type="FAIL")
        failure.text = _xml(detail or message)
    elif attempt.outcome in (Outcome.ERROR, Outcome.ABORTED):
        message = attempt.error or attempt.outcome.value.lower()
        error = ET.SubElement(case, "error", message=_xml(message), type=attempt.outcome.value)
        error.text = _xml("\n".join(filter(None, (message, detail))))
    elif attempt.outcome is Outcome.SKIPPED:
        ET.SubElement(case, "skipped", message=_xml(attempt.error or "not run for this unit"))
    return case


# -- html --

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #111; background: #fff; font-size: 14px; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; border-bottom: 2px solid #333; padding-bottom: 0.2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; margin: 1.5rem 0 0.4rem; }
h4 { font-size: 0.95rem; margin: 0.8rem 0 0.3rem; }
p.meta { color: #444; margin-top: 0; }
table { border-collapse: collapse; margin: 0.3rem 0 0.8rem; }
th, td { border: 1px solid #bbb; padding: 0.2rem 0.45rem; text-align: left; vertical-align: top; }
td { overflow-wrap: anywhere; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.15rem 1rem; margin: 0.3rem 0; }
dt { font-weight: 600; }
dd { margin: 0; }
code { font-size: 0.9em; }
table.measurements { margin: 0.2rem 0; font-size: 0.92em; }
section.unit { border-top: 1px solid #999; padding-top: 0.3rem; }
.PASS { background: #d9f2d9; }
.FAIL { background: #f8d0d0; font-weight: 600; }
.ERROR { background: #ecd3f2; font-weight: 600; }
.ABORTED { background: #fbe9c4; }
.SKIPPED { background: #eeeeee; color: #555; }
.MARGINAL { background: #fbe9c4; }
.shipped { background: #d9f2d9; }
.scrapped { background: #f8d0d0; font-weight: 600; }
.quarantined, .held { background: #fbe9c4; font-weight: 600; }
@media print {
  body { margin: 0; font-size: 10pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2, h3, h4 { break-after: avoid; }
  tr { break-inside: avoid; }
}
"""


def _e(value: Any) -> str:
    return escape(_text(value), quote=True)


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], css: str = "") -> str:
    """An HTML table; the rows' cells are already HTML (``<td>`` elements)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(f"<tr>{''.join(cells)}</tr>" for cells in rows)
    klass = f' class="{css}"' if css else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(value: Any, css: str = "") -> str:
    klass = f' class="{escape(css, quote=True)}"' if css else ""
    return f"<td{klass}>{_e(value)}</td>"


def _html(units: Sequence[UnitRecord], lots: Sequence[LotRecord], generated: float, since: float | None) -> bytes:
    since_text = f" &middot; attempts ended since {_e(_readable_time(since))}" if since is not None else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>floorflow report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>floorflow report</h1>",
        f'<p class="meta">generated {_e(_readable_time(generated))}{since_text}</p>',
        _html_summary(units),
        _html_lots(units, lots),
        "<h2>Units</h2>",
    ]
    by_name = {lot.lot: lot for lot in lots}
    parts.extend(_html_unit(unit, by_name.get(unit.lot or "")) for unit in units)
    if not units:
        parts.append("<p>No units.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts).encode()


def _html_summary(units: Sequence[UnitRecord]) -> str:
    statuses = Counter(unit.status for unit in units)
    ordered = list(STATUSES) + sorted(set(statuses) - set(STATUSES))
    attempts = sum(len(unit.attempts) for unit in units)
    passed = sum(1 for unit in units if first_pass(unit))
    share = f" ({passed / len(units):.1%})" if units else ""
    rows = [[_td("units"), _td(len(units), "num")]]
    rows += [[_td(status, status), _td(statuses[status], "num")] for status in ordered]
    rows += [
        [_td("attempts"), _td(attempts, "num")],
        [_td("first-pass yield"), _td(f"{passed} / {len(units)}{share}", "num")],
    ]
    return "<h2>Summary</h2>" + _table(("", "count"), rows)


def _html_lots(units: Sequence[UnitRecord], lots: Sequence[LotRecord]) -> str:
    by_name = {lot.lot: lot for lot in lots}
    for unit in units:
        if unit.lot is not None and unit.lot not in by_name:
            by_name[unit.lot] = LotRecord(unit.lot)
    if not by_name:
        return "<h2>Lots</h2><p>No lots.</p>"
    rows = []
    for name, lot in by_name.items():
        members = [unit for unit in units if unit.lot == name]
        statuses = Counter(unit.status for unit in members)
        failures = ", ".join(f"{stage}: {count}" for stage, count in sorted(lot.failures.items()))
        hold = _td("not held") if lot.hold is None else _td(_hold(lot), "held")
        counts = [_td(statuses[status], "num") for status in STATUSES]
        rows.append([_td(name), _td(len(members), "num"), *counts, hold, _td(failures)])
    headers = ("lot", "units", *STATUSES, "hold", "sampled failures")
    return '<h2>Lots</h2><div class="lots">' + _table(headers, rows) + "</div>"


def _hold(lot: LotRecord) -> str:
    """E.g. ``held: sampled failure rate too high (since 2024-05-01 12:00:00 UTC)``."""
    since = "" if lot.held_at is None else f" (since {_readable_time(lot.held_at)})"
    return f"held: {lot.hold}{since}"


def _html_unit(unit: UnitRecord, lot: LotRecord | None) -> str:
    status = unit.status + (f": {unit.reason}" if unit.reason else "")
    last = unit.attempts[-1].recipe if unit.attempts else None
    recipe = "" if last is None else f"{last.recipe} v{last.version} ({last.content_hash[:12]})"
    facts = [("lot", unit.lot), ("product", unit.product), ("lifecycle", unit.lifecycle), ("recipe", recipe)]
    parts = [
        '<section class="unit">',
        f"<h3>{_e(unit.serial)}</h3>",
        f'<dl><dt>status</dt><dd class="{_e(unit.status)}">{_e(status)}</dd>',
        "" if lot is None or lot.hold is None else f'<dt>lot hold</dt><dd class="held">{_e(_hold(lot))}</dd>',
        "".join(f"<dt>{escape(name)}</dt><dd>{_e(value) or '&ndash;'}</dd>" for name, value in facts),
        "</dl>",
    ]
    if unit.identities:
        rows = [
            [_td(i.kind), _td(i.value), _td(_readable_time(i.issued)), _td("retired" if i.retired else "in use")]
            for i in unit.identities
        ]
        parts.append("<h4>Identities</h4>" + _table(("kind", "value", "issued", "state"), rows))
    if unit.images:
        rows = [
            [_td(i.image), _td(i.sha256 or "not read back"), _td(i.stage), _td(_readable_time(i.written))]
            for i in unit.images
        ]
        parts.append("<h4>Images</h4>" + _table(("image", "sha256", "stage", "written"), rows))
    if unit.decisions:
        rows = [
            [_td(_readable_time(d.at)), _td(d.by), _td(d.action), _td(d.subject), _td(d.reason)] for d in unit.decisions
        ]
        parts.append("<h4>Decisions</h4>" + _table(("at", "by", "action", "subject", "reason"), rows))
    parts.append("<h4>Attempts</h4>")
    parts.append(_html_attempts(unit) if unit.attempts else "<p>No attempts.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def _html_attempts(unit: UnitRecord) -> str:
    headers = (
        "stage",
        "step",
        "attempt",
        "outcome",
        "station",
        "slot",
        "operator",
        "started",
        "ended",
        "duration",
        "error",
        "measurements",
    )
    rows = []
    for a in unit.attempts:
        rows.append(
            [
                _td(a.stage),
                _td(a.step),
                _td(a.attempt, "num"),
                _td(a.outcome.value, a.outcome.value),
                _td(a.station),
                _td(a.slot, "num"),
                _td(a.operator),
                _td(_readable_time(a.started)),
                _td(_readable_time(a.ended)),
                _td(f"{a.ended - a.started:.3f} s", "num"),
                _td(a.error),
                f"<td>{_html_measurements(a.measurements)}</td>",
            ]
        )
    return _table(headers, rows)


def _html_measurements(measurements: Sequence[MeasurementRecord]) -> str:
    if not measurements:
        return ""
    rows = [
        [
            _td(m.name),
            _td(m.value, "num"),
            _td(m.units),
            _td(m.low, "num"),
            _td(m.high, "num"),
            _td(m.verdict.value, m.verdict.value),
        ]
        for m in measurements
    ]
    return _table(("name", "value", "units", "min", "max", "verdict"), rows, "measurements")


_WRITERS: dict[str, Writer] = {"json": _json, "csv": _csv, "junit": _junit, "html": _html}
