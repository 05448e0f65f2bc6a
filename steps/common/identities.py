"""The station's identity allocator: IMEIs, MAC addresses and product serial numbers from configured ranges.

IMEIs are the 8-digit TAC, a 6-digit serial number from the configured range and the Luhn check
digit; MAC addresses take the next free address of the OUI block (Bluetooth and Wi-Fi share the
block, as a product's MACs usually do); serial numbers follow a format with a running ``n``.
A value is never issued twice, and a unit asking again for a kind it was given gets the same value
back. With a journal file every allocation is appended and synced to disk before it is handed out,
so a restarted station neither loses nor reissues one.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from stdnum import imei, luhn

from engine.diagnostics import did_you_mean
from engine.outcome import StationError

_MAC_BLOCK = 1 << 24
_SEPARATOR = "\t"


IDENTITY_KINDS = ("imei", "bt_mac", "wifi_mac", "serial")


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
        if kind not in IDENTITY_KINDS:
            raise StationError(f"no allocator for identity kind '{kind}'{did_you_mean(kind, IDENTITY_KINDS)}")
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
        if kind == "imei":
            n = self._take("imei", self.config.imei_last + 1, f"IMEI range of TAC {self.config.tac}")
            body = f"{self.config.tac}{n:06d}"
            value = body + luhn.calc_check_digit(body)
            assert imei.is_valid(value), value
            return value
        if kind in ("bt_mac", "wifi_mac"):
            n = self._take("mac", _MAC_BLOCK, f"MAC block of OUI {self.config.oui}")
            nic = f"{n:06X}"
            return ":".join([self.config.oui.upper(), nic[0:2], nic[2:4], nic[4:6]])
        n = self._take("serial", 10**12, "serial numbers")
        return self.config.serial_format.format(n=n)

    def _take(self, counter: str, end: int, what: str) -> int:
        n = self._next[counter]
        if n >= end:
            raise StationError(f"the {what} is exhausted")
        self._next[counter] = n + 1
        return n
