"""Exports of the records: JSON, CSV, JUnit XML and HTML hold the same attempts, and are written atomically."""

from __future__ import annotations

import csv
import json
import os
import stat
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from engine.context import MeasurementRecord
from engine.outcome import Outcome, Verdict
from engine.record import Attempt, Decision, Identity, ImageOnUnit, LotRecord, RecipeRef, UnitRecord
from engine.report.export import CSV_COLUMNS, FORMATS, export
from engine.report.text import first_pass
from engine.report.unitjson import json_text, unit_document

T0 = 1_700_000_000.0
"""2023-11-14T22:13:20Z."""
RECIPE = RecipeRef("board", 4, "abcdef0123456789" * 4)

TX_HIGH = MeasurementRecord("tx_power_dbm", 19.2, Verdict.FAIL, "dBm", 14.0, 18.0)
VSWR = MeasurementRecord("vswr", 1.4, Verdict.PASS, None, None, 2.0)
TX_OK = MeasurementRecord("tx_power_dbm", 16.0, Verdict.PASS, "dBm", 14.0, 18.0)
TX_LOW = MeasurementRecord("tx_power_dbm", 11.5, Verdict.FAIL, "dBm", 14.0, 18.0)
CURRENT = MeasurementRecord("idle_ma", 42, Verdict.MARGINAL, "mA", 10.0, 45.0)


def _attempt(
    serial: str,
    stage: str,
    n: int,
    outcome: Outcome,
    start: float,
    *,
    measurements: tuple[MeasurementRecord, ...] = (),
    error: str | None = None,
) -> Attempt:
    """An attempt at station test, slot 2, by alice, started ``start`` seconds after T0 and lasting 2.5 s."""
    return Attempt(
        serial,
        stage,
        f"lab.{stage}",
        n,
        outcome,
        T0 + start,
        T0 + start + 2.5,
        RECIPE,
        station="test",
        slot=2,
        operator="alice",
        measurements=measurements,
        error=error,
    )


def _units() -> list[UnitRecord]:
    mixed = UnitRecord(
        "SN-MIX",
        lot="LOT-A",
        product="gw-1",
        lifecycle="calibrated",
        attempts=[
            _attempt("SN-MIX", "boot", 1, Outcome.PASS, 0),
            _attempt(
                "SN-MIX", "rf", 1, Outcome.FAIL, 10, measurements=(TX_HIGH, VSWR), error="tx_power_dbm out of limits"
            ),
            _attempt("SN-MIX", "rf", 2, Outcome.PASS, 20, measurements=(TX_OK, CURRENT)),
            _attempt("SN-MIX", "flash", 1, Outcome.ERROR, 30, error="programmer not found"),
            _attempt("SN-MIX", "sample", 1, Outcome.SKIPPED, 600, error="not sampled"),
        ],
    )
    scrapped = UnitRecord(
        "SN-SCRAP",
        lot="LOT-C",
        status="scrapped",
        reason="rf failed 2 times",
        product="gw-1",
        lifecycle="blank",
        attempts=[
            _attempt("SN-SCRAP", "rf", 1, Outcome.FAIL, 40, measurements=(TX_LOW,)),
            _attempt("SN-SCRAP", "rf", 2, Outcome.FAIL, 50, measurements=(TX_LOW,), error="still low"),
        ],
        identities=[Identity("mac", "02:00:00:00:00:07", T0 + 5, retired=True)],
    )
    quarantined = UnitRecord(
        "SN-Q",
        lot="LOT-B",
        status="quarantined",
        reason="dropped on the floor",
        attempts=[_attempt("SN-Q", "boot", 1, Outcome.PASS, 1000)],
        decisions=[Decision(T0 + 1010, "bob", "quarantine", "SN-Q", "dropped on the floor")],
    )
    shipped = UnitRecord(
        "SN-SHIP",
        lot="LOT-B",
        status="shipped",
        product="gw-1",
        attempts=[
            _attempt("SN-SHIP", "boot", 1, Outcome.PASS, 1100),
            _attempt("SN-SHIP", "rf", 1, Outcome.PASS, 1110, measurements=(TX_OK,)),
        ],
        images=[ImageOnUnit("fw-1.2.bin", "ab" * 32, "flash", T0 + 1105)],
    )
    return [mixed, scrapped, quarantined, shipped]


def _lots() -> list[LotRecord]:
    return [
        LotRecord("LOT-A", failures={"sample": 1}),
        LotRecord("LOT-B", hold="sampled failure rate too high", held_at=T0 + 1200, failures={"rf": 3}),
        LotRecord("LOT-C"),
    ]


