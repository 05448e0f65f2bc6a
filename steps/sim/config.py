"""The simulated line's configuration (``--sim-config FILE``), checked against the recipe.

Every unknown key, stage, image, lifecycle state or identity kind is a ValueError saying where it
is and what was probably meant. The keys are described in docs/sim.md (a test holds the two to
agreement through ``TOP_KEYS``, ``UNIT_KEYS``, ``STARTS_WITH_KEYS`` and ``RF_KEYS``).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.diagnostics import did_you_mean
from engine.flow import Flow, Image
from engine.inputs import ConfigError
from steps.common.identities import IDENTITY_KINDS, AllocatorConfig
from steps.hardware.config import (
    SECONDS_MAX,
    allocator_config,
    arrivals_value,
    config_keys,
    config_mapping,
    config_number,
)
from steps.hardware.unit import BOOTED

RESOURCES = ("identities", "label_printer", "rf_tester", "meter", "image_store")
TOP_KEYS = (
    "arrivals",
    "units",
    "unsigned",
    "os_versions",
    "offline",
    "boot_s",
    "allocator",
    "rf",
    "state_dir",
    "image_kib",
    "usb_mb_s",
    "rf_noise",
    "rf_failure_rate",
    "boot_banner",
)
UNIT_KEYS = (
    "missing",
    "fail",
    "hang",
    "measurements",
    "corrupt",
    "lifecycle",
    "identities",
    "wifi",
    "capabilities",
    "starts_with",
    "boot_banner",
)
STARTS_WITH_KEYS = ("os", "images")
RF_KEYS = ("region", "target_power_dbm")
BANNER_FIELDS = ("serial", "image", "version")
"""What a boot banner may print of the unit: its serial, the image it boots and that image's OS version."""
DEFAULT_BOOT_BANNER = "[sim] {serial} booting {image} {version}"
BANNER_MAX = 4096
"""The longest boot banner template, in characters (a console line buffer holds 4 KiB)."""

IMAGE_KIB_MAX = 65536
"""The largest simulated image: 64 MiB is plenty to see a transfer take time, and fits in memory."""
FAILS_MAX = 1000
"""The most failing attempts a stage can be told to have (more than any retry count)."""
USB_MB_S_MAX = 100_000.0
NOISE_MAX = 1000.0
POWER_DBM = (-50.0, 50.0)
"""The RF target powers a simulated tester can be set to."""


@dataclass(frozen=True)
class Storage:
    """What a unit's storage holds when it arrives: an OS image, and images installed on it."""

    os: Image | None = None
    images: tuple[Image, ...] = ()


@dataclass(frozen=True)
class UnitFaults:
    """One unit's faults and overrides, and the state it arrives in."""

    missing: bool = False
    fail: Mapping[str, int] = field(default_factory=dict)
    """Stage id -> how many of its first attempts fail."""
    hang: Mapping[str, float] = field(default_factory=dict)
    """Stage id -> seconds the unit stays silent at the start of each attempt."""
    measurements: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    """(stage id, measurement name) -> the value the sim reports instead of its own."""
    corrupt: frozenset[str] = frozenset()
    """Stages whose storage writes read back a wrong hash."""
    lifecycle: str | None = None
    identities: Mapping[str, str] = field(default_factory=dict)
    wifi: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    starts_with: Storage = field(default_factory=Storage)
    boot_banner: str | None = None
    """The lines this unit prints when it boots, before ``boot complete``; None: the line's."""


@dataclass(frozen=True)
class SimConfig:
    units: Mapping[str, UnitFaults] = field(default_factory=dict)
    unsigned: frozenset[str] = frozenset()
    os_versions: Mapping[str, str] = field(default_factory=dict)
    offline: frozenset[str] = frozenset()
    boot_s: float = 0.0
    image_kib: int = 256
    """Size of each simulated image file."""
    usb_mb_s: float = 40.0
    """Simulated USB transfer rate (0: as fast as the host sends)."""
    rf_noise: float = 1.0
    """Scale of the radio tester's measurement noise."""
    rf_failure_rate: float = 0.0
    """Fraction of radio tester measurements that fail (the instrument reports an error)."""
    allocator: AllocatorConfig = field(default_factory=AllocatorConfig)
    rf_region: str | None = None
    rf_target_power_dbm: float | None = None
    state_dir: str | None = None
    arrivals: str | None = None
    """How the simulated station's units arrive (``plug``: plugged in at ``--sim-every``'s rate)."""
    boot_banner: str = DEFAULT_BOOT_BANNER
    """The lines every unit prints when it boots, before ``boot complete`` (fields: ``BANNER_FIELDS``)."""

    def unit(self, serial: str) -> UnitFaults:
        return self.units.get(serial, _NO_FAULTS)


