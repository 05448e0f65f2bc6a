"""The simulation's config as a product's engineer uses it: a boot banner of the product's own, checked by a
recipe's ``boot.wait`` regex, and units that arrive in a given state (OS and images on storage, lifecycle).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from engine.flow import Flow, Image, Stage
from engine.inputs import ConfigError
from engine.outcome import StepFailed
from steps.sim import SimLine
from steps.sim.config import parse_config

BANNER_RECIPE = """\
recipe: banner-check
version: 1
stations:
  fixture: {slots: 1}
images:
  os: {file: images/os.img, kind: recovery}
stages:
  - id: recover_os
    step: device.recover
    station: fixture
    with: {image: os, timeout_s: 30}
  - id: boot
    step: boot.wait
    station: fixture
    with: {usb: true, banner: 'MyProduct OS \\d+\\.\\d+ ready', reboot: true, timeout_s: 10}
"""
LIFECYCLE = ("Blank", "Module1Complete", "DeviceComplete")
IMAGES = {
    "os": Image("os", file="images/os", kind="recovery"),
    "golden": Image("golden", file="images/golden.ffu", kind="ffu"),
    "factory_test": Image("factory_test", file="images/ftest", type="test", temporary=True),
    "app": Image("app", file="images/app"),
}
STAGES = {sid: Stage(sid, "manual.checklist") for sid in ("connect", "functional")}
FLOW = Flow("mini", 1, STAGES, tuple(STAGES), lifecycle=LIFECYCLE, images=IMAGES)


def _run_banner_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str], sim_config: str) -> tuple[int, Any]:
    recipe, config, records = tmp_path / "banner.yaml", tmp_path / "sim.yaml", tmp_path / "records"
    recipe.write_text(BANNER_RECIPE)
    config.write_text(sim_config)
    code = main(["run", str(recipe), "--sim", "--sim-config", str(config), "--unit", "SN1", "--json-out", str(records)])
    assert "Traceback" not in capsys.readouterr().err
    return code, json.loads((records / "SN1.json").read_text())


def _booted(line: SimLine, serial: str) -> str:
    """What the station reads on the unit's console when it boots it (through the USB and UART adapters)."""
    return str(line.open_unit(serial, 1).wait_boot(True, 5.0, threading.Event()))


# -- the boot banner ------------------------------------------------------------------------------------


