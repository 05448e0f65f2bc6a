"""The store through the real command line: ``floorflow run --store``, ``units show|list|release``,
``recipe release``, ``run --production`` and ``export``, on the simulated line.

The main path (run, show, list) runs on SQLite and on PostgreSQL; the rest on SQLite files.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import storekit
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from stdnum import imei as imei_number
from storekit import sqlite_url

from engine.cli import main
from engine.outcome import Outcome
from engine.report.export import CSV_COLUMNS
from engine.store import open_store
from steps.sim.persist import StateDir

store_url = storekit.store_url

ROOT = Path(__file__).resolve().parent.parent
PHONE = str(ROOT / "workflows/phone-wim.yaml")
FAST = "image_kib: 1\nusb_mb_s: 0\n"
"""Small images, no simulated USB delay: a phone runs its whole route in a few seconds."""
KINDS = ["imei", "bt_mac", "wifi_mac", "serial"]


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables wide enough that no value is cut or wrapped."""
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.delenv("FLOORFLOW_STORE", raising=False)


def ff(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def sim_config(directory: Path, text: str = FAST, name: str = "sim.yaml") -> str:
    path = directory / name
    path.write_text(text)
    return str(path)


def sim_unit_state(url: str, serial: str) -> dict[str, object]:
    """What the simulated unit itself holds (the sim keeps it beside a SQLite store)."""
    root = Path(url[len("sqlite:///") :] + ".sim-state")
    data: dict[str, object] = json.loads(StateDir(root).path(serial).read_text())
    return data


# -- the main path, on both backends -------------------------------------------------------------------------


def test_a_sim_run_ships_units_and_units_show_and_list_them(
    store_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`run --sim --store` ships the phones with identities from the store's pools; `units` shows them."""
    code, out, err = ff(
        capsys, "run", PHONE, "--sim", "--sim-config", sim_config(tmp_path), "--store", store_url,
        "--unit", "SN-A1", "--unit", "SN-A2", "--slots", "2", "--lot", "LOT-9", "--operator", "olga",
    )  # fmt: skip
    assert code == 0, out + err
    assert "SN-A1 shipped" in out and "SN-A2 shipped" in out
    with open_store(store_url) as store:
        records = {serial: store.unit(serial) for serial in ("SN-A1", "SN-A2")}
    identities: dict[str, dict[str, str]] = {}
    for serial, record in records.items():
        assert (record.status, record.lifecycle, record.lot, record.product) == (
            "shipped",
            "Packed",
            "LOT-9",
            "X1-EU-32G",
        )
        assert record.attempts[-1].stage == "sample_test" and record.attempts[-1].operator == "olga"
        assert [i.kind for i in record.identities] == KINDS
        identities[serial] = {i.kind: i.value for i in record.identities}
        assert imei_number.is_valid(identities[serial]["imei"]) and identities[serial]["imei"].startswith("35693803")
    values = [v for given in identities.values() for v in given.values()]
    assert len(set(values)) == len(values) == 8
    if store_url.startswith("sqlite:"):  # the simulated phone carries what the store issued
        assert sim_unit_state(store_url, "SN-A1")["identities"] == identities["SN-A1"]

    code, out, err = ff(capsys, "units", "show", "SN-A1", "--store", store_url)
    assert code == 0, err
    assert "unit SN-A1" in out
    assert re.search(r"status\s+shipped", out) and re.search(r"lifecycle\s+Packed", out)
    for kind, value in identities["SN-A1"].items():
        assert re.search(rf"{kind}\s+│\s+{re.escape(value)}\s", out), kind
    assert identities["SN-A2"]["imei"] not in out
    assert "write_identities" in out and "advance_packed" in out

    code, out, err = ff(capsys, "units", "list", "--status", "shipped", "--store", store_url)
    assert code == 0, err
    assert "units (2)" in out and "SN-A1" in out and "SN-A2" in out
    code, out, _ = ff(capsys, "units", "list", "--status", "quarantined", "--store", store_url)
    assert code == 0 and "no units" in out and "SN-A1" not in out
    code, out, _ = ff(capsys, "units", "list", "--lot", "LOT-8", "--store", store_url)
    assert code == 0 and "no units" in out


# -- production releases -------------------------------------------------------------------------------------


def test_production_runs_only_a_released_recipe(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`run --production` of an unreleased recipe exits 2 saying how to release it; released, it runs."""
    url = sqlite_url(tmp_path / "line.db")
    run = ("run", PHONE, "--sim", "--sim-config", sim_config(tmp_path), "--store", url, "--production")
    code, out, err = ff(capsys, *run, "--station", "smt", "--unit", "P1")
    assert code == 2
    assert "--production: recipe phone-wim v1 (hash " in err and "is not released for production" in err
    assert f"Release it with: floorflow recipe release {PHONE} --by NAME" in err
    with open_store(url) as store:
        assert store.units() == []  # nothing ran
        # another content of the recipe was released: the refusal names it
        assert store.release_recipe("phone-wim", 1, "feedbeefcafe0123", "old/phone-wim.yaml", "carol") is None
    code, out, err = ff(capsys, *run, "--station", "smt", "--unit", "P1")
    assert code == 2 and "; released: phone-wim v1 (hash feedbeefcafe). Release it with" in err

    base = str(ROOT / "workflows/base/phone.yaml")
    code, out, err = ff(capsys, "recipe", "release", base, "--by", "x", "--store", url)
    assert code == 2 and "recipe 'phone-base' is abstract" in err

    code, out, err = ff(capsys, "recipe", "release", PHONE, "--by", "alice", "--store", url)
    assert code == 0, err
    assert re.search(r"phone-wim v1 \(hash [0-9a-f]{12}\) released for production by alice", out)
    code, out, err = ff(capsys, "recipe", "release", PHONE, "--by", "bob", "--store", url)
    assert code == 0, err
    assert "was already released for production by alice" in out

    code, out, err = ff(capsys, *run, "--station", "smt", "--unit", "P1")
    assert code == 0, out + err
    with open_store(url) as store:
        record = store.unit("P1")
        release = store.releases_of("phone-wim")[-1]
        assert release.by == "alice"
        assert [(a.stage, a.outcome) for a in record.attempts] == [("flash_golden", Outcome.PASS)]
        assert record.attempts[0].recipe.content_hash == release.subject
        assert [(d.by, d.action) for d in store.audit(release.subject)] == [("alice", "recipe-release")]


# -- a quarantine and a supervisor's release -----------------------------------------------------------------


def test_an_offline_allocator_leaves_the_phone_untouched_and_free_to_retry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """No identity can be allocated: write_identities stops before writing, so the phone is not quarantined."""
    url = sqlite_url(tmp_path / "line.db")
    offline = sim_config(tmp_path, FAST + "offline: [identities]\n", "offline.yaml")
    code, out, err = ff(capsys, "run", PHONE, "--sim", "--sim-config", offline, "--store", url, "--unit", "Q1")
    assert code == 4, out + err
    assert "'write_identities': the identity allocator is offline" in out
    code, out, _ = ff(capsys, "units", "list", "--status", "quarantined", "--store", url)
    assert "no units" in out

    healthy = sim_config(tmp_path)
    code, out, err = ff(capsys, "run", PHONE, "--sim", "--sim-config", healthy, "--store", url, "--unit", "Q1")
    assert code == 0, out + err
    with open_store(url) as store:
        record = store.unit("Q1")
    assert record.status == "shipped"
    writes = [a.outcome for a in record.attempts if a.stage == "write_identities"]
    assert writes == [Outcome.ERROR, Outcome.NOT_DONE, Outcome.PASS]
    assert [i.kind for i in record.identities] == KINDS
    counts = sim_unit_state(url, "Q1")["counts"]
    assert isinstance(counts, dict) and counts["write_identity:imei"] == 1  # the phone's IMEI was written once


def test_an_exhausted_imei_pool_stops_the_next_phone_before_it_is_touched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A pool of one IMEI: the second phone gets a clear error naming the pool, and nothing is written to it."""
    url = sqlite_url(tmp_path / "line.db")
    one = sim_config(tmp_path, FAST + "allocator: {imei_first: 7, imei_last: 7}\n", "one.yaml")
    code, out, err = ff(
        capsys, "run", PHONE, "--sim", "--sim-config", one, "--store", url, "--unit", "E1", "--unit", "E2"
    )
    assert code == 4, out + err
    assert (
        "IMEI pool of TAC 35693803 (000007-000007) is exhausted: all 1 values were issued: configure a new range" in out
    )
    with open_store(url) as store:
        first, second = store.unit("E1"), store.unit("E2")
        quarantined = store.units(status="quarantined")
    assert first.status == "shipped" and [i.value[8:14] for i in first.identities if i.kind == "imei"] == ["000007"]
    assert second.status == "in-route" and second.identities == [] and quarantined == []
    counts = sim_unit_state(url, "E2")["counts"]
    assert isinstance(counts, dict) and not any(key.startswith("write_identity") for key in counts)


def test_units_release_of_a_quarantined_unit_is_recorded_and_shown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A station died inside an irreversible step: the unit is quarantined; a supervisor's release is kept."""
    url = sqlite_url(tmp_path / "line.db")
    storekit.left_by_dead_station(url, "Q1", stage="burn")

    code, out, err = ff(capsys, "units", "list", "--status", "quarantined", "--store", url)
    assert "units (1)" in out and "Q1" in out
    assert "warning: unit Q1 is quarantined: irreversible stage 'burn' was interrupted" in err
    code, out, _ = ff(capsys, "units", "show", "Q1", "--store", url)
    assert code == 0
    assert re.search(r"status\s+quarantined: irreversible stage 'burn' was interrupted", out)

    note = "fuse reads blank"
    release = ("units", "release", "Q1", "--decision", "not-done", "--by", "alice", "--note", note, "--store", url)
    code, out, err = ff(capsys, *release)
    assert code == 0, err
    assert out.strip() == "unit Q1 released by alice: 'burn' counts as not done: it may run again"
    code, out, _ = ff(capsys, "units", "show", "Q1", "--store", url)
    assert re.search(r"status\s+in-route: released by alice", out)
    assert re.search(r"floorflow\s+│\s+quarantine\s+│\s+Q1", out)
    assert re.search(rf"alice\s+│\s+release-not-done\s+│\s+Q1\s+│\s+{note}", out)
    assert re.search(r"burn\s+│\s+1\s+│\s+NOT-DONE", out)
    code, _, err = ff(capsys, *release)
    assert code == 2 and "unit Q1 is not quarantined (it is in-route)" in err


# -- reading a store: show, list, export ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLite store with two phones shipped through the whole route (made once for the module)."""
    directory = tmp_path_factory.mktemp("shipped")
    url = sqlite_url(directory / "line.db")
    args = ["run", PHONE, "--sim", "--sim-config", sim_config(directory), "--store", url, "--slots", "2"]
    assert main([*args, "--unit", "SN-E1", "--unit", "SN-E2", "--lot", "LOT-E"]) == 0
    yield url


def test_units_show_of_an_unknown_unit_exits_2(shipped: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = ff(capsys, "units", "show", "SN-NOPE", "--store", shipped)
    assert code == 2
    assert f"floorflow: unit SN-NOPE is not in the store {shipped}" in err
    assert out == ""


def test_units_show_of_an_unknown_unit_as_json_exits_2_the_same(
    shipped: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = ff(capsys, "units", "show", "SN-NOPE", "--format", "json", "--store", shipped)
    assert code == 2
    assert err.strip() == f"floorflow: unit SN-NOPE is not in the store {shipped}"
    assert out == ""


def _valid(document: object, pointer: str = "") -> None:
    """Validate against schemas/export.schema.json, or the part of it at ``pointer`` (e.g. /$defs/unit)."""
    schema = json.loads((ROOT / "schemas/export.schema.json").read_text())
    registry: Registry[Any] = Registry().with_resource(schema["$id"], Resource.from_contents(schema))
    Draft202012Validator(
        {"$ref": f"{schema['$id']}#{pointer}"}, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    ).validate(document)


def test_units_show_list_and_export_as_json_follow_the_schema(
    shipped: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`units show --format json` is the unit the JSON export holds, `units list --format json` their summaries,
    and each validates against schemas/export.schema.json."""
    with open_store(shipped) as store:
        record = store.unit("SN-E1")
    code, out, err = ff(capsys, "units", "show", "SN-E1", "--format", "json", "--store", shipped)
    assert code == 0, err
    shown = json.loads(out)
    _valid(shown, "/$defs/unit")
    assert (shown["serial"], shown["lot"], shown["status"], shown["lifecycle"]) == (
        "SN-E1",
        "LOT-E",
        "shipped",
        "Packed",
    )
    assert shown["product"] == record.product and shown["lot_hold"] is None
    assert [i["value"] for i in shown["identities"]] == [i.value for i in record.identities]
    assert [i["kind"] for i in shown["identities"]] == KINDS
    assert [i["image"] for i in shown["images"]] == [i.image for i in record.images] != []
    assert [(a["stage"], a["outcome"]) for a in shown["attempts"]] == [(a.stage, a.outcome) for a in record.attempts]
    assert any(m.get("limits") for a in shown["attempts"] for m in a["measurements"])
    assert shown["attempts"][0]["started"].endswith("+00:00")

    code, out, err = ff(capsys, "units", "list", "--format", "json", "--store", shipped)
    assert code == 0, err
    listed = json.loads(out)
    _valid(listed, "/$defs/unitList")
    summary = {u["serial"]: u for u in listed}
    assert sorted(summary) == ["SN-E1", "SN-E2"]
    assert summary["SN-E1"]["attempts"] == len(record.attempts)
    assert summary["SN-E1"]["last_attempt"]["stage"] == record.attempts[-1].stage
    code, out, _ = ff(capsys, "units", "list", "--status", "scrapped", "--format", "json", "--store", shipped)
    assert code == 0 and json.loads(out) == []

    report = tmp_path / "report.json"
    assert ff(capsys, "export", str(report), "--format", "json", "--store", shipped)[0] == 0
    exported = json.loads(report.read_text())
    _valid(exported)
    assert [u for u in exported["units"] if u["serial"] == "SN-E1"] == [shown]


def test_a_broken_unit_is_refused_by_the_schema(shipped: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The schema says something: a unit without its identities, or with a local time, is not valid."""
    _, out, _ = ff(capsys, "units", "show", "SN-E1", "--format", "json", "--store", shipped)
    shown = json.loads(out)
    del shown["identities"]
    with pytest.raises(ValidationError):
        _valid(shown, "/$defs/unit")
    shown = json.loads(out)
    shown["attempts"][0]["ended"] = "2026-11-14T23:13:20+01:00"
    with pytest.raises(ValidationError):
        _valid(shown, "/$defs/unit")


def _piped(url: str, *args: str) -> str:
    """What a verb prints into a pipe at 80 columns, checked to be no wider and to cut nothing with "…"."""
    env = {**{k: v for k, v in os.environ.items() if k != "FLOORFLOW_STORE"}, "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", *args, "--store", url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    assert all(len(line.rstrip()) <= 80 for line in done.stdout.splitlines()), done.stdout
    return done.stdout


def test_units_show_and_list_in_a_pipe_at_80_columns_break_no_value(shipped: str) -> None:
    """Piped at 80 columns, `units list` and `units show` leave out or shorten columns, never cutting a value:
    each one shown is a whole word on its line."""
    with open_store(shipped) as store:
        record = store.unit("SN-E1")
    listed = _piped(shipped, "units", "list")
    for serial in ("SN-E1", "SN-E2"):
        row = [line for line in listed.splitlines() if serial in line]
        assert len(row) == 1
        words = row[0].replace("│", " ").split()
        last = record.attempts[-1]
        assert {serial, "LOT-E", "shipped", last.stage, last.outcome.value} <= set(words), row
        assert re.search(r"\b\d\d-\d\d \d\d:\d\d\b", row[0]), row

    shown = _piped(shipped, "units", "show", "SN-E1")
    words = set(shown.replace("│", " ").split())
    assert {"SN-E1", "LOT-E", "shipped", "Packed", record.product} <= words
    assert {i.value for i in record.identities} <= words
    assert {a.stage for a in record.attempts} <= words
    assert {f"{a.station}/{a.slot}" for a in record.attempts} <= words
    assert {i.image for i in record.images} <= words


@pytest.mark.parametrize("fmt", ["json", "csv", "junit", "html"])
def test_export_writes_every_format(shipped: str, fmt: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`export OUT --format F` writes the store's units and attempts in each format."""
    with open_store(shipped) as store:
        units = {u.serial: u for u in store.units()}
    attempts = sum(len(u.attempts) for u in units.values())
    assert sorted(units) == ["SN-E1", "SN-E2"] and attempts >= 2 * 27  # 27 stages on the route, each run at least once
    out_file = tmp_path / f"report.{fmt}"
    code, _, err = ff(capsys, "export", str(out_file), "--format", fmt, "--store", shipped)
    assert code == 0, err
    assert f"{attempts} attempts of 2 units written to {out_file}" in err
    text = out_file.read_text(encoding="utf-8")
    if fmt == "json":
        document = json.loads(text)
        assert [u["serial"] for u in document["units"]] == list(units)
        for unit in document["units"]:
            assert unit["status"] == "shipped" and unit["lot"] == "LOT-E"
            assert len(unit["attempts"]) == len(units[unit["serial"]].attempts)
            assert [i["kind"] for i in unit["identities"]] == KINDS
        assert [lot["lot"] for lot in document["lots"]] == ["LOT-E"]
    elif fmt == "csv":
        rows = list(csv.DictReader(text.splitlines()))
        assert list(rows[0]) == list(CSV_COLUMNS)
        assert {r["serial"] for r in rows} == {"SN-E1", "SN-E2"}
        assert {(r["serial"], r["stage"]) for r in rows} >= {("SN-E1", "write_identities"), ("SN-E2", "ready")}
    elif fmt == "junit":
        root = ET.fromstring(text)
        cases = list(root.iter("testcase"))
        assert len(cases) == attempts
        assert "SN-E1" in text and "SN-E2" in text
    else:
        assert text.lstrip().lower().startswith("<!doctype html") and "</html>" in text
        assert "SN-E1" in text and "SN-E2" in text
        # self-contained: no script, style sheet or image fetched from anywhere
        assert not re.search(r"<(script|img|link|iframe)\b[^>]*\b(src|href)\s*=", text, re.I)
        assert "@import" not in text and "url(http" not in text


# -- what is not a store -------------------------------------------------------------------------------------


FAILED_READS = [("report", "out.html"), ("profile", "out.yaml"), ("export", "--format", "json", "x.json")]


@pytest.mark.parametrize("verb", FAILED_READS)
def test_a_store_failing_a_read_is_a_usage_error_without_a_traceback(tmp_path: Path, verb: tuple[str, ...]) -> None:
    """A store that opens but fails a read (here a table of its schema gone) exits 2 with the store's one line."""
    url = sqlite_url(tmp_path / "line.db")
    open_store(url).close()
    with sqlite3.connect(tmp_path / "line.db") as conn:
        conn.execute("DROP TABLE measured" if verb[0] != "export" else "DROP TABLE lots")
    done = subprocess.run([sys.executable, "-m", "engine.cli", *verb, "--store", url], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith(f"floorflow: error: the store {url}: no such table: ")
    assert "Traceback" not in done.stderr


def test_a_missing_sqlite_store_is_a_usage_error_without_a_traceback(tmp_path: Path) -> None:
    """`units list` on a SQLite path that does not exist exits 2 with a message, and creates nothing."""
    missing = tmp_path / "nowhere" / "line.db"
    url = sqlite_url(missing)
    env = {k: v for k, v in os.environ.items() if k != "FLOORFLOW_STORE"}
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "units", "list", "--store", url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"floorflow: error: no store at {url}: give --store URL (or set $FLOORFLOW_STORE)"
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not missing.parent.exists()


def test_reading_verbs_never_create_a_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """show, release and export on a store that is not there exit 2 and leave no file behind."""
    url = sqlite_url(tmp_path / "line.db")
    for args in (
        ("units", "show", "SN1"),
        ("units", "release", "SN1", "--decision", "done", "--by", "x"),
        ("export", str(tmp_path / "out.json"), "--format", "json"),
    ):
        code, _, err = ff(capsys, *args, "--store", url)
        assert code == 2 and f"no store at {url}" in err, args
    assert list(tmp_path.iterdir()) == []


# -- what export may write over --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["device", "fifo", "directory"])
def test_export_to_a_device_fifo_or_directory_is_a_usage_error(
    kind: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`export /dev/full` (as root too), a FIFO or a directory exits 2 naming what is there, before the
    store is even looked for, and leaves it as it was."""
    url = sqlite_url(tmp_path / "no-store-here.db")
    out = {"device": Path("/dev/full"), "fifo": tmp_path / "fifo", "directory": tmp_path / "dir"}[kind]
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "directory":
        out.mkdir()
    before = os.stat(out)
    code, _, err = ff(capsys, "export", str(out), "--format", "csv", "--store", url)
    assert code == 2
    what = {"device": "a character device", "fifo": "a FIFO", "directory": "a directory"}[kind]
    assert err == f"floorflow: error: {out}: is {what}: only a new file or a regular file is written\n"
    assert os.stat(out).st_mode == before.st_mode and os.stat(out).st_ino == before.st_ino


# -- runs of unreleased recipes --------------------------------------------------------------------------------

PROBE = """\
recipe: probe
version: 1
stations:
  fixture: {slots: 1}
stages:
  - {id: connect, step: device.connect, station: fixture, with: {interface: uart, timeout_s: 1}}
"""


def test_a_run_of_an_unreleased_recipe_on_a_store_with_releases_is_audited_and_flagged(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """On a store that holds a release, a run of a recipe never released warns, is kept in the audit log
    (recipe, hash, station, operator) and is flagged in the HTML export with its units; a released
    recipe's run, or any run on a store without releases, is not."""
    recipe = tmp_path / "probe.yaml"
    recipe.write_text(PROBE)
    plain = sqlite_url(tmp_path / "plain.db")
    code, _, err = ff(capsys, "run", str(recipe), "--sim", "--store", plain, "--unit", "SN-P0")
    assert code == 0 and "not released" not in err
    with open_store(plain) as store:
        assert store.audit() == []

    url = sqlite_url(tmp_path / "line.db")
    assert ff(capsys, "recipe", "release", PHONE, "--by", "P. Engineer", "--store", url)[0] == 0
    args = ["run", str(recipe), "--sim", "--store", url, "--station", "fixture", "--operator", "Carol"]
    code, _, err = ff(capsys, *args, "--unit", "SN-P1", "--unit", "SN-P2")
    assert code == 0, err
    assert "warning: recipe probe v1 (hash " in err and f"is not released in {url}" in err
    with open_store(url) as store:
        [run] = [d for d in store.audit() if d.action == "unreleased-recipe-run"]
        content_hash = store.units()[0].attempts[0].recipe.content_hash
    assert (run.by, run.subject) == ("Carol", content_hash)
    assert run.reason == f"probe v1 (hash {content_hash}) run at station fixture by Carol"

    report = tmp_path / "report.html"
    assert ff(capsys, "export", str(report), "--format", "html", "--store", url)[0] == 0
    text = report.read_text()
    warning = text[text.index('<section class="unreleased">') : text.index("</section>")]
    assert f"probe v1 (hash {content_hash[:12]})" in warning and "<td>SN-P1, SN-P2</td>" in warning

    assert ff(capsys, "recipe", "release", str(recipe), "--by", "P. Engineer", "--store", url)[0] == 0
    code, _, err = ff(capsys, *args, "--unit", "SN-P3")
    assert code == 0 and "not released" not in err
    with open_store(url) as store:
        assert len([d for d in store.audit() if d.action == "unreleased-recipe-run"]) == 1