_NO_FAULTS = UnitFaults()
SIM = "sim config"


class _Checker:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        return config_mapping(value, where, SIM)

    def keys(self, value: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
        config_keys(value, allowed, where, SIM)

    def name(self, value: Any, known: Iterable[str], what: str, where: str) -> str:
        known = tuple(known)
        if value not in known:
            raise ConfigError(
                f"sim config: {where}: no {what} '{value}' in recipe '{self.flow.recipe}'"
                f"{did_you_mean(str(value), known)}",
                f"{where}.{value}",
            )
        return str(value)

    def names(self, value: Any, known: Iterable[str], what: str, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise ConfigError(f"sim config: {where} must be a list of {what} names", where)
        return tuple(self.name(v, known, what, where) for v in value)

    def number(
        self, value: Any, where: str, *, integer: bool = False, minimum: float = 0, maximum: float = SECONDS_MAX
    ) -> Any:
        """A finite number (an integer if told) within ``minimum``..``maximum``."""
        return config_number(value, where, int if integer else float, minimum, maximum, config=SIM)

    def strings(self, value: Any, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str) or not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"sim config: {where} must be a list of strings", where)
        return tuple(value)

    def flag(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(f"sim config: {where} must be true or false, not {value!r}", where)
        return value

    def unit(self, serial: str, raw: Any) -> UnitFaults:
        where = f"units.{serial}"
        spec = self.mapping(raw, where)
        self.keys(spec, UNIT_KEYS, where)
        stages = self.flow.stages
        fail = {
            self.name(k, stages, "stage", f"{where}.fail"): self.number(
                v, f"{where}.fail.{k}", integer=True, maximum=FAILS_MAX
            )
            for k, v in self.mapping(spec.get("fail"), f"{where}.fail").items()
        }
        hang = {
            self.name(k, stages, "stage", f"{where}.hang"): self.number(v, f"{where}.hang.{k}")
            for k, v in self.mapping(spec.get("hang"), f"{where}.hang").items()
        }
        lifecycle = spec.get("lifecycle")
        banner = spec.get("boot_banner")
        return UnitFaults(
            missing=self.flag(spec.get("missing", False), f"{where}.missing"),
            fail=fail,
            hang=hang,
            measurements=self.measurements(spec.get("measurements"), f"{where}.measurements"),
            corrupt=frozenset(self.names(spec.get("corrupt"), stages, "stage", f"{where}.corrupt")),
            lifecycle=None
            if lifecycle is None
            else self.name(lifecycle, self.flow.lifecycle, "lifecycle state", f"{where}.lifecycle"),
            identities=self.identities(spec.get("identities"), f"{where}.identities"),
            wifi=self.strings(spec.get("wifi"), f"{where}.wifi"),
            capabilities=self.strings(spec.get("capabilities"), f"{where}.capabilities"),
            starts_with=self.storage(spec.get("starts_with"), f"{where}.starts_with"),
            boot_banner=None if banner is None else self.banner(banner, f"{where}.boot_banner"),
        )

    def measurements(self, raw: Any, where: str) -> dict[tuple[str, str], Any]:
        measurements: dict[tuple[str, str], Any] = {}
        for key, value in self.mapping(raw, where).items():
            stage, dot, name = str(key).partition(".")
            if not dot or not name:
                raise ConfigError(f"sim config: {where}: '{key}' must be STAGE.MEASUREMENT", f"{where}.{key}")
            measurements[self.name(stage, self.flow.stages, "stage", where), name] = value
        return measurements

    def identities(self, raw: Any, where: str) -> dict[str, str]:
        identities = self.mapping(raw, where)
        for kind, value in identities.items():
            self.name(kind, IDENTITY_KINDS, "identity kind", where)
            if not isinstance(value, str):
                raise ConfigError(f"sim config: {where}.{kind} must be a string", f"{where}.{kind}")
        return dict(identities)

    def storage(self, raw: Any, where: str) -> Storage:
        """``starts_with``: the OS image on the unit's storage and the images installed on it."""
        spec = self.mapping(raw, where)
        self.keys(spec, STARTS_WITH_KEYS, where)
        images = self.flow.images
        os_name = spec.get("os")
        installed = self.names(spec.get("images"), images, "image", f"{where}.images")
        if os_name is None:
            if installed:
                raise ConfigError(
                    f"sim config: {where}.images are installed on an OS: name the OS image in {where}.os",
                    f"{where}.images",
                )
            return Storage()
        if not isinstance(os_name, str):
            raise ConfigError(
                f"sim config: {where}.os must name the image on the unit's storage, one of: "
                f"{', '.join(images) or '(the recipe has no images)'}",
                f"{where}.os",
            )
        chosen = images[self.name(os_name, images, "image", f"{where}.os")]
        return Storage(os=chosen, images=tuple(images[name] for name in installed))

    def banner(self, value: Any, where: str) -> str:
        """A boot banner template: text whose only fields are ``BANNER_FIELDS``, never the line ``boot complete``."""
        if not isinstance(value, str):
            raise ConfigError(f"sim config: {where} must be text, not {type(value).__name__}", where)
        if len(value) > BANNER_MAX:
            raise ConfigError(f"sim config: {where} is longer than {BANNER_MAX} characters", where)
        try:
            parts = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(value) if name is not None]
        except ValueError as exc:
            raise ConfigError(f"sim config: {where}: {exc} (a brace itself is written {{{{ or }}}})", where) from None
        shown = ", ".join(f"{{{f}}}" for f in BANNER_FIELDS)
        for name, spec, conv in parts:
            if name not in BANNER_FIELDS or spec or conv:
                raise ConfigError(
                    f"sim config: {where}: it can print {shown}, not {{{name}}}{did_you_mean(name, BANNER_FIELDS)}",
                    where,
                )
        if BOOTED in (line.strip() for line in value.splitlines()):
            raise ConfigError(
                f"sim config: {where}: the unit prints the line '{BOOTED}' itself, after the banner "
                "(the station stops reading there)",
                where,
            )
        return value.strip("\n")

    def allocator(self, raw: Any) -> AllocatorConfig:
        return allocator_config(raw, "allocator", config=SIM)


def parse_config(raw: Mapping[str, Any] | None, flow: Flow) -> SimConfig:
    """The checked configuration; ValueError for anything unknown or malformed."""
    check = _Checker(flow)
    top = check.mapping(raw, "the top level")
    check.keys(top, TOP_KEYS, "the top level")
    units = {str(s): check.unit(str(s), spec) for s, spec in check.mapping(top.get("units"), "units").items()}
    os_versions = check.mapping(top.get("os_versions"), "os_versions")
    for image, version in os_versions.items():
        check.name(image, flow.images, "image", "os_versions")
        if not isinstance(version, str):
            raise ConfigError(
                f'sim config: os_versions.{image} must be a string (quote it: "{version}")', f"os_versions.{image}"
            )
    rf = check.mapping(top.get("rf"), "rf")
    check.keys(rf, RF_KEYS, "rf")
    target = rf.get("target_power_dbm")
    state_dir = top.get("state_dir")
    return SimConfig(
        units=units,
        unsigned=frozenset(check.names(top.get("unsigned"), flow.images, "image", "unsigned")),
        os_versions=dict(os_versions),
        offline=frozenset(check.names(top.get("offline"), RESOURCES, "resource", "offline")),
        boot_s=check.number(top.get("boot_s", 0.0), "boot_s"),
        image_kib=check.number(top.get("image_kib", 256), "image_kib", integer=True, minimum=1, maximum=IMAGE_KIB_MAX),
        usb_mb_s=check.number(top.get("usb_mb_s", 40.0), "usb_mb_s", maximum=USB_MB_S_MAX),
        rf_noise=check.number(top.get("rf_noise", 1.0), "rf_noise", maximum=NOISE_MAX),
        rf_failure_rate=check.number(top.get("rf_failure_rate", 0.0), "rf_failure_rate", maximum=1),
        allocator=check.allocator(top.get("allocator")),
        rf_region=None if rf.get("region") is None else str(rf["region"]),
        rf_target_power_dbm=None
        if target is None
        else check.number(target, "rf.target_power_dbm", minimum=POWER_DBM[0], maximum=POWER_DBM[1]),
        state_dir=None if state_dir is None else str(state_dir),
        arrivals=arrivals_value(top.get("arrivals"), SIM),
        boot_banner=check.banner(top.get("boot_banner", DEFAULT_BOOT_BANNER), "boot_banner"),
    )
