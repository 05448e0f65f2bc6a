"""Facts about the simulated product that every simulated unit shares, taken from the recipe.

The simulator builds what the recipe expects: an OS image reports the first version the recipe's
ready-to-ship checks allow, the RF settings hold the region and target power its verify stages
name. The sim config overrides either, to simulate a wrong build or a mis-programmed radio.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from engine.flow import Flow, Image
from steps.sim.config import DEFAULT_BOOT_BANNER, SimConfig

RF_LOCK_STATE = "Module1Complete"
"""From this state on, the unit refuses RF commands (Azure Sphere)."""
LOCKDOWN_STATE = "DeviceComplete"
"""From this state on, the unit refuses to change its software, settings or identities."""
RECOVERY_KIND = "recovery"
"""The image kind written by an OS recovery, which leaves the OS alone on storage (not listed as an image)."""
_DEFAULT_OS = "1.0"
_DEFAULT_REGION = "EU"
_DEFAULT_TARGET_DBM = 16.0


def image_digest(image: Image) -> str:
    """What a simulated image's bytes hash to: sha256 over its name and file."""
    return hashlib.sha256(f"{image.name}\n{image.file or ''}".encode()).hexdigest()


@dataclass(frozen=True)
class LineModel:
    lifecycle: tuple[str, ...]
    os_versions: dict[str, str]
    """Version reported by each image booted as the unit's OS."""
    image_types: dict[str, str | None]
    unsigned: frozenset[str]
    rf_region: str
    rf_target_power_dbm: float
    boot_s: float
    boot_banner: str = DEFAULT_BOOT_BANNER
    """What a unit prints when it boots, before ``boot complete`` (a template: ``config.BANNER_FIELDS``)."""

    def state_index(self, state: str | None) -> int:
        return -1 if state is None or state not in self.lifecycle else self.lifecycle.index(state)

    def reached(self, state: str | None, threshold: str) -> bool:
        """Whether ``state`` is at or past ``threshold`` (False when the lifecycle lacks it)."""
        return threshold in self.lifecycle and self.state_index(state) >= self.lifecycle.index(threshold)


def line_model(flow: Flow, config: SimConfig) -> LineModel:
    default_os = _DEFAULT_OS
    region, target = _DEFAULT_REGION, _DEFAULT_TARGET_DBM
    for stage in reversed(list(flow.stages.values())):  # the first one in route order wins
        if stage.step == "qa.ready_to_ship" and stage.params.os_versions:
            default_os = str(stage.params.os_versions[0])
        if stage.step == "rf.verify_config":
            region, target = str(stage.params.region), float(stage.params.target_power_dbm)
    return LineModel(
        lifecycle=tuple(flow.lifecycle),
        os_versions={name: config.os_versions.get(name, default_os) for name in flow.images},
        image_types={name: image.type for name, image in flow.images.items()},
        unsigned=config.unsigned,
        rf_region=config.rf_region if config.rf_region is not None else region,
        rf_target_power_dbm=config.rf_target_power_dbm if config.rf_target_power_dbm is not None else target,
        boot_s=config.boot_s,
        boot_banner=config.boot_banner,
    )
