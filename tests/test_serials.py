"""Unit serials and people's names as the commands take them: refused with exit 2, on one line, before
anything touches a unit, when they would split a line of output, reach the terminal as an escape
sequence or exceed their length; a recipe may narrow serials further with product.serial_pattern.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.inputs import SERIAL_MAX, serial_problem

CONNECT_ONLY = """\
recipe: connect-only
version: 1
product: {{name: Probe{pattern}}}
stations:
  fixture: {{slots: 1}}
stages:
  - id: connect
    step: device.connect
    station: fixture
    with: {{interface: uart, timeout_s: 1}}
"""


def _recipe(tmp_path: Path, pattern: str | None = None) -> Path:
    recipe = tmp_path / "connect-only.yaml"
    line = "" if pattern is None else f", serial_pattern: '{pattern}'"
    recipe.write_text(CONNECT_ONLY.format(pattern=line))
    return recipe


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


BAD_SERIALS = {
    "empty": ("", "cannot be empty"),
    "blank": ("   ", "cannot hold whitespace"),
    "space": ("SN 1", "cannot hold whitespace"),
    "newline": ("SN1\nSN2", "cannot hold whitespace"),
    "tab": ("SN\t1", "cannot hold whitespace"),
    "ansi": ("SN\x1b[31mRED", "control or non-printable"),
    "bell": ("SN\x07", "control or non-printable"),
    "zero-width": ("SN\u200b1", "control or non-printable"),
    "nbsp": ("SN\u00a01", "cannot hold whitespace"),
    "too-long": ("A" * (SERIAL_MAX + 1), f"at most {SERIAL_MAX} characters"),
    "10000": ("S" * 10_000, f"at most {SERIAL_MAX} characters, not 10000"),
}


@pytest.mark.parametrize("kind", BAD_SERIALS)
def test_a_bad_serial_with_unit_is_a_usage_error(kind: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--unit with an empty, blank, whitespace-holding, control-holding or over-long serial exits 2
    with one line (the serial escaped), and no record or store is made."""
    serial, said = BAD_SERIALS[kind]
    records = tmp_path / "records"
    args = ["run", str(_recipe(tmp_path)), "--sim", "--unit", serial, "--json-out", str(records)]
    code, out, err = _main(capsys, *args)
    assert code == 2 and said in err
    assert "\x1b" not in err + out and len(err.strip().splitlines()[-1]) < 300
    assert not records.exists()


