"""The HTML report: one self-contained file (inline style, no script, no external reference), per lot and per unit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from engine.context import MeasurementRecord
from engine.outcome import UnitStatus
from engine.record import Decision, LotRecord, UnitRecord
from engine.report.text import (
    STATUSES,
    cell_text,
    first_pass,
    readable_time,
)

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
.unreleased { background: #f8d0d0; border: 2px solid #a00; padding: 0.3rem 0.6rem; }
@media print {
  body { margin: 0; font-size: 10pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2, h3, h4 { break-after: avoid; }
  tr { break-inside: avoid; }
}
"""


def _e(value: Any) -> str:
    return escape(cell_text(value), quote=True)


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], css: str = "") -> str:
    """An HTML table; the rows' cells are already HTML (``<td>`` elements)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(f"<tr>{''.join(cells)}</tr>" for cells in rows)
    klass = f' class="{css}"' if css else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(value: Any, css: str = "") -> str:
    klass = f' class="{escape(css, quote=True)}"' if css else ""
    return f"<td{klass}>{_e(value)}</td>"


def render(
    units: Sequence[UnitRecord],
    lots: Sequence[LotRecord],
    generated: float,
    since: float | None,
    unreleased: Sequence[Decision] = (),
) -> bytes:
    """The report; ``unreleased``: the audit log's runs of recipe content never released (each flagged)."""
    flagged = _unreleased_hashes(units, unreleased)
    since_text = f" &middot; attempts ended since {_e(readable_time(since))}" if since is not None else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>floorflow report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>floorflow report</h1>",
        f'<p class="meta">generated {_e(readable_time(generated))}{since_text}</p>',
        _html_unreleased(units, unreleased, flagged),
        _html_summary(units, lots),
        _html_lots(units, lots),
        "<h2>Units</h2>",
    ]
    by_name = {lot.lot: lot for lot in lots}
    parts.extend(_html_unit(unit, by_name.get(unit.lot or ""), flagged) for unit in units)
    if not units:
        parts.append("<p>No units.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts).encode()


def _html_summary(units: Sequence[UnitRecord], lots: Sequence[LotRecord]) -> str:
    statuses = Counter(unit.status for unit in units)
    ordered = list(STATUSES) + sorted(set(statuses) - set(STATUSES))
    attempts = sum(len(unit.attempts) for unit in units)
    held_lots = {lot.lot for lot in lots if lot.hold is not None}
    counted = [unit for unit in units if unit.lot not in held_lots]  # a held lot's units are counted apart
    passed = sum(1 for unit in counted if first_pass(unit))
    share = f" ({passed / len(counted):.1%})" if counted else ""
    rows = [[_td("units"), _td(len(units), "num")]]
    rows += [[_td(status, status), _td(statuses[status], "num")] for status in ordered]
    rows += [
        [_td("attempts"), _td(attempts, "num")],
        [_td("first-pass yield"), _td(f"{passed} / {len(counted)}{share}", "num")],
        [_td("units of held lots (not in the yield)"), _td(len(units) - len(counted), "num")],
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
        hold = _td("not held") if lot.hold is None else _td(_hold(lot), UnitStatus.HELD)
        counts = [_td(statuses[status], "num") for status in STATUSES]
        rows.append([_td(name), _td(len(members), "num"), *counts, hold, _td(failures)])
    headers = ("lot", "units", *STATUSES, "hold", "sampled failures")
    return '<h2>Lots</h2><div class="lots">' + _table(headers, rows) + "</div>"


def _hold(lot: LotRecord) -> str:
    """E.g. ``held: sampled failure rate too high (since 2024-05-01 12:00:00 UTC)``."""
    since = "" if lot.held_at is None else f" (since {readable_time(lot.held_at)})"
    return f"held: {lot.hold}{since}"


def _unreleased_hashes(units: Sequence[UnitRecord], unreleased: Sequence[Decision]) -> dict[str, str]:
    """Content hash -> the recipe as its attempts name it, for each unreleased hash the units were run with."""
    hashes = {d.subject for d in unreleased}
    return {
        a.recipe.content_hash: f"{a.recipe.recipe} v{a.recipe.version} (hash {a.recipe.content_hash[:12]})"
        for unit in units
        for a in unit.attempts
        if a.recipe.content_hash in hashes
    }


def _html_unreleased(units: Sequence[UnitRecord], unreleased: Sequence[Decision], flagged: dict[str, str]) -> str:
    """A warning naming each unreleased recipe run with, its runs (who, where, when) and its units."""
    if not flagged:
        return ""
    rows = []
    for content_hash, recipe in flagged.items():
        runs = "; ".join(f"{readable_time(d.at)}: {d.reason}" for d in unreleased if d.subject == content_hash)
        serials = ", ".join(u.serial for u in units if any(a.recipe.content_hash == content_hash for a in u.attempts))
        rows.append([_td(recipe), _td(content_hash), _td(runs), _td(serials)])
    return (
        '<section class="unreleased"><h2>Warning: runs of unreleased recipes</h2>'
        "<p>These recipes were run on a store that holds released recipes, without being released themselves.</p>"
        + _table(("recipe", "hash", "runs", "units"), rows)
        + "</section>"
    )


def _dd(value: str, cls: str) -> str:
    return f'<dd class="{cls}">{_e(value)}</dd>'


def _html_unit(unit: UnitRecord, lot: LotRecord | None, flagged: dict[str, str]) -> str:
    status = unit.status + (f": {unit.reason}" if unit.reason else "")
    unreleased = sorted({flagged[a.recipe.content_hash] for a in unit.attempts if a.recipe.content_hash in flagged})
    last = unit.attempts[-1].recipe if unit.attempts else None
    recipe = "" if last is None else f"{last.recipe} v{last.version} ({last.content_hash[:12]})"
    facts = [("lot", unit.lot), ("product", unit.product), ("lifecycle", unit.lifecycle), ("recipe", recipe)]
    parts = [
        '<section class="unit">',
        f"<h3>{_e(unit.serial)}</h3>",
        f'<dl><dt>status</dt><dd class="{_e(unit.status)}">{_e(status)}</dd>',
        "" if lot is None or lot.hold is None else f"<dt>lot hold</dt>{_dd(_hold(lot), UnitStatus.HELD)}",
        "".join(f'<dt>unreleased recipe</dt><dd class="unreleased">{_e(r)}: never released</dd>' for r in unreleased),
        "".join(f"<dt>{escape(name)}</dt><dd>{_e(value) or '&ndash;'}</dd>" for name, value in facts),
        "</dl>",
    ]
    if unit.identities:
        rows = [
            [_td(i.kind), _td(i.value), _td(readable_time(i.issued)), _td("retired" if i.retired else "in use")]
            for i in unit.identities
        ]
        parts.append("<h4>Identities</h4>" + _table(("kind", "value", "issued", "state"), rows))
    if unit.images:
        rows = [
            [_td(i.image), _td(i.sha256 or "not read back"), _td(i.stage), _td(readable_time(i.written))]
            for i in unit.images
        ]
        parts.append("<h4>Images</h4>" + _table(("image", "sha256", "stage", "written"), rows))
    if unit.decisions:
        rows = [
            [_td(readable_time(d.at)), _td(d.by), _td(d.action), _td(d.subject), _td(d.reason)] for d in unit.decisions
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
                _td(readable_time(a.started)),
                _td(readable_time(a.ended)),
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