ALL_ATTEMPTS = 10
SINCE = T0 + 500
"""Keeps SN-MIX's sample attempt, SN-Q and SN-SHIP; drops SN-SCRAP and so LOT-C."""


def _tmp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# -- json --


def test_json_holds_every_unit_and_lot(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    units, lots = _units(), _lots()
    assert export("json", units, lots, out, generated=T0 + 2000) == ALL_ATTEMPTS
    data = json.loads(out.read_text())
    assert data["generated"] == "2023-11-14T22:46:40.000000+00:00"
    assert data["since"] is None
    holds = {lot.lot: lot.hold for lot in lots}
    assert data["units"] == [unit_document(unit, lot_hold=holds.get(unit.lot or "")) for unit in units]
    assert data["lots"] == [lot.as_json() for lot in lots]
    assert [u["lot_hold"] for u in data["units"] if u["lot"] == "LOT-B"] == ["sampled failure rate too high"] * 2
    scrapped = next(u for u in data["units"] if u["identities"])
    assert [i["kind"] for i in scrapped["identities"]] and "images" in scrapped and "decisions" in scrapped
    assert data["lots"][1]["hold"] == "sampled failure rate too high"
    assert _tmp_files(tmp_path) == []


def test_json_since_keeps_attempts_ended_at_or_after_it(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    since = T0 + 600 + 2.5  # exactly when SN-MIX's sample attempt ended: it is kept
    assert export("json", _units(), _lots(), out, since=since, generated=T0) == 4
    data = json.loads(out.read_text())
    assert data["since"] == "2023-11-14T22:23:22.500000+00:00"
    assert [u["serial"] for u in data["units"]] == ["SN-MIX", "SN-Q", "SN-SHIP"]
    mixed = data["units"][0]
    assert [(a["stage"], a["attempt"]) for a in mixed["attempts"]] == [("sample", 1)]
    assert [lot["lot"] for lot in data["lots"]] == ["LOT-A", "LOT-B"]


def test_since_does_not_change_the_records_given(tmp_path: Path) -> None:
    units = _units()
    export("json", units, _lots(), tmp_path / "r.json", since=SINCE)
    assert len(units[0].attempts) == 5


# -- csv --


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        return list(reader)


def test_csv_has_a_row_per_measurement_and_per_attempt_without_one(tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    units = _units()
    assert export("csv", units, _lots(), out) == ALL_ATTEMPTS
    rows = _csv_rows(out)
    expected = sum(max(1, len(a.measurements)) for unit in units for a in unit.attempts)
    assert len(rows) == expected == 12

    [failed] = [r for r in rows if r["serial"] == "SN-MIX" and r["stage"] == "rf" and r["verdict"] == "FAIL"]
    source = units[0].attempts[1]
    assert failed == {
        "serial": "SN-MIX",
        "lot": "LOT-A",
        "product": "gw-1",
        "stage": "rf",
        "step": "lab.rf",
        "attempt": "1",
        "outcome": "FAIL",
        "station": "test",
        "slot": "2",
        "operator": "alice",
        "started": source.as_json()["started"],
        "ended": source.as_json()["ended"],
        "duration_s": "2.5",
        "error": "tx_power_dbm out of limits",
        "recipe": "board",
        "recipe_version": "4",
        "recipe_hash": RECIPE.content_hash,
        "measurement": "tx_power_dbm",
        "value": "19.2",
        "units": "dBm",
        "low": "14.0",
        "high": "18.0",
        "verdict": "FAIL",
    }
    assert failed["started"] == "2023-11-14T22:13:30.000000+00:00"

    [vswr] = [r for r in rows if r["measurement"] == "vswr"]
    assert (vswr["units"], vswr["low"], vswr["high"], vswr["verdict"]) == ("", "", "2.0", "PASS")

    [boot] = [r for r in rows if r["serial"] == "SN-MIX" and r["stage"] == "boot"]
    assert boot["outcome"] == "PASS"
    assert all(boot[c] == "" for c in ("measurement", "value", "units", "low", "high", "verdict"))

    [flash] = [r for r in rows if r["stage"] == "flash"]
    assert (flash["outcome"], flash["error"]) == ("ERROR", "programmer not found")


def test_csv_since(tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    assert export("csv", _units(), _lots(), out, since=SINCE) == 4
    rows = _csv_rows(out)
    assert sorted({r["serial"] for r in rows}) == ["SN-MIX", "SN-Q", "SN-SHIP"]
    assert [r["stage"] for r in rows if r["serial"] == "SN-MIX"] == ["sample"]


# -- junit --


def test_junit_has_a_suite_per_unit_and_a_case_per_attempt(tmp_path: Path) -> None:
    out = tmp_path / "report.xml"
    assert export("junit", _units(), _lots(), out) == ALL_ATTEMPTS
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("10", "3", "1", "1")
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert list(suites) == ["SN-MIX", "SN-SCRAP", "SN-Q", "SN-SHIP"]

    mixed = suites["SN-MIX"]
    counts = tuple(mixed.get(k) for k in ("tests", "failures", "errors", "skipped"))
    assert counts == ("5", "1", "1", "1")
    assert float(mixed.get("time", "")) == pytest.approx(12.5)
    assert mixed.get("timestamp") == "2023-11-14T22:13:20"
    cases = mixed.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("board.boot", "boot attempt 1"),
        ("board.rf", "rf attempt 1"),
        ("board.rf", "rf attempt 2"),
        ("board.flash", "flash attempt 1"),
        ("board.sample", "sample attempt 1"),
    ]
    assert float(cases[0].get("time", "")) == pytest.approx(2.5)
    assert cases[0].find("failure") is None and cases[0].find("error") is None

    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "tx_power_dbm out of limits"
    assert "tx_power_dbm = 19.2 dBm (limits 14.0..18.0) FAIL" in (failure.text or "")
    assert "vswr" not in (failure.text or "")
    properties = {p.get("name"): p.get("value") for p in cases[1].iter("property")}
    assert properties["tx_power_dbm"] == "tx_power_dbm = 19.2 dBm (limits 14.0..18.0) FAIL"
    assert properties["vswr"] == "vswr = 1.4 (limits -inf..2.0) PASS"
    assert (properties["station"], properties["slot"], properties["operator"]) == ("test", "2", "alice")
    assert properties["recipe"] == f"board v4 {RECIPE.content_hash}"

    error = cases[3].find("error")
    assert error is not None and error.get("message") == "programmer not found"
    skipped = cases[4].find("skipped")
    assert skipped is not None and skipped.get("message") == "not sampled"

    scrap_cases = suites["SN-SCRAP"].findall("testcase")
    first = scrap_cases[0].find("failure")
    assert first is not None
    assert first.get("message") == "1 measurement(s) out of limits"
    assert "tx_power_dbm = 11.5 dBm (limits 14.0..18.0) FAIL" in (first.text or "")


def test_junit_holds_text_xml_cannot(tmp_path: Path) -> None:
    """A device's control characters and markup in an error still give a file that parses."""
    unit = UnitRecord(
        "SN<&>",
        attempts=[_attempt("SN<&>", "uart", 1, Outcome.ABORTED, 0, error="got \x1b[31m<FAIL>\x00 & stop")],
    )
    out = tmp_path / "report.xml"
    export("junit", [unit], [], out)
    root = ET.parse(out).getroot()
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "SN<&>"
    assert suite.get("errors") == "1"
    error = suite.find("testcase/error")
    assert error is not None and error.get("type") == "ABORTED"
    assert "<FAIL>" in (error.get("message") or "")


# -- html --


class _Tables(HTMLParser):
    """The text of every table cell, table by table, row by row (nested tables listed on their own)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._open: list[list[list[str]]] = []
        self._cells: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._open.append([])
            self.tables.append(self._open[-1])
        elif tag == "tr":
            self._open[-1].append([])
        elif tag in ("td", "th"):
            self._open[-1][-1].append("")
            self._cells.append(self._open[-1][-1])

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._open.pop()
        elif tag in ("td", "th"):
            self._cells.pop()

    def handle_data(self, data: str) -> None:
        if self._cells:
            self._cells[-1][-1] += data


def _tables(text: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(text)
    return parser.tables


def _table_headed(text: str, first: str) -> list[list[str]]:
    [table] = [t for t in _tables(text) if t and t[0] and t[0][0] == first]
    return table


def test_html_has_a_summary_the_lots_and_every_unit(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert export("html", _units(), _lots(), out, generated=T0 + 2000) == ALL_ATTEMPTS
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert "2023-11-14 22:46:40 UTC" in text
    for serial in ("SN-MIX", "SN-SCRAP", "SN-Q", "SN-SHIP"):
        assert f"<h3>{serial}</h3>" in text

    summary = dict((row[0], row[1]) for row in _table_headed(text, "")[1:])
    assert summary["units"] == "4"
    assert (summary["shipped"], summary["scrapped"], summary["quarantined"], summary["in-route"]) == (
        "1",
        "1",
        "1",
        "1",
    )
    assert summary["attempts"] == "10"
    assert summary["first-pass yield"] == "0 / 2 (0.0%)"  # LOT-B is held: SN-Q and SN-SHIP are counted apart
    assert summary["units of held lots (not in the yield)"] == "2"

    lots = _table_headed(text, "lot")
    assert lots[0] == ["lot", "units", "shipped", "scrapped", "quarantined", "in-route", "hold", "sampled failures"]
    rows = {row[0]: row for row in lots[1:]}
    assert rows["LOT-B"][1:6] == ["2", "1", "0", "1", "0"]
    assert rows["LOT-B"][6] == "held: sampled failure rate too high (since 2023-11-14 22:33:20 UTC)"
    assert rows["LOT-B"][7] == "rf: 3"
    assert rows["LOT-A"][1:8] == ["1", "0", "0", "0", "1", "not held", "sample: 1"]
    assert rows["LOT-C"][3] == "1"


def test_html_shows_each_units_attempts_measurements_and_audit(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    export("html", _units(), _lots(), out)
    text = out.read_text()
    attempts = [t for t in _tables(text) if t and t[0][:4] == ["stage", "step", "attempt", "outcome"]]
    assert [len(t) - 1 for t in attempts] == [5, 2, 1, 2]
    rf_fail = attempts[0][2]
    assert rf_fail[:7] == ["rf", "lab.rf", "1", "FAIL", "test", "2", "alice"]
    assert rf_fail[9:11] == ["2.500 s", "tx_power_dbm out of limits"]
    assert '<td class="FAIL">FAIL</td>' in text
    assert '<td class="ERROR">ERROR</td>' in text
    assert '<td class="SKIPPED">SKIPPED</td>' in text

    measurements = [t for t in _tables(text) if t and t[0] == ["name", "value", "units", "min", "max", "verdict"]]
    assert ["tx_power_dbm", "19.2", "dBm", "14.0", "18.0", "FAIL"] in measurements[0]
    assert ["idle_ma", "42", "mA", "10.0", "45.0", "MARGINAL"] in measurements[1]

    assert ["mac", "02:00:00:00:00:07", "2023-11-14 22:13:25 UTC", "retired"] in _table_headed(text, "kind")
    assert ["fw-1.2.bin", "ab" * 32, "flash", "2023-11-14 22:31:45 UTC"] in _table_headed(text, "image")
    decision = ["2023-11-14 22:30:10 UTC", "bob", "quarantine", "SN-Q", "dropped on the floor"]
    assert decision in _table_headed(text, "at")
    assert "scrapped: rf failed 2 times" in text
    assert "board v4 (abcdef012345)" in text
    assert text.count('<dt>lot hold</dt><dd class="held">held: sampled failure rate too high') == 2


def test_html_escapes_every_value(tmp_path: Path) -> None:
    serial = "<script>alert(1)</script>"
    unit = UnitRecord(
        serial,
        lot='LOT"><img>',
        reason="<b>why</b>",
        attempts=[_attempt(serial, "boot", 1, Outcome.FAIL, 0, error="<script>evil()</script> & more")],
    )
    out = tmp_path / "report.html"
    export("html", [unit], [LotRecord('LOT"><img>', hold="<i>held</i>")], out)
    text = out.read_text()
    assert "<script" not in text
    assert "<img>" not in text and "<b>why" not in text and "<i>held" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;script&gt;evil()&lt;/script&gt; &amp; more" in text
    assert "LOT&quot;&gt;&lt;img&gt;" in text


def test_html_is_self_contained(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    export("html", _units(), _lots(), out)
    text = out.read_text().lower()
    for reference in ("http://", "https://", "src=", "<link", "<script", "@import", "url("):
        assert reference not in text
    assert "<style>" in text and "@media print" in text


def test_html_since_and_no_units(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert export("html", _units(), _lots(), out, since=SINCE) == 4
    text = out.read_text()
    assert "SN-SCRAP" not in text and "LOT-C" not in text
    assert "attempts ended since 2023-11-14 22:21:40 UTC" in text
    assert export("html", _units(), _lots(), out, since=T0 + 10_000) == 0
    text = out.read_text()
    assert "No units." in text and "No lots." in text
    assert "0 / 0" in text


def test_first_pass_ignores_skipped_stages_and_needs_an_attempt() -> None:
    mixed, scrapped, quarantined, shipped = _units()
    assert [first_pass(u) for u in (mixed, scrapped, quarantined, shipped)] == [False, False, True, True]
    skipped = UnitRecord("S", attempts=[_attempt("S", "sample", 1, Outcome.SKIPPED, 0)])
    assert first_pass(skipped)
    assert not first_pass(UnitRecord("NONE"))


# -- every format --


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_counts_the_attempts_it_wrote(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"report.{fmt}"
    assert export(fmt, _units(), _lots(), out) == ALL_ATTEMPTS
    assert export(fmt, _units(), _lots(), out, since=SINCE) == 4
    assert "SN-SCRAP" not in out.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert _tmp_files(tmp_path) == []


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown export format 'pdf'"):
        export("pdf", _units(), _lots(), tmp_path / "report.pdf")
    assert list(tmp_path.iterdir()) == []


# -- atomic writes --


def test_missing_directory_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        export("json", _units(), _lots(), tmp_path / "missing" / "report.json")
    assert list(tmp_path.iterdir()) == []


def test_failed_replace_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The target is a directory: the temporary file is written, cannot be moved over it, and is removed."""
    target = tmp_path / "report.json"
    target.mkdir()
    (target / "inside").write_text("x")
    with pytest.raises(OSError):
        export("json", _units(), _lots(), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert target.is_dir()


def test_failed_sync_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "report.csv"
    out.write_text("previous\n")
    os.chmod(out, 0o600)

    def broken(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="disk full"):
        export("csv", _units(), _lots(), out)
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv"]

    monkeypatch.undo()
    export("csv", _units(), _lots(), out)
    assert out.read_text().startswith("serial,lot,product")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_unwritable_directory_leaves_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        with pytest.raises(PermissionError):
            export("html", _units(), _lots(), directory / "report.html")
        assert list(directory.iterdir()) == []
    finally:
        directory.chmod(0o700)


# -- what an export may write over ---------------------------------------------------------------------------


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "a-fifo"
    os.mkfifo(path)
    return path


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "a-directory"
    path.mkdir()
    return path


def _link_to_device(tmp_path: Path) -> Path:
    path = tmp_path / "to-null"
    path.symlink_to("/dev/null")
    return path


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (_fifo, "a FIFO"),
        (_directory, "a directory"),
        (lambda tmp_path: Path("/dev/full"), "a character device"),
        (_link_to_device, "a character device"),
    ],
    ids=["fifo", "directory", "device", "link-to-device"],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_export_writes_only_a_new_path_or_over_a_regular_file(
    make: object, kind: str, fmt: str, tmp_path: Path
) -> None:
    """A directory, a FIFO, a device or a link to one at OUT is refused naming what it is, and left
    as it was (/dev/full stays a device, even for root)."""
    out = make(tmp_path)  # type: ignore[operator]
    before = os.stat(out)
    with pytest.raises(OSError, match=f"{out}: is {kind}: only a new file or a regular file is written"):
        export(fmt, _units(), _lots(), out)
    after = os.stat(out)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    assert _tmp_files(out.parent) == [] or out.parent == Path("/dev")


def test_export_replaces_a_link_to_a_regular_file_and_a_regular_file(tmp_path: Path) -> None:
    """A regular file is replaced; a link to one is replaced by the file (never written through)."""
    target = tmp_path / "elsewhere.csv"
    target.write_text("old\n")
    link = tmp_path / "report.csv"
    link.symlink_to(target)
    export("csv", _units(), _lots(), link)
    assert not link.is_symlink() and link.read_text().startswith("serial,")
    assert target.read_text() == "old\n"
    export("csv", _units(), _lots(), link)
    assert link.read_text().startswith("serial,")


# -- csv cells a spreadsheet would run -----------------------------------------------------------------------


FORMULAS = ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tTAB", "\rCR", '=HYPERLINK("http://x","y")']


def _hostile_units() -> list[UnitRecord]:
    units = []
    for n, text in enumerate(FORMULAS):
        value = MeasurementRecord(text, text, Verdict.PASS, text, None, None)
        negative = MeasurementRecord("offset_db", -3.5, Verdict.PASS, "dB", -10.0, -1.0)
        attempt = Attempt(
            f"SN{n}",
            "rf",
            "lab.rf",
            1,
            Outcome.PASS,
            T0,
            T0 + 1,
            RECIPE,
            lot=text,
            station=text,
            operator=text,
            measurements=(value, negative),
            error=text,
        )
        units.append(UnitRecord(text if n else "=SN0", lot=text, product=text, attempts=[attempt]))
    return units


def test_csv_text_cells_that_a_spreadsheet_runs_are_neutralised(tmp_path: Path) -> None:
    """Every text cell beginning with = + - @, a tab or a carriage return (serial, lot, product, station,
    operator, error, measurement name, value, units) gets a leading single quote; numbers, negative
    ones too, stay numbers."""
    out = tmp_path / "records.csv"
    export("csv", _hostile_units(), [], out)
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * len(FORMULAS)
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (column, cell)
            assert not cell.startswith("-") or column in ("value", "low", "high"), (column, cell)
    texts = [r for r in rows if r["measurement"] != "offset_db"]
    assert {r["operator"] for r in texts} == {"'" + f for f in FORMULAS}
    assert {r["value"] for r in texts} == {"'" + f for f in FORMULAS}
    assert rows[0]["serial"] == "'=SN0"
    numbers = [r for r in rows if r["measurement"] == "offset_db"]
    assert {(r["value"], r["low"], r["high"]) for r in numbers} == {("-3.5", "-10.0", "-1.0")}


@pytest.mark.parametrize("value", [float("-inf"), float("nan"), float("inf")])
def test_csv_non_finite_numbers_are_text(value: float, tmp_path: Path) -> None:
    """-inf is no number a spreadsheet knows: it is written as text, neutralised like any other."""
    m = MeasurementRecord("x", value, Verdict.FAIL)
    unit = UnitRecord("SN1", attempts=[_attempt("SN1", "rf", 1, Outcome.FAIL, 0, measurements=(m,))])
    out = tmp_path / "records.csv"
    export("csv", [unit], [], out)
    [row] = csv.DictReader(out.read_text().splitlines())
    assert row["value"] == ("'-inf" if value < 0 else str(value))


def _refuse_non_json(word: str) -> None:
    raise AssertionError(f"{word} is not JSON")


def test_json_non_finite_numbers_are_strings_strict_readers_accept(tmp_path: Path) -> None:
    """NaN and the infinities are no JSON numbers: written as the strings a reader can tell apart from text, so the
    whole file parses under a strict reader; a measured text that says NaN stays as it was."""
    values_in = (("noise", float("nan")), ("over", float("inf")), ("under", float("-inf")), ("said", "NaN"))
    measured = tuple(MeasurementRecord(name, value, Verdict.FAIL) for name, value in values_in)
    unit = UnitRecord("SN1", attempts=[_attempt("SN1", "rf", 1, Outcome.FAIL, 0, measurements=measured)])
    out = tmp_path / "records.json"
    export("json", [unit], [], out)
    document = json.loads(out.read_text(), parse_constant=_refuse_non_json)
    values = [m["value"] for m in document["units"][0]["attempts"][0]["measurements"]]
    assert values == ["NaN", "Infinity", "-Infinity", "NaN"]
    shown = json.loads(json_text(unit_document(unit)), parse_constant=_refuse_non_json)  # units show --format json
    assert [m["value"] for m in shown["attempts"][0]["measurements"]] == values


# -- runs of unreleased recipes ---------------------------------------------------------------------------------


def test_html_flags_the_runs_of_an_unreleased_recipe_and_their_units(tmp_path: Path) -> None:
    """The audit log's unreleased-recipe runs are a warning at the top of the report naming the recipe,
    its hash, who ran it where, and the units run with it; each such unit says so too."""
    other = RecipeRef("board", 5, "fedcba9876543210" * 4)
    units = _units()
    units[3].attempts.append(Attempt("SN-SHIP", "pack", "lab.pack", 1, Outcome.PASS, T0 + 1200, T0 + 1201, other))
    run = Decision(T0 + 1199, "carol", "unreleased-recipe-run", other.content_hash, "board v5 run at station pack")
    out = tmp_path / "report.html"
    export("html", units, _lots(), out, unreleased=[run])
    text = out.read_text()
    warning = text[text.index('<section class="unreleased">') : text.index("</section>")]
    assert "board v5 (hash fedcba987654)" in warning and other.content_hash in warning
    assert "board v5 run at station pack" in warning and "<td>SN-SHIP</td>" in warning
    assert "SN-MIX" not in warning
    assert text.count("never released") == 1  # SN-SHIP's own section
    unflagged = tmp_path / "plain.html"
    export("html", units, _lots(), unflagged)
    assert "unreleased" not in unflagged.read_text().replace(".unreleased {", "")
