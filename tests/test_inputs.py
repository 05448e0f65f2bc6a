"""What `floorflow run` reads besides the recipe: files that are not text, configs with values out of
range, each refused as a usage error (exit 2) with one line naming the file (and the value's
line:col), before the store is opened or a unit is touched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from engine.inputs import MAX_INPUT_BYTES, check_input_file, config_position, read_input_text
from engine.yamlload import load_text
from steps.hardware.config import serial_format_problem

ROOT = Path(__file__).resolve().parent.parent
THERMOSTAT = str(ROOT / "workflows/sphere-thermostat.yaml")


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["run", *args])
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err  # one line, whatever the input held
    return code, err


# -- input files that are not text files --------------------------------------------------------------


def _not_utf8(tmp_path: Path) -> Path:
    path = tmp_path / "latin1.txt"
    path.write_bytes("SN1\nSN\xe92\n".encode("latin-1"))
    return path


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "a-directory"
    path.mkdir()
    return path


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "a-fifo"
    os.mkfifo(path)
    return path


def _too_big(tmp_path: Path) -> Path:
    path = tmp_path / "big.txt"
    path.write_text("SN1\n" * (MAX_INPUT_BYTES // 4 + 1))
    return path


BAD_FILES = {
    "not-utf8": (_not_utf8, "not UTF-8 text"),
    "directory": (_directory, "is a directory, not a regular file"),
    "fifo": (_fifo, "is a FIFO, not a regular file"),
    "device": (lambda tmp_path: Path("/dev/zero"), "is a character device, not a regular file"),
    "too-big": (_too_big, f"is larger than {MAX_INPUT_BYTES} bytes"),
    "missing": (lambda tmp_path: tmp_path / "nothing-here", "no such file"),
}
OPTIONS = {
    "--units-from": ["--sim"],
    "--answers": ["--sim", "--unit", "SN1"],
    "--sim-config": ["--sim", "--unit", "SN1"],
    "--hardware": ["--unit", "SN1"],
}


@pytest.mark.parametrize("kind", BAD_FILES)
@pytest.mark.parametrize("option", OPTIONS)
def test_an_input_file_that_is_not_a_text_file_is_a_usage_error(
    option: str, kind: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Every file option of run, given a non-UTF-8 file, a directory, a FIFO, a device, an oversized
    file or nothing, exits 2 with one line naming the file and what it is (a FIFO is never opened)."""
    make, said = BAD_FILES[kind]
    path = make(tmp_path)
    if kind == "not-utf8" and option != "--units-from":
        path = path.rename(path.with_suffix(".yaml"))
    records = tmp_path / "records"
    code, err = _run(capsys, THERMOSTAT, *OPTIONS[option], option, str(path), "--json-out", str(records))
    assert code == 2
    assert str(path) in err and said in err
    assert not records.exists()  # refused before the store is opened


def test_a_units_file_not_utf8_names_its_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The byte that is not UTF-8 is named by its line."""
    code, err = _run(capsys, THERMOSTAT, "--sim", "--units-from", str(_not_utf8(tmp_path)))
    assert code == 2 and "latin1.txt:2: not UTF-8 text" in err


@pytest.mark.parametrize("option", ["--units-from", "--sim-config"])
def test_an_unreadable_input_file_is_a_usage_error(
    option: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A file this process may not read exits 2 naming it. (The tests may run as root, who reads
    anything: the refusal is made by the opening of that one file, however the reader opens it.)"""
    path = tmp_path / "secret.yaml"
    path.write_text("SN1\n" if option == "--units-from" else "boot_s: 0\n")

    def refusing(real: Any) -> Any:
        def opener(file: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(file, (str, os.PathLike)) and Path(file) == path:
                raise PermissionError(13, "Permission denied", str(path))
            return real(file, *args, **kwargs)

        return opener

    monkeypatch.setattr("engine.inputs.open", refusing(open), raising=False)
    monkeypatch.setattr("engine.yamlload.open", refusing(open), raising=False)
    monkeypatch.setattr(os, "open", refusing(os.open))
    code, err = _run(capsys, THERMOSTAT, "--sim", "--unit", "SN0", option, str(path))
    assert code == 2
    assert f"{path}: cannot be read: Permission denied" in err


def test_input_checks_follow_links(tmp_path: Path) -> None:
    """A link to a device is the device; a link to a regular file is that file."""
    (tmp_path / "to-zero").symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="character device"):
        check_input_file(tmp_path / "to-zero")
    (tmp_path / "units.txt").write_text("SN1\n")
    (tmp_path / "to-units").symlink_to(tmp_path / "units.txt")
    assert read_input_text(tmp_path / "to-units") == "SN1\n"


# -- config values out of range, at their position ------------------------------------------------------------


