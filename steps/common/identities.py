"""The station's identity allocator: IMEIs, MAC addresses and product serial numbers from configured ranges.

IMEIs are the 8-digit TAC, a 6-digit serial number from the configured range and the Luhn check
digit; MAC addresses take the next free address of the OUI block (Bluetooth and Wi-Fi share the
block, as a product's MACs usually do); serial numbers follow a format with a running ``n``.
A value is never issued twice, and a unit asking again for a kind it was given gets the same value
back. ``PoolIdentityAllocator`` issues from pools kept in the store (``engine.store``): atomic across
every station on the store, never reused (a scrapped unit's values are retired, not issued again).
Without a store, ``JournalIdentityAllocator`` keeps the station's own allocations, with a journal file
appended and synced to disk before a value is handed out, so a restarted station neither loses nor
reissues one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from stdnum import imei, luhn

from engine.diagnostics import did_you_mean
from engine.inputs import SERIAL_MAX
from engine.outcome import StationError

_MAC_BLOCK = 1 << 24
_SEPARATOR = "\t"


IDENTITY_KINDS = ("imei", "bt_mac", "wifi_mac", "serial")
SERIAL_LAST = 10**12 - 1
"""The last running number of a serial-number pool."""


@dataclass(frozen=True)
class AllocatorConfig:
    """The ranges identities are issued from."""

    tac: str = "35693803"
    """8-digit Type Allocation Code of the IMEIs."""
    imei_first: int = 0
    imei_last: int = 999_999
    """Range of the IMEIs' 6-digit serial numbers."""
    oui: str = "02:46:46"
    """MAC block; locally administered by default, so test MACs never collide with real hardware."""
    serial_format: str = "SIM{n:08d}"


@dataclass(frozen=True)
class Pool:
    """Where identities of one kind come from: numbers ``first``..``last`` made into values."""

    name: str
    """The pool's key in the store: the same ranges on two stations are one pool."""
    space: str
    """Values are unique within a space (Bluetooth and Wi-Fi MACs share one)."""
    first: int
    last: int
    what: str
    """The pool as an error message names it."""


def pool_of(kind: str, config: AllocatorConfig) -> Pool:
    if kind == "imei":
        return Pool(
            f"imei:{config.tac}:{config.imei_first:06d}-{config.imei_last:06d}",
            "imei",
            config.imei_first,
            config.imei_last,
            f"IMEI pool of TAC {config.tac} ({config.imei_first:06d}-{config.imei_last:06d})",
        )
    if kind in ("bt_mac", "wifi_mac"):
        oui = config.oui.upper()
        return Pool(f"mac:{oui}", "mac", 0, _MAC_BLOCK - 1, f"MAC block of OUI {oui}")
    return Pool(f"serial:{config.serial_format}", "serial", 1, SERIAL_LAST, f"serial numbers {config.serial_format}")


def identity_value(kind: str, n: int, config: AllocatorConfig) -> str:
    """The ``n``-th value of ``kind``'s pool."""
    if kind == "imei":
        body = f"{config.tac}{n:06d}"
        value = body + luhn.calc_check_digit(body)
        assert imei.is_valid(value), value
        return value
    if kind in ("bt_mac", "wifi_mac"):
        nic = f"{n:06X}"
        return ":".join([config.oui.upper(), nic[0:2], nic[2:4], nic[4:6]])
    value = config.serial_format.format(n=n)
    if len(value) > SERIAL_MAX:  # the configs are checked when loaded; this keeps an unchecked one from the store
        raise StationError(f"serial number {value[:SERIAL_MAX]!r}… is longer than {SERIAL_MAX} characters")
    return value


def _known(kind: str) -> None:
    if kind not in IDENTITY_KINDS:
        raise StationError(f"no allocator for identity kind '{kind}'{did_you_mean(kind, IDENTITY_KINDS)}")


class IdentityLedger(Protocol):
    """Issues pool numbers atomically and for good (``engine.store.SqlStore`` is one)."""

    def issue(
        self,
        kind: str,
        serial: str,
        *,
        space: str,
        pool: str,
        first: int,
        last: int,
        make: Callable[[int], str],
        what: str,
    ) -> str: ...


class PoolIdentityAllocator:
    """Issues from the store's pools; an exhausted pool is a StationError before anything is written."""

    def __init__(self, ledger: IdentityLedger, config: AllocatorConfig | None = None) -> None:
        self.ledger = ledger
        self.config = config if config is not None else AllocatorConfig()
        self.offline = False

    def allocate(self, kind: str, serial: str) -> str:
        if self.offline:
            raise StationError("the identity allocator is offline")
        _known(kind)
        pool = pool_of(kind, self.config)
        try:
            return self.ledger.issue(
                kind,
                serial,
                space=pool.space,
                pool=pool.name,
                first=pool.first,
                last=pool.last,
                make=lambda n: identity_value(kind, n, self.config),
                what=pool.what,
            )
        except LookupError as exc:
            raise StationError(f"{exc}: configure a new range") from None


class JournalIdentityAllocator:
    """Allocates from an ``AllocatorConfig``; with a journal file, allocations survive restarts."""

    def __init__(self, config: AllocatorConfig | None = None, journal: Path | None = None) -> None:
        self.config = config if config is not None else AllocatorConfig()
        self.journal = journal
        self.offline = False
        self._lock = threading.Lock()
        self._given: dict[tuple[str, str], str] = {}
        self._issued: set[str] = set()
        self._next = {"imei": self.config.imei_first, "mac": 0, "serial": 1}
        if journal is not None and journal.exists():
            for line in journal.read_text(encoding="utf-8").splitlines():
                kind, serial, value = line.split(_SEPARATOR)
                self._given[kind, serial] = value
                self._issued.add(value)

    def allocate(self, kind: str, serial: str) -> str:
        if self.offline:
            raise StationError("the identity allocator is offline")
        _known(kind)
        with self._lock:
            given = self._given.get((kind, serial))
            if given is not None:
                return given
            value = self._fresh(kind)
            if self.journal is not None:
                with self.journal.open("a", encoding="utf-8") as out:
                    out.write(_SEPARATOR.join((kind, serial, value)) + "\n")
                    out.flush()
                    os.fsync(out.fileno())
            self._given[kind, serial] = value
            self._issued.add(value)
            return value

    def given(self, kind: str, serial: str) -> str | None:
        """What the unit was given of ``kind``, if anything."""
        with self._lock:
            return self._given.get((kind, serial))

    def _fresh(self, kind: str) -> str:
        while True:
            value = self._candidate(kind)
            if value not in self._issued:
                return value

    def _candidate(self, kind: str) -> str:
        pool = pool_of(kind, self.config)
        counter = "mac" if pool.space == "mac" else kind
        n = self._next[counter]
        if n > pool.last:
            raise StationError(f"the {pool.what} is exhausted")
        self._next[counter] = n + 1
        return identity_value(kind, n, self.config)