@pytest.mark.parametrize("kind", [kind for kind, (serial, _) in BAD_SERIALS.items() if "\n" not in serial])
def test_a_bad_serial_in_a_units_file_is_a_usage_error_at_its_line(
    kind: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The same serial in --units-from exits 2 naming file:line (a field's surrounding spaces are the
    file's layout, so a blank serial is an empty one; a line break ends the line: that case is 'space')."""
    serial, said = BAD_SERIALS[kind]
    if not serial.strip():
        said = "cannot be empty"
    units = tmp_path / "units.txt"
    units.write_text(f"# serial, lot\nSN0001, LOT-1\n{serial}, LOT-1\n", encoding="utf-8")
    code, _, err = _main(capsys, "run", str(_recipe(tmp_path)), "--sim", "--units-from", str(units))
    assert code == 2
    assert f"{units}:3: serial " in err and said in err
    assert len(err.strip().splitlines()) == 1


def test_a_lot_with_a_control_character_in_a_units_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A lot in the units file is a name: a control character in it exits 2 at its line."""
    units = tmp_path / "units.txt"
    units.write_text("SN0001, LOT\x1b[2J\n")
    code, _, err = _main(capsys, "run", str(_recipe(tmp_path)), "--sim", "--units-from", str(units))
    assert code == 2 and f"{units}:1: lot 'LOT\\x1b[2J'" in err


@pytest.mark.parametrize(
    "serial", [".", "..", "a/b", "../../etc/passwd", "%2F", "é" * SERIAL_MAX, "\U0001d518" * SERIAL_MAX]
)
def test_every_accepted_serial_has_a_record_file_of_its_own(
    serial: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A serial that is a path element, holds a slash or encodes to more than a file name may hold is
    still run, and its record lands in a file of its own inside --json-out."""
    assert serial_problem(serial) is None
    records = tmp_path / "records"
    others = ["a_b", "%252F"]  # what a careless encoding would confuse with 'a/b' and '%2F'
    args = ["run", str(_recipe(tmp_path)), "--sim", "--json-out", str(records), "--unit", serial]
    code, _, err = _main(capsys, *args, *(a for o in others for a in ("--unit", o)))
    assert code == 0, err
    files = sorted(records.glob("*.json"))
    assert all(f.parent == records for f in files)
    assert sorted(json.loads(f.read_text())["serial"] for f in files) == sorted([serial, *others])


# -- the recipe's own pattern ----------------------------------------------------------------------


def test_a_recipe_serial_pattern_admits_matching_serials(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """With product.serial_pattern, serials matching it whole run."""
    recipe = _recipe(tmp_path, "SN[0-9]{4}")
    code, _, err = _main(capsys, "run", str(recipe), "--sim", "--unit", "SN0001", "--unit", "SN0002")
    assert code == 0, err


@pytest.mark.parametrize("serial", ["SN01", "SN00012", "XSN0001", "sn0001"])
def test_a_serial_not_matching_the_recipe_pattern_is_a_usage_error(
    serial: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A serial the pattern does not match whole exits 2 naming the serial and the pattern, before any
    unit runs (the good serial before it is not run either)."""
    recipe = _recipe(tmp_path, "SN[0-9]{4}")
    records = tmp_path / "records"
    args = ["run", str(recipe), "--sim", "--json-out", str(records), "--unit", "SN0001", "--unit", serial]
    code, _, err = _main(capsys, *args)
    assert code == 2
    assert f"--unit: serial '{serial}' does not match the recipe's serial_pattern 'SN[0-9]{{4}}'" in err
    assert not records.exists()


def test_a_serial_pattern_that_is_not_a_regex_is_a_recipe_error_at_its_position(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """validate reports a serial_pattern that does not compile at its line and column; run refuses it."""
    recipe = _recipe(tmp_path, "SN[0-9")
    code, out, _ = _main(capsys, "validate", str(recipe))
    assert code == 1
    assert f"{recipe}:3:40: error: serial_pattern 'SN[0-9' is not a regular expression" in out
    assert out.rstrip().endswith("[serial-pattern]")
    code, _, err = _main(capsys, "run", str(recipe), "--sim", "--unit", "SN0001")
    assert code == 1 and "[serial-pattern]" in err


# -- names ---------------------------------------------------------------------------------------------------


NAME_OPTIONS = [
    ["units", "release", "SN1", "--decision", "done", "--by", "{}"],
    ["units", "release", "SN1", "--decision", "done", "--by", "A. Supervisor", "--note", "{}"],
    ["recipe", "release", "workflows/phone-wim.yaml", "--by", "{}"],
    ["units", "list", "--lot", "{}"],
    ["run", "workflows/phone-wim.yaml", "--sim", "--unit", "SN1", "--operator", "{}"],
    ["run", "workflows/phone-wim.yaml", "--sim", "--unit", "SN1", "--lot", "{}"],
    ["run", "workflows/phone-wim.yaml", "--sim", "--unit", "SN1", "--station", "{}"],
]
BAD_NAMES = {"empty": "", "blank": "  ", "newline": "A\nB", "ansi": "A\x1b[2JB", "tab": "A\tB", "long": "N" * 1001}


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("command", NAME_OPTIONS, ids=lambda c: " ".join(a for a in c if a.startswith("--"))[-20:])
def test_a_bad_name_is_a_usage_error(
    command: list[str], name: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--by, --note, --operator, --lot and --station refuse an empty, blank, control-holding or over-long
    name with exit 2 and one line, before any store is opened."""
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    args = [a.format(BAD_NAMES[name]) if a == "{}" else a for a in command]
    code, _, err = _main(capsys, *args, "--store", store)
    assert code == 2
    assert "error: argument --" in err and "\x1b" not in err
    assert not (tmp_path / "store.db").exists()


def test_a_name_keeps_its_inner_spaces_and_loses_its_outer_ones(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """'  A. Supervisor ' is audited as 'A. Supervisor'."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    recipe = Path(__file__).resolve().parent.parent / "workflows/phone-wim.yaml"
    code, out, err = _main(capsys, "recipe", "release", str(recipe), "--by", "  A. Supervisor ", "--store", store)
    assert code == 0, err
    assert "released for production by A. Supervisor\n" in out


@pytest.mark.parametrize("verb", [["units", "show"], ["units", "release"]])
def test_the_store_verbs_refuse_a_serial_that_is_not_one(
    verb: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """units show and units release take a serial by the same rule as run: a line break or an escape in
    it exits 2 before the store is looked for."""
    extra = ["--decision", "done", "--by", "A. Supervisor"] if verb[1] == "release" else []
    store = f"sqlite:///{tmp_path / 'store.db'}"
    code, _, err = _main(capsys, *verb, "SN1\n\x1b[2J", *extra, "--store", store)
    assert code == 2 and "argument SERIAL: 'SN1\\n\\x1b[2J': a serial cannot hold whitespace" in err
    assert not (tmp_path / "store.db").exists()
