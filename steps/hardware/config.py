"""The station's wiring (``floorflow run --hardware FILE``): which port each slot's unit is on.

Every key is checked; an unknown one or a malformed value is a ValueError naming its path and
what was probably meant. Paths in the file are relative to the file's directory::

    arrivals: plug                                   # how units arrive: scan (the default), plug or list
    usb: {vid: 0x045E, pid: 0x0A00, timeout_s: 30}   # the units' flashing interface
    console: {baudrate: 115200, timeout_s: 5}        # the units' serial console
    images_dir: images                               # where the recipe's image files are
    slots:                                           # per fixture slot (keys are text: quote them)
      "1": {usb_port: "1-1.1", console: /dev/ttyUSB0, rf_port: 1, meter_port: 1}
      "2": {usb_serial: "0123456789ABCDEF", console: /dev/ttyUSB1, rf_port: 2, meter_port: 2}
    rf_tester: TCPIP0::10.0.0.5::5025::SOCKET        # any VISA resource
    meter: TCPIP0::10.0.0.6::5025::SOCKET
    label_printer: 10.0.0.7:9100
    label_previews: labels                           # PNG preview of every label printed
    identities:                                      # ranges the station issues identities from
      tac: "35693803"
      imei_first: 0
      imei_last: 999999
      oui: "02:46:46"
      serial_format: "X1{n:08d}"
      journal: identities.tsv                        # every allocation, synced before it is used
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.diagnostics import did_you_mean
from engine.inputs import SERIAL_MAX, ConfigError, serial_problem
from steps.common.identities import SERIAL_LAST, AllocatorConfig


@dataclass(frozen=True)
class SlotWiring:
    usb_port: str | None = None
    usb_serial: str | None = None
    console: str | None = None
    rf_port: int | None = None
    meter_port: int | None = None


@dataclass(frozen=True)
class StationWiring:
    usb_vid: int = 0x1209
    usb_pid: int = 0xF10F
    usb_timeout_s: float = 30.0
    baudrate: int = 115200
    console_timeout_s: float = 5.0
    images_dir: Path = Path("images")
    slots: Mapping[int, SlotWiring] = field(default_factory=dict)
    rf_tester: str | None = None
    meter: str | None = None
    label_printer: str | None = None
    label_previews: Path | None = None
    identities: AllocatorConfig = field(default_factory=AllocatorConfig)
    identity_journal: Path | None = None
    arrivals: str | None = None
    """How the station's units arrive (one of ``ARRIVALS``); None: as the command line gives them."""


ARRIVALS = ("scan", "plug", "list")
"""How a station's units arrive: a serial scanned into a socket, the unit plugged into a socket (its USB
serial number read from the socket's port), or a list given to the command."""

_TOP = (
    "arrivals",
    "usb",
    "console",
    "images_dir",
    "slots",
    "rf_tester",
    "meter",
    "label_printer",
    "label_previews",
    "identities",
)


STATION = "station config"
"""What the messages of these checks name, unless told another config (the simulation's)."""

SLOTS_MAX = 1024
"""The most slots (and instrument switch ports) a fixture is taken to have."""
SECONDS_MAX = 3600.0
"""The longest timeout or wait a config may set: an hour."""
BAUD_MAX = 12_000_000
"""The fastest serial console (USB serial adapters reach 12 Mbaud)."""