SIM_VALUES = [
    ("image_kib: 100000000\n", "1:12", "image_kib must be a whole number >= 1 and <= 65536"),
    ("image_kib: 1" + "0" * 400 + "\n", "1:12", "image_kib must be a whole number"),
    ("boot_s: .nan\n", "1:9", "boot_s must be a number >= 0 and <= 3600, not nan"),
    ("boot_s: .inf\n", "1:9", "boot_s must be a number >= 0 and <= 3600, not inf"),
    ("boot_s: 1e400\n", "1:9", "not inf"),
    ("usb_mb_s: -1\n", "1:11", "usb_mb_s must be a number >= 0"),
    ("rf_failure_rate: 1.5\n", "1:18", "rf_failure_rate must be a number >= 0 and <= 1"),
    ("rf_noise: true\n", "1:11", "rf_noise must be a number"),
    ("rf:\n  target_power_dbm: 1e300\n", "2:21", "rf.target_power_dbm must be a number >= -50 and <= 50"),
    ("units:\n  SN.1:\n    hang: {rf_cal_2g4: .inf}\n", "3:24", "units.SN.1.hang.rf_cal_2g4 must be a number"),
    ("units:\n  SN1:\n    fail: {rf_cal_2g4: 100000000000000000000}\n", "3:24", "units.SN1.fail.rf_cal_2g4"),
    ("units:\n  SN1:\n    fail: {rf_cal_2g5: 1}\n", "3:24", "no stage 'rf_cal_2g5'"),
    ("units:\n  SN1:\n    hng: {}\n", "3:5", "unknown key 'hng' in units.SN1 (did you mean 'hang'?)"),
    ("allocator:\n  imei_last: 1e400\n", "2:14", "allocator.imei_last must be a whole number"),
    ("allocator: {serial_format: '{n:>1000000000}'}\n", "1:28", "makes serials too long"),
    ("allocator: {serial_format: '{n:{n}}'}\n", "1:28", "one given by a field"),
    ("allocator: {serial_format: 'SN {n}'}\n", "1:28", "it makes 'SN 1': a serial cannot hold whitespace"),
    ("allocator: {serial_format: '" + "X" * 70 + "{n}'}\n", "1:28", "a serial is at most 64 characters"),
    ("allocator: {serial_format: 'SN'}\n", "1:28", "it must hold the running number {n}"),
]


@pytest.mark.parametrize(("text", "where", "message"), SIM_VALUES, ids=[t for t, _, _ in SIM_VALUES])
def test_a_sim_config_value_out_of_range_is_a_usage_error_at_its_position(
    text: str, where: str, message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A simulation config value that is not finite, not of its type or out of its range (a gigabyte
    image, a boot of 1e400 s, a serial format making gigabyte serials) exits 2 at file:line:col."""
    config = tmp_path / "sim.yaml"
    config.write_text(text)
    code, err = _run(capsys, THERMOSTAT, "--sim", "--sim-config", str(config), "--unit", "SN1")
    assert code == 2
    assert f"{config}:{where}: sim config: " in err and message in err


STATION_VALUES = [
    ("usb: {vid: 0x10000}\n", "1:12", "usb.vid must be a whole number >= 0 and <= 65535"),
    ("usb: {timeout_s: .nan}\n", "1:18", "usb.timeout_s must be a number"),
    ("console: {baudrate: 1e400}\n", "1:21", "console.baudrate must be a whole number"),
    ('slots:\n  "1": {usb_port: "1-1", rf_port: 100000000000000000000}\n', "2:35", "slots.1.rf_port"),
    ('slots:\n  "0": {usb_port: "1-1"}\n', "2:8", "slots.0 must be a whole number >= 1"),
    ("identities: {tac: '٣٥٦٩٣٨٠٣'}\n", "1:19", "identities.tac must be 8 digits"),
    ("identities: {serial_format: '{n:099999999}'}\n", "1:29", "makes serials too long"),
    ("rf_testr: x\n", "1:1", "unknown key 'rf_testr'"),
]


@pytest.mark.parametrize(("text", "where", "message"), STATION_VALUES, ids=[t for t, _, _ in STATION_VALUES])
def test_a_station_config_value_out_of_range_is_a_usage_error_at_its_position(
    text: str, where: str, message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The station's wiring is checked the same way: type, range, finite, at file:line:col."""
    config = tmp_path / "station.yaml"
    config.write_text(text)
    code, err = _run(capsys, THERMOSTAT, "--hardware", str(config), "--unit", "SN1")
    assert code == 2
    assert f"{config}:{where}: station config: " in err and message in err


@pytest.mark.parametrize(
    ("fmt", "fine"),
    [
        ("SIM{n:08d}", True),
        ("X1-{n:05d}", True),
        ("{n}", True),
        ("{n:>1000000000}", False),
        ("{n:.99999999999}", False),
        ("{n!r:{n}}", False),
        ("{m}", False),
        ("{n.__class__}", False),
        ("{n:c}", False),
        ("{", False),
        ("SN\t{n}", False),
        (12, False),
    ],
)
def test_serial_format_is_checked_before_anything_is_formatted(fmt: object, fine: bool) -> None:
    """A serial format is refused when it could make a serial that is not one (too long, whitespace,
    control characters) or has another field; its widths are read, never tried."""
    assert (serial_format_problem(fmt) is None) is fine


def test_config_position_finds_keys_holding_dots() -> None:
    """A dotted path finds the value of a key that holds dots itself (a serial 'SN.1')."""
    data = load_text("units:\n  SN.1:\n    hang: {rf.x: 1}\noffline: [a, b]\n", "c.yaml")
    assert str(config_position(data, "units.SN.1.hang.rf.x")) == "c.yaml:3:18"
    assert str(config_position(data, "units.SN.1.hang.rf.x", of_key=True)) == "c.yaml:3:12"
    assert str(config_position(data, "offline.b")) == "c.yaml:4:14"
    assert str(config_position(data, "units.nothing")) == "c.yaml:2:3"
