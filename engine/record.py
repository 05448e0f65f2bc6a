"""Records: every attempt of every stage, as a row, and how it is written as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from engine.context import MeasurementRecord
from engine.outcome import Outcome, UnitStatus, Verdict


@dataclass(frozen=True)
class RecipeRef:
    recipe: str
    version: int
    content_hash: str


class Attempt(NamedTuple):
    """One attempt of one stage on one unit (a tuple: one is made per step, so kept cheap)."""

    serial: str
    stage: str
    step: str
    attempt: int
    outcome: Outcome
    started: float
    """Seconds since the epoch (UTC); written as ISO 8601."""
    ended: float
    recipe: RecipeRef
    lot: str | None = None
    station: str | None = None
    slot: int = 0
    operator: str | None = None
    measurements: tuple[MeasurementRecord, ...] = ()
    error: str | None = None
    device_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "lot": self.lot,
            "stage": self.stage,
            "step": self.step,
            "attempt": self.attempt,
            "outcome": self.outcome.value,
            "station": self.station,
            "slot": self.slot,
            "operator": self.operator,
            "started": _iso(self.started),
            "ended": _iso(self.ended),
            "duration_s": round(self.ended - self.started, 6),
            "measurements": [_measurement_json(m) for m in self.measurements],
            "error": self.error,
            "device_id": self.device_id,
            "recipe": {
                "id": self.recipe.recipe,
                "version": self.recipe.version,
                "hash": self.recipe.content_hash,
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attempt:
        recipe = data["recipe"]
        return cls(
            serial=data["serial"],
            stage=data["stage"],
            step=data["step"],
            attempt=data["attempt"],
            outcome=Outcome(data["outcome"]),
            started=_epoch(data["started"]),
            ended=_epoch(data["ended"]),
            recipe=RecipeRef(recipe["id"], recipe["version"], recipe["hash"]),
            lot=data.get("lot"),
            station=data.get("station"),
            slot=data.get("slot", 0),
            operator=data.get("operator"),
            measurements=tuple(_measurement_from_json(m) for m in data.get("measurements", ())),
            error=data.get("error"),
            device_id=data.get("device_id"),
        )


@dataclass(frozen=True)
class Identity:
    """An identity issued to a unit from a pool (IMEI, MAC address, serial number)."""

    kind: str
    value: str
    issued: float
    retired: bool = False
    """The unit was scrapped: the value stays issued and is never given to another unit."""

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "issued": _iso(self.issued), "retired": self.retired}


@dataclass(frozen=True)
class ImageOnUnit:
    """An image a stage wrote to the unit, with the hash read back."""

    image: str
    sha256: str | None
    stage: str
    written: float

    def as_json(self) -> dict[str, Any]:
        return {"image": self.image, "sha256": self.sha256, "stage": self.stage, "written": _iso(self.written)}


@dataclass(frozen=True)
class Decision:
    """A person's decision, as the audit log keeps it."""

    at: float
    by: str
    action: str
    """quarantine (by the station), release-done, release-not-done, recipe-release, ..."""
    subject: str
    """The unit's serial, the lot or the recipe's content hash the decision is about."""
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "by": self.by,
            "action": self.action,
            "subject": self.subject,
            "reason": self.reason,
        }


@dataclass
class UnitRecord:
    """Everything recorded of one unit: its attempts in order and where its route stands."""

    serial: str
    lot: str | None = None
    status: str = UnitStatus.IN_ROUTE
    """in-route, shipped, scrapped or quarantined (a held lot's units are also listed as held)."""
    reason: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    product: str | None = None
    lifecycle: str | None = None
    """The unit's lifecycle state when it last left a station."""
    identities: list[Identity] = field(default_factory=list)
    images: list[ImageOnUnit] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    """The audit log's entries about this unit, oldest first."""

    def as_json(self) -> dict[str, Any]:
        last = self.attempts[-1].recipe if self.attempts else None
        out: dict[str, Any] = {
            "serial": self.serial,
            "lot": self.lot,
            "status": self.status,
            "reason": self.reason,
            "recipe": None if last is None else {"id": last.recipe, "version": last.version, "hash": last.content_hash},
            "attempts": [a.as_json() for a in self.attempts],
        }
        if self.product is not None:
            out["product"] = self.product
        if self.lifecycle is not None:
            out["lifecycle"] = self.lifecycle
        if self.identities:
            out["identities"] = [i.as_json() for i in self.identities]
        if self.images:
            out["images"] = [i.as_json() for i in self.images]
        if self.decisions:
            out["decisions"] = [d.as_json() for d in self.decisions]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UnitRecord:
        return cls(
            serial=data["serial"],
            lot=data.get("lot"),
            status=data.get("status", UnitStatus.IN_ROUTE),
            reason=data.get("reason"),
            attempts=[Attempt.from_json(a) for a in data.get("attempts", ())],
            product=data.get("product"),
            lifecycle=data.get("lifecycle"),
        )


@dataclass(frozen=True)
class LotRecord:
    """A lot: its hold, if any, and how many sampled units failed each sampled stage."""

    lot: str
    hold: str | None = None
    """Why the lot is on hold, or None."""
    held_at: float | None = None
    failures: Mapping[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "lot": self.lot,
            "hold": self.hold,
            "held_at": None if self.held_at is None else _iso(self.held_at),
            "failures": dict(self.failures),
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _measurement_json(m: MeasurementRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"name": m.name, "value": m.value, "verdict": m.verdict.value}
    if m.units is not None:
        out["units"] = m.units
    if m.low is not None or m.high is not None:
        out["limits"] = {"min": m.low, "max": m.high}
    if m.tags:
        out["tags"] = dict(m.tags)
    return out


def _measurement_from_json(data: Mapping[str, Any]) -> MeasurementRecord:
    limits = data.get("limits") or {}
    return MeasurementRecord(
        data["name"],
        data["value"],
        Verdict(data["verdict"]),
        data.get("units"),
        limits.get("min"),
        limits.get("max"),
        data.get("tags") or {},
    )
