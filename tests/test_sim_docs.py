"""docs/sim.md and the sim config's parser agree: every key its tables document is accepted with the
example it gives, every key the parser knows is documented, and a misspelt one is refused naming it.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from engine.inputs import ConfigError
from engine.recipe.check import load_flow
from engine.registry import Registry
from steps.common.identities import AllocatorConfig
from steps.sim.config import RF_KEYS, STARTS_WITH_KEYS, TOP_KEYS, UNIT_KEYS, parse_config

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "sim.md").read_text()
FLOW = load_flow(ROOT / "workflows" / "phone-wim.yaml", Registry.discover())
"""The recipe the document's examples name the stages and images of."""
HEADER = "| key | type | default | example | what it does |"
SERIAL = "SN1"


def _load(text: str) -> object:
    """YAML as the sim config file is read: plain data, no tags."""
    return YAML(typ="safe", pure=True).load(text)


def _documented() -> dict[str, Any]:
    """Each key of the document's key tables (``units.SERIAL.fail``), with its example value."""
    keys: dict[str, Any] = {}
    for table in DOC.split(HEADER)[1:]:
        rows = table.strip().splitlines()[1:]  # past the |---| line
        for row in rows:
            if not row.startswith("|"):
                break
            cells = [cell.strip() for cell in row.strip("|").split(" | ")]
            key, example = cells[0].strip("`"), cells[3].strip("`")
            assert key not in keys, f"{key} is documented twice"
            keys[key] = _load(example)
    return keys


DOCUMENTED = _documented()


def _parser_keys() -> set[str]:
    """Every key the parser knows, as the document names it."""
    nested = {"units", "rf", "allocator"}
    unit = {f"units.SERIAL.{k}" for k in UNIT_KEYS if k != "starts_with"}
    return (
        {k for k in TOP_KEYS if k not in nested}
        | {f"rf.{k}" for k in RF_KEYS}
        | {f"allocator.{f.name}" for f in fields(AllocatorConfig)}
        | unit
        | {f"units.SERIAL.starts_with.{k}" for k in STARTS_WITH_KEYS}
    )


def _put(config: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """``config`` with ``value`` at the dotted ``key`` (SERIAL: a unit's serial)."""
    *parents, leaf = [SERIAL if part == "SERIAL" else part for part in key.split(".")]
    here = config
    for part in parents:
        here = here.setdefault(part, {})
    here[leaf] = value
    return config


def _config(key: str, value: Any) -> dict[str, Any]:
    return _put({}, key, value)


def _merged(keys: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, value in keys.items():
        _put(config, key, value)
    return config


def test_every_documented_key_is_one_the_parser_knows_and_the_reverse() -> None:
    """The keys of docs/sim.md's tables are exactly the keys the sim config's parser takes."""
    assert set(DOCUMENTED) == _parser_keys()


def test_every_documented_example_is_accepted() -> None:
    """A config holding every documented key with its table's example is accepted for the example recipe."""
    config = parse_config(_merged(DOCUMENTED), FLOW)
    assert config.unit(SERIAL).starts_with.os is not None and config.boot_banner != config.unit(SERIAL).boot_banner


@pytest.mark.parametrize("key", sorted(DOCUMENTED))
def test_each_documented_key_alone_is_accepted(key: str) -> None:
    """Each documented key is accepted with its example (starts_with.images with the OS it is installed on)."""
    config = _config(key, DOCUMENTED[key])
    if key == "units.SERIAL.starts_with.images":
        config["units"][SERIAL]["starts_with"]["os"] = DOCUMENTED["units.SERIAL.starts_with.os"]
    parse_config(config, FLOW)


@pytest.mark.parametrize("key", sorted(DOCUMENTED))
def test_a_misspelt_key_is_refused_with_a_did_you_mean(key: str) -> None:
    """A documented key with its last letter doubled is refused as unknown, naming the key meant."""
    leaf = key.rsplit(".", 1)[-1]
    misspelt = key + leaf[-1]
    with pytest.raises(ConfigError) as caught:
        parse_config(_config(misspelt, DOCUMENTED[key]), FLOW)
    assert f"unknown key '{leaf}{leaf[-1]}'" in str(caught.value)
    assert f"(did you mean '{leaf}'?)" in str(caught.value)
    assert caught.value.of_key


def test_the_documented_example_file_is_accepted() -> None:
    """The example config file of docs/sim.md is accepted for workflows/phone-wim.yaml, as it says."""
    example = DOC.split("An example, for `workflows/phone-wim.yaml`:")[1]
    block = re.findall(r"```yaml\n(.*?)```", example, re.S)[0]
    config = parse_config(_load(block), FLOW)
    assert config.unit("SN0002").missing and config.unit("SN0003").lifecycle == "Provisioned"