def config_mapping(value: Any, where: str, config: str = STATION) -> Mapping[Any, Any]:
    """``value`` as a mapping (None: empty); ValueError naming ``config`` and ``where``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{config}: {where} must be a mapping, not {type(value).__name__}", where)
    return value


def config_keys(value: Any, allowed: Iterable[str], where: str, config: str = STATION) -> Mapping[str, Any]:
    """``value`` as a mapping holding only ``allowed`` keys; an unknown one with a did-you-mean."""
    mapping = config_mapping(value, where, config)
    allowed = tuple(allowed)
    for key in mapping:
        if key not in allowed:
            raise ConfigError(
                f"{config}: unknown key '{key}' in {where}{did_you_mean(str(key), allowed)}; "
                f"known keys: {', '.join(allowed)}",
                f"{where}.{key}" if where != "the top level" else str(key),
                of_key=True,
            )
    return mapping


def config_number(
    value: Any, where: str, kind: type = float, low: float = 0, high: float = SECONDS_MAX, config: str = STATION
) -> Any:
    """``value`` as a ``kind`` (int or float) within ``low``..``high``: never NaN nor infinite."""
    number = not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int)
    if not number or not low <= value <= high:  # NaN is never within, infinity never below ``high``
        what = "a whole number" if kind is int else "a number"
        given = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        raise ConfigError(f"{config}: {where} must be {what} >= {low:g} and <= {high:g}, not {given}", where)
    return kind(value)


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{STATION}: {where} must be text, not {value!r}", where)
    return value


def _slot(number: Any, raw: Any) -> tuple[int, SlotWiring]:
    where = f"slots.{number}"
    if isinstance(number, str) and number.isdigit():
        number = int(number)
    slot = config_number(number, where, int, 1, SLOTS_MAX)
    spec = config_keys(raw, [f.name for f in fields(SlotWiring)], where)
    wiring = SlotWiring(
        usb_port=_text(spec.get("usb_port"), f"{where}.usb_port"),
        usb_serial=_text(spec.get("usb_serial"), f"{where}.usb_serial"),
        console=_text(spec.get("console"), f"{where}.console"),
        rf_port=_port(spec.get("rf_port"), f"{where}.rf_port"),
        meter_port=_port(spec.get("meter_port"), f"{where}.meter_port"),
    )
    return slot, wiring


def _port(value: Any, where: str) -> int | None:
    return None if value is None else int(config_number(value, where, int, 1, SLOTS_MAX))


def allocator_config(raw: Any, where: str, extra: Iterable[str] = (), config: str = STATION) -> AllocatorConfig:
    """Identity ranges from a mapping; ConfigError naming ``config`` and ``where`` for anything malformed."""
    spec = config_keys(raw, [*(f.name for f in fields(AllocatorConfig)), *extra], where, config)
    made = AllocatorConfig(**{k: v for k, v in spec.items() if k not in extra})
    if not (isinstance(made.tac, str) and made.tac.isascii() and made.tac.isdigit() and len(made.tac) == 8):
        raise ConfigError(f"{config}: {where}.tac must be 8 digits in quotes, not {made.tac!r}", f"{where}.tac")
    first = config_number(made.imei_first, f"{where}.imei_first", int, 0, 999_999, config=config)
    config_number(made.imei_last, f"{where}.imei_last", int, first, 999_999, config=config)
    octets = str(made.oui).split(":")
    if len(octets) != 3 or not all(len(o) == 2 and all(c in "0123456789abcdefABCDEF" for c in o) for o in octets):
        raise ConfigError(
            f"{config}: {where}.oui must be three hex octets like 02:46:46, not {made.oui!r}", f"{where}.oui"
        )
    problem = serial_format_problem(made.serial_format)
    if problem is not None:
        raise ConfigError(
            f"{config}: {where}.serial_format {made.serial_format!r}: {problem}", f"{where}.serial_format"
        )
    return made


def serial_format_problem(text: Any) -> str | None:
    """Why ``text`` cannot make serial numbers (None: it can): each one it makes, from the first number of
    the pool to the last, must be a serial (printable, no whitespace, at most SERIAL_MAX characters).

    The format's widths are read before anything is formatted: "{n:>1000000000}" would build a gigabyte.
    """
    if not isinstance(text, str):
        return "it must be text"
    if len(text) > 4 * SERIAL_MAX:
        return f"it is longer than any serial it could make ({SERIAL_MAX} characters)"
    try:
        fields_ = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        return str(exc)
    if not fields_ or any(name != "n" for name, _, _ in fields_):
        return "it must hold the running number {n}, and no other field"
    for _, spec, _ in fields_:
        if "{" in (spec or "") or any(int(width) > SERIAL_MAX for width in _numbers(spec or "")):
            return f"a width or precision over {SERIAL_MAX}, or one given by a field, makes serials too long"
    for n in (1, SERIAL_LAST):
        try:
            made = text.format(n=n)
        except (ValueError, TypeError, OverflowError) as exc:
            return str(exc)
        problem = serial_problem(made)
        if problem is not None:
            return f"it makes {made[:SERIAL_MAX]!r}: {problem}"
    return None


def _numbers(spec: str) -> list[str]:
    """The runs of digits in a format spec (its fill character, width and precision)."""
    digits = "".join(c if c.isascii() and c.isdigit() else " " for c in spec)
    return digits.split()


def arrivals_value(value: Any, config: str = STATION) -> str | None:
    """A config's ``arrivals``: one of ``ARRIVALS``, or None when not given."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in ARRIVALS:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        raise ConfigError(
            f"{config}: arrivals must be one of {', '.join(ARRIVALS)}, not {shown}{did_you_mean(str(value), ARRIVALS)}",
            "arrivals",
        )
    return value


