"""Terminal views of recorded units: one unit in full, or a table of many, each fitted to the console's width.

Every value is shown as plain text (never read as rich markup), and a colour always comes with the
word it stands for, so the views read the same without colour.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from engine.context import MeasurementRecord
from engine.outcome import Outcome, UnitStatus, Verdict
from engine.record import Attempt, UnitRecord
from engine.report.fit import Column, Layout, print_fitted

OUTCOME_STYLE = {
    Outcome.PASS: "green",
    Outcome.FAIL: "bold red",
    Outcome.ERROR: "bold magenta",
    Outcome.ABORTED: "yellow",
    Outcome.SKIPPED: "dim",
}
STATUS_STYLE: dict[str, str] = {
    UnitStatus.SHIPPED: "green",
    UnitStatus.SCRAPPED: "bold red",
    UnitStatus.QUARANTINED: "bold yellow",
    UnitStatus.HELD: "bold yellow",
}

_NO_HOLDS: Mapping[str, str] = MappingProxyType({})


def show_unit(record: UnitRecord, console: Console, *, held: str | None = None) -> None:
    """Print everything recorded of one unit: what it is, where its route stands, and every attempt.

    ``held`` is why the unit's lot is on hold, when it is. A table too wide for the console is printed
    as ``label: value`` lines instead, so no value is ever cut.
    """
    console.print(Text(f"unit {record.serial}", style="bold"), soft_wrap=True)
    console.print(_facts(record, held))
    for title, layout in (
        ("identities", _identities(record)),
        ("images", _images(record)),
        ("decisions (audit)", _decisions(record)),
    ):
        if record_rows(layout):
            print_fitted(console, title, [layout])
    if record.attempts:
        print_fitted(console, "history", _history_layouts(record), heading=1)
    else:
        console.print(Text("no attempts"))


def record_rows(layout: Layout) -> int:
    return len(layout[0].cells) if layout else 0


def _facts(record: UnitRecord, held: str | None) -> Table:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    facts.add_row("product", _plain(record.product))
    facts.add_row("lot", _plain(record.lot))
    status = _status(record.status)
    if record.reason:
        status.append(f": {record.reason}")
    facts.add_row("status", status)
    if held is not None:
        facts.add_row("hold", Text(f"lot {record.lot or '?'} is on hold: {held}", style=STATUS_STYLE[UnitStatus.HELD]))
    facts.add_row("lifecycle", _plain(record.lifecycle))
    facts.add_row("recipe", _plain(_recipe(record)))
    return facts


def _identities(record: UnitRecord) -> Layout:
    identities = record.identities
    return (
        Column("kind", [_plain(i.kind) for i in identities]),
        Column("value", [_plain(i.value) for i in identities]),
        Column("issued (UTC)", [_plain(_time(i.issued)) for i in identities]),
        Column("state", [Text("retired", style="bold red") if i.retired else Text("in use") for i in identities]),
    )


def _images(record: UnitRecord) -> Layout:
    images = record.images
    return (
        Column("image", [_plain(i.image) for i in images]),
        Column("sha256", [_plain(i.sha256 or "not read back") for i in images]),
        Column("stage", [_plain(i.stage) for i in images]),
        Column("written (UTC)", [_plain(_time(i.written)) for i in images]),
    )


def _decisions(record: UnitRecord) -> Layout:
    decisions = record.decisions
    return (
        Column("at (UTC)", [_plain(_time(d.at)) for d in decisions]),
        Column("by", [_plain(d.by) for d in decisions]),
        Column("action", [_plain(d.action) for d in decisions]),
        Column("subject", [_plain(d.subject) for d in decisions]),
        Column("reason", [_plain(d.reason) for d in decisions], free_text=True),
    )


LEFT_OUT_OF_NARROW_HISTORY = ("operator", "duration")
"""The history's columns left out when it is too wide for the console with every column."""


def _history_layouts(record: UnitRecord) -> list[Layout]:
    """The history in full, with shorter times, then for a narrow console: the attempt beside its stage
    (``rf_cal #2``; the first attempt unnumbered) and without the columns least read."""
    kept = [c for c in _history(record, _list_time) if c.header not in LEFT_OUT_OF_NARROW_HISTORY]
    numbered = [_plain(a.stage if a.attempt == 1 else f"{a.stage} #{a.attempt}") for a in record.attempts]
    narrow = [Column("stage", numbered) if c.header == "stage" else c for c in kept if c.header != "attempt"]
    return [_history(record, _time), _history(record, _short_time), narrow]


