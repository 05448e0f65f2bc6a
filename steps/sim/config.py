"""The simulated line's configuration (``--sim-config FILE``), checked against the recipe.

Every unknown key, stage, image, lifecycle state or identity kind is a ValueError saying where it
is and what was probably meant. The keys are described in ``steps/sim/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.diagnostics import did_you_mean
from engine.flow import Flow
from steps.common.identities import IDENTITY_KINDS, AllocatorConfig
from steps.hardware.config import allocator_config, config_keys, config_mapping

RESOURCES = ("identities", "label_printer", "rf_tester", "meter", "image_store")
_TOP = (
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
)
_UNIT = (
    "missing",
    "fail",
    "hang",
    "measurements",
    "corrupt",
    "lifecycle",
    "identities",
    "wifi",
    "capabilities",
)
_RF = ("region", "target_power_dbm")


@dataclass(frozen=True)
class UnitFaults:
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
            raise ValueError(
                f"sim config: {where}: no {what} '{value}' in recipe '{self.flow.recipe}'"
                f"{did_you_mean(str(value), known)}"
            )
        return str(value)

    def names(self, value: Any, known: Iterable[str], what: str, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise ValueError(f"sim config: {where} must be a list of {what} names")
        return tuple(self.name(v, known, what, where) for v in value)

    def number(self, value: Any, where: str, *, integer: bool = False, minimum: float = 0) -> Any:
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
            what = "an integer" if integer else "a number"
            raise ValueError(f"sim config: {where} must be {what} >= {minimum}, not {value!r}")
        return value

    def strings(self, value: Any, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"sim config: {where} must be a list of strings")
        return tuple(value)

    def unit(self, serial: str, raw: Any) -> UnitFaults:
        where = f"units.{serial}"
        spec = self.mapping(raw, where)
        self.keys(spec, _UNIT, where)
        stages = self.flow.stages
        fail = {
            self.name(k, stages, "stage", f"{where}.fail"): self.number(v, f"{where}.fail.{k}", integer=True)
            for k, v in self.mapping(spec.get("fail"), f"{where}.fail").items()
        }
        hang = {
            self.name(k, stages, "stage", f"{where}.hang"): float(self.number(v, f"{where}.hang.{k}"))
            for k, v in self.mapping(spec.get("hang"), f"{where}.hang").items()
        }
        measurements: dict[tuple[str, str], Any] = {}
        for key, value in self.mapping(spec.get("measurements"), f"{where}.measurements").items():
            stage, dot, name = str(key).partition(".")
            if not dot or not name:
                raise ValueError(f"sim config: {where}.measurements: '{key}' must be STAGE.MEASUREMENT")
            measurements[self.name(stage, stages, "stage", f"{where}.measurements"), name] = value
        identities = self.mapping(spec.get("identities"), f"{where}.identities")
        for kind, value in identities.items():
            self.name(kind, IDENTITY_KINDS, "identity kind", f"{where}.identities")
            if not isinstance(value, str):
                raise ValueError(f"sim config: {where}.identities.{kind} must be a string")
        lifecycle = spec.get("lifecycle")
        return UnitFaults(
            missing=bool(spec.get("missing", False)),
            fail=fail,
            hang=hang,
            measurements=measurements,
            corrupt=frozenset(self.names(spec.get("corrupt"), stages, "stage", f"{where}.corrupt")),
            lifecycle=None
            if lifecycle is None
            else self.name(lifecycle, self.flow.lifecycle, "lifecycle state", f"{where}.lifecycle"),
            identities=dict(identities),
            wifi=self.strings(spec.get("wifi"), f"{where}.wifi"),
            capabilities=self.strings(spec.get("capabilities"), f"{where}.capabilities"),
        )

    def allocator(self, raw: Any) -> AllocatorConfig:
        return allocator_config(raw, "allocator", config=SIM)


def parse_config(raw: Mapping[str, Any] | None, flow: Flow) -> SimConfig:
    """The checked configuration; ValueError for anything unknown or malformed."""
    check = _Checker(flow)
    top = check.mapping(raw, "the top level")
    check.keys(top, _TOP, "the top level")
    units = {str(s): check.unit(str(s), spec) for s, spec in check.mapping(top.get("units"), "units").items()}
    os_versions = check.mapping(top.get("os_versions"), "os_versions")
    for image, version in os_versions.items():
        check.name(image, flow.images, "image", "os_versions")
        if not isinstance(version, str):
            raise ValueError(f'sim config: os_versions.{image} must be a string (quote it: "{version}")')
    rf = check.mapping(top.get("rf"), "rf")
    check.keys(rf, _RF, "rf")
    target = rf.get("target_power_dbm")
    state_dir = top.get("state_dir")
    return SimConfig(
        units=units,
        unsigned=frozenset(check.names(top.get("unsigned"), flow.images, "image", "unsigned")),
        os_versions=dict(os_versions),
        offline=frozenset(check.names(top.get("offline"), RESOURCES, "resource", "offline")),
        boot_s=float(check.number(top.get("boot_s", 0.0), "boot_s")),
        image_kib=check.number(top.get("image_kib", 256), "image_kib", integer=True, minimum=1),
        usb_mb_s=float(check.number(top.get("usb_mb_s", 40.0), "usb_mb_s")),
        rf_noise=float(check.number(top.get("rf_noise", 1.0), "rf_noise")),
        rf_failure_rate=float(check.number(top.get("rf_failure_rate", 0.0), "rf_failure_rate")),
        allocator=check.allocator(top.get("allocator")),
        rf_region=None if rf.get("region") is None else str(rf["region"]),
        rf_target_power_dbm=None if target is None else float(check.number(target, "rf.target_power_dbm", minimum=-50)),
        state_dir=None if state_dir is None else str(state_dir),
    )