def _watched(arrivals: str | None, raw_slots: Mapping[Any, Any], slots: Mapping[int, SlotWiring]) -> None:
    """Units plugged in are found at their slot's USB port: with ``arrivals: plug`` every slot needs one."""
    if arrivals != "plug":
        return
    if not slots:
        raise ConfigError(
            f"{STATION}: arrivals: plug finds each unit at its slot's USB port: wire the slots "
            '(slots: {"1": {usb_port: "1-1.1"}, ...})',
            "arrivals",
        )
    for key in raw_slots:
        number = int(key) if isinstance(key, str) else key
        if slots[number].usb_port is None:
            raise ConfigError(
                f"{STATION}: slots.{key} has no usb_port: arrivals: plug finds the slot's unit at its USB port",
                f"slots.{key}",
            )


def parse_wiring(raw: Mapping[str, Any] | None, base: Path) -> StationWiring:
    """The checked wiring; relative paths are resolved against ``base`` (the file's directory)."""
    top = config_keys(raw, _TOP, "the top level")
    usb = config_keys(top.get("usb"), ("vid", "pid", "timeout_s"), "usb")
    console = config_keys(top.get("console"), ("baudrate", "timeout_s"), "console")
    raw_slots = config_mapping(top.get("slots"), "slots")
    slots = dict(_slot(n, spec) for n, spec in raw_slots.items())
    arrivals = arrivals_value(top.get("arrivals"))
    _watched(arrivals, raw_slots, slots)
    identities = top.get("identities")
    journal = (
        _text((identities or {}).get("journal"), "identities.journal") if isinstance(identities, Mapping) else None
    )
    previews = _text(top.get("label_previews"), "label_previews")
    return StationWiring(
        usb_vid=config_number(usb.get("vid", 0x1209), "usb.vid", int, 0, 0xFFFF),
        usb_pid=config_number(usb.get("pid", 0xF10F), "usb.pid", int, 0, 0xFFFF),
        usb_timeout_s=config_number(usb.get("timeout_s", 30.0), "usb.timeout_s"),
        baudrate=config_number(console.get("baudrate", 115200), "console.baudrate", int, 50, BAUD_MAX),
        console_timeout_s=config_number(console.get("timeout_s", 5.0), "console.timeout_s"),
        images_dir=base / (_text(top.get("images_dir"), "images_dir") or "images"),
        slots=slots,
        rf_tester=_text(top.get("rf_tester"), "rf_tester"),
        meter=_text(top.get("meter"), "meter"),
        label_printer=_text(top.get("label_printer"), "label_printer"),
        label_previews=None if previews is None else base / previews,
        identities=allocator_config(identities, "identities", extra=("journal",)),
        identity_journal=None if journal is None else base / journal,
        arrivals=arrivals,
    )