def test_a_banner_regex_matching_the_configured_banner_ships(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A boot.wait banner regex matching the sim config's boot_banner passes, and the unit ships (exit 0)."""
    code, record = _run_banner_recipe(tmp_path, capsys, 'boot_banner: "MyProduct OS {version} ready"\n')
    assert (code, record["status"]) == (0, "shipped")


def test_a_banner_regex_not_matching_fails_naming_the_regex(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A unit printing a banner the regex does not match fails boot.wait (exit 5), the error naming the regex."""
    code, record = _run_banner_recipe(tmp_path, capsys, 'units:\n  SN1: {boot_banner: "OtherProduct {version} up"}\n')
    assert (code, record["status"]) == (5, "scrapped")
    (boot,) = [a for a in record["attempts"] if a["stage"] == "boot"]
    assert boot["outcome"] == "FAIL"
    assert boot["error"].startswith(r"the unit's console never printed /MyProduct OS \d+\.\d+ ready/")


def test_the_default_banner_fails_a_products_regex(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without a boot_banner the simulated unit prints the sim's own banner, which a product's regex does not match."""
    code, record = _run_banner_recipe(tmp_path, capsys, "{}\n")
    assert (code, record["status"]) == (5, "scrapped")


def test_a_units_banner_overrides_the_lines_and_fills_its_fields() -> None:
    """A unit's own boot_banner (several lines) wins over the line's; {serial}, {image} and {version} are
    filled in, and the console ends with the protocol's 'boot complete' line."""
    config = {
        "boot_banner": "Line OS {version}",
        "os_versions": {"os": "10.0.1"},
        "units": {
            "SN1": {"starts_with": {"os": "os"}},
            "SN2": {"starts_with": {"os": "os"}, "boot_banner": "U-Boot {{2024}}\n{serial}: {image} {version} ready\n"},
        },
    }
    line = SimLine(FLOW, config)
    try:
        assert _booted(line, "SN1") == "Line OS 10.0.1\nboot complete\n"
        line.open_unit("SN1", 1).close()
        assert _booted(line, "SN2") == "U-Boot {2024}\nSN2: os 10.0.1 ready\nboot complete\n"
    finally:
        line.close()


@pytest.mark.parametrize(
    ("banner", "message"),
    [
        ("OS {verison}", "not {verison} (did you mean 'version'?)"),
        ("OS {version:>40}", "not {version}"),
        ("OS {", "a brace itself is written {{ or }}"),
        ("ready\nboot complete", "prints the line 'boot complete' itself"),
        (["OS"], "boot_banner must be text"),
    ],
)
def test_a_bad_banner_is_refused_saying_why(banner: Any, message: str) -> None:
    """A banner with an unknown field, a format spec, a lone brace, the end-of-boot line or not text is refused."""
    for config, where in (
        ({"boot_banner": banner}, "boot_banner"),
        ({"units": {"SN1": {"boot_banner": banner}}}, "units.SN1.boot_banner"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_config(config, FLOW)
        assert message in str(caught.value) and caught.value.where == where


# -- the state a unit arrives in ------------------------------------------------------------------------


def test_a_unit_starts_with_no_os_and_cannot_boot() -> None:
    """A unit the config says nothing about arrives blank, in the first lifecycle state, and does not boot."""
    line = SimLine(FLOW, {})
    try:
        status = line.open_unit("SN1", 1).status()
        assert (status.os_version, status.images, status.lifecycle) == (None, (), "Blank")
        with pytest.raises(StepFailed, match="no OS on its storage"):
            line.device("SN1").wait_boot(True, 5.0, threading.Event())
    finally:
        line.close()


def test_a_unit_arrives_with_its_os_images_and_lifecycle() -> None:
    """starts_with puts a recovery OS (alone) and installed images on storage, lifecycle sets the state: the
    unit boots, reports them, and its storage reads back the image file's hash."""
    config = {
        "os_versions": {"os": "10.0.1"},
        "units": {
            "SN1": {"starts_with": {"os": "os", "images": ["factory_test", "app"]}, "lifecycle": "Module1Complete"}
        },
    }
    line = SimLine(FLOW, config)
    try:
        unit = line.open_unit("SN1", 1)
        status = unit.status()
        assert (status.os_version, status.images, status.temporary) == (
            "10.0.1",
            ("app", "factory_test"),
            ("factory_test",),
        )
        assert status.lifecycle == "Module1Complete"
        assert unit.storage_digest() == line.image_store.digest(IMAGES["os"])
        assert "boot complete" in _booted(line, "SN1")
    finally:
        line.close()


def test_a_full_storage_image_is_listed_among_the_units_images() -> None:
    """A unit starting with a non-recovery image holds it as a full storage write leaves it: listed as an image."""
    line = SimLine(FLOW, {"units": {"SN1": {"starts_with": {"os": "golden"}}}})
    try:
        assert line.open_unit("SN1", 1).status().images == ("golden",)
    finally:
        line.close()


def test_a_unit_seen_before_arrives_as_it_left_not_as_it_starts(tmp_path: Path) -> None:
    """With a state_dir, starts_with applies on a unit's first arrival only: at the next line it carries the
    state the last one left (here: its test image deleted, its lifecycle advanced)."""
    config = {
        "state_dir": str(tmp_path / "state"),
        "units": {"SN1": {"starts_with": {"os": "os", "images": ["factory_test"]}}},
    }
    first = SimLine(FLOW, config)
    try:
        unit = first.open_unit("SN1", 1)
        assert unit.delete_image("factory_test")
        unit.advance_lifecycle("Module1Complete")
        unit.close()
    finally:
        first.close()
    second = SimLine(FLOW, config)
    try:
        status = second.open_unit("SN1", 1).status()
        assert (status.images, status.lifecycle) == ((), "Module1Complete")
    finally:
        second.close()


@pytest.mark.parametrize(
    ("starts_with", "message", "where"),
    [
        ({"images": ["app"]}, "are installed on an OS: name the OS image in units.SN1.starts_with.os", "images"),
        ({"os": "gloden"}, "no image 'gloden' in recipe 'mini' (did you mean 'golden'?)", "os.gloden"),
        ({"os": True}, "must name the image on the unit's storage, one of: os, golden", "os"),
        ({"os": "os", "images": ["ap"]}, "no image 'ap'", "images.ap"),
        ({"os": "os", "lifecycle": "Blank"}, "unknown key 'lifecycle' in units.SN1.starts_with", "lifecycle"),
    ],
)
def test_a_bad_starting_state_is_refused_saying_why(starts_with: Any, message: str, where: str) -> None:
    """starts_with names images of the recipe, installs images only on an OS, and knows only its own keys."""
    with pytest.raises(ConfigError) as caught:
        parse_config({"units": {"SN1": {"starts_with": starts_with}}}, FLOW)
    assert message in str(caught.value)
    assert caught.value.where == f"units.SN1.starts_with.{where}"


def test_missing_must_be_true_or_false() -> None:
    """units.SERIAL.missing takes a boolean: the text 'no' is refused, not read as true."""
    with pytest.raises(ConfigError, match=r"units\.SN1\.missing must be true or false, not 'no'"):
        parse_config({"units": {"SN1": {"missing": "no"}}}, FLOW)