def _history(record: UnitRecord, when: Callable[[float], str]) -> Layout:
    attempts = record.attempts
    return (
        Column("time (UTC)", [_plain(when(a.started)) for a in attempts]),
        Column("stage", [_plain(a.stage) for a in attempts]),
        Column("attempt", [_plain(a.attempt) for a in attempts], right=True),
        Column("outcome", [_outcome(a.outcome) for a in attempts]),
        Column("station/slot", [_plain(_where(a)) for a in attempts]),
        Column("operator", [_plain(a.operator) for a in attempts]),
        Column("duration", [_plain(f"{a.ended - a.started:.2f}s") for a in attempts], right=True),
        Column("error or failing measurements", [_plain(_trouble(a)) for a in attempts], free_text=True),
    )


LEFT_OUT_WHEN_NARROW = ("product", "lifecycle", "station")
"""The columns ``units list`` leaves out, one more at a time, when the table is wider than the console."""


def list_units(records: Sequence[UnitRecord], console: Console, *, holds: Mapping[str, str] = _NO_HOLDS) -> None:
    """Print one row per unit; an in-route unit whose lot is in ``holds`` (lot to reason) is shown as held.

    On a narrow console the time is shortened (``MM-DD HH:MM``), then columns are left out
    (``LEFT_OUT_WHEN_NARROW``); when even that is too wide, each unit is printed as lines.
    """
    if not records:
        console.print(Text("no units"))
        return
    full = _listing(records, holds, _time)
    short = _listing(records, holds, _list_time)
    layouts = [full, short]
    for count in range(1, len(LEFT_OUT_WHEN_NARROW) + 1):
        left_out = LEFT_OUT_WHEN_NARROW[:count]
        layouts.append([column for column in short if column.header not in left_out])
    print_fitted(console, f"units ({len(records)})", layouts)


def _listing(records: Sequence[UnitRecord], holds: Mapping[str, str], when: Callable[[float], str]) -> Layout:
    lasts = [record.attempts[-1] if record.attempts else None for record in records]
    return (
        Column("serial", [_plain(r.serial) for r in records]),
        Column("lot", [_plain(r.lot) for r in records]),
        Column("product", [_plain(r.product) for r in records]),
        Column("status", [_status(_listed_status(r, holds)) for r in records]),
        Column("lifecycle", [_plain(r.lifecycle) for r in records]),
        Column("last stage", [_last_stage(last) for last in lasts]),
        Column("station", [_plain(None if last is None else _where(last)) for last in lasts]),
        Column("ended (UTC)", [_plain(None if last is None else when(last.ended)) for last in lasts]),
    )


def _listed_status(record: UnitRecord, holds: Mapping[str, str]) -> str:
    held = record.status == UnitStatus.IN_ROUTE and record.lot is not None and record.lot in holds
    return UnitStatus.HELD if held else record.status


def _last_stage(last: Attempt | None) -> Text:
    stage = Text()
    if last is not None:
        stage.append(f"{last.stage} ")
        stage.append_text(_outcome(last.outcome))
    return stage


def _plain(value: Any) -> Text:
    """A value as literal text: brackets in an error or a serial are not rich markup."""
    return Text("" if value is None else str(value))


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def _outcome(outcome: Outcome) -> Text:
    return Text(outcome.value, style=OUTCOME_STYLE.get(outcome, ""))


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _short_time(epoch: float) -> str:
    """A history's time on a narrow console: the year left out."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%m-%d %H:%M:%S")


def _list_time(epoch: float) -> str:
    """A list's (or a narrow history's) time on a narrow console: the year and the seconds left out."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%m-%d %H:%M")


def _recipe(record: UnitRecord) -> str | None:
    if not record.attempts:
        return None
    ref = record.attempts[-1].recipe
    return f"{ref.recipe} v{ref.version} {ref.content_hash[:12]}"


def _where(attempt: Attempt) -> str:
    return f"{attempt.station or '?'}/{attempt.slot}"


def _measurement(m: MeasurementRecord) -> str:
    units = f" {m.units}" if m.units else ""
    low = "" if m.low is None else str(m.low)
    high = "" if m.high is None else str(m.high)
    return f"{m.name}={m.value}{units} (limits {low or '-inf'}..{high or '+inf'}) {m.verdict.value}"


def _trouble(attempt: Attempt) -> str:
    """The attempt's error and its failing measurements, if any."""
    failing = [_measurement(m) for m in attempt.measurements if m.verdict is Verdict.FAIL]
    return "; ".join(filter(None, [attempt.error, *failing]))
