"""Terminal views of recorded units: one unit in full, or a table of many.

Every value is shown as plain text (never read as rich markup), and a colour always comes with the
word it stands for, so the views read the same without colour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from engine.context import MeasurementRecord
from engine.outcome import Outcome, UnitStatus, Verdict
from engine.record import Attempt, UnitRecord

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

    ``held`` is why the unit's lot is on hold, when it is.
    """
    console.print(Text(f"unit {record.serial}", style="bold"))
    console.print(_facts(record, held))
    for table in (_identities(record), _images(record), _decisions(record)):
        if table.row_count:
            console.print(table)
    console.print(_history(record) if record.attempts else Text("no attempts"))


def _facts(record: UnitRecord, held: str | None) -> Table:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
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


def _identities(record: UnitRecord) -> Table:
    table = _table("identities", ("kind", "value", "issued (UTC)", "state"))
    for identity in record.identities:
        state = Text("retired", style="bold red") if identity.retired else Text("in use")
        table.add_row(_plain(identity.kind), _plain(identity.value), _plain(_time(identity.issued)), state)
    return table


def _images(record: UnitRecord) -> Table:
    table = _table("images", ("image", "sha256", "stage", "written (UTC)"))
    for image in record.images:
        table.add_row(
            _plain(image.image),
            _plain(image.sha256 or "not read back"),
            _plain(image.stage),
            _plain(_time(image.written)),
        )
    return table


def _decisions(record: UnitRecord) -> Table:
    table = _table("decisions (audit)", ("at (UTC)", "by", "action", "subject", "reason"))
    for d in record.decisions:
        table.add_row(*map(_plain, (_time(d.at), d.by, d.action, d.subject, d.reason)))
    return table


def _history(record: UnitRecord) -> Table:
    history = _table("history", ("time (UTC)", "stage", "attempt", "outcome", "station/slot", "operator", "duration"))
    history.add_column("error or failing measurements", overflow="fold")
    for attempt in record.attempts:
        history.add_row(
            _plain(_time(attempt.started)),
            _plain(attempt.stage),
            _plain(attempt.attempt),
            _outcome(attempt.outcome),
            _plain(_where(attempt)),
            _plain(attempt.operator),
            _plain(f"{attempt.ended - attempt.started:.2f}s"),
            _plain(_trouble(attempt)),
        )
    return history


def list_units(records: Sequence[UnitRecord], console: Console, *, holds: Mapping[str, str] = _NO_HOLDS) -> None:
    """Print one row per unit; an in-route unit whose lot is in ``holds`` (lot to reason) is shown as held."""
    if not records:
        console.print(Text("no units"))
        return
    table = _table(
        f"units ({len(records)})",
        ("serial", "lot", "product", "status", "lifecycle", "last stage", "last station", "last time (UTC)"),
    )
    for record in records:
        held = record.status == UnitStatus.IN_ROUTE and record.lot is not None and record.lot in holds
        last = record.attempts[-1] if record.attempts else None
        stage = Text()
        if last is not None:
            stage.append(f"{last.stage} ")
            stage.append_text(_outcome(last.outcome))
        table.add_row(
            _plain(record.serial),
            _plain(record.lot),
            _plain(record.product),
            _status(UnitStatus.HELD if held else record.status),
            _plain(record.lifecycle),
            stage,
            _plain(None if last is None else _where(last)),
            _plain(None if last is None else _time(last.ended)),
        )
    console.print(table)


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in ("attempt", "duration") else "left")
    return table


def _plain(value: Any) -> Text:
    """A value as literal text: brackets in an error or a serial are not rich markup."""
    return Text("" if value is None else str(value))


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def _outcome(outcome: Outcome) -> Text:
    return Text(outcome.value, style=OUTCOME_STYLE.get(outcome, ""))


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


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
