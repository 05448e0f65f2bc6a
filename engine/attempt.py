"""One attempt of one step: called (in a worker thread when it has a timeout), judged, cleaned up.

The runner decides what an attempt means for the unit; this module only says what the attempt
came to, and why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from engine.context import StepContext
from engine.outcome import NotStarted, Outcome, StationError, StepFailed, Verdict
from engine.step import StepType

log = logging.getLogger("floorflow.runner")


class StepTimeout(Exception):
    """The step did not return within its stage's timeout_s."""


def call_step(step: StepType, ctx: StepContext, expected: frozenset[str]) -> tuple[Outcome, str | None]:
    """Run one attempt of a step and say what it came to: the outcome and, unless PASS, why."""
    stage = ctx.stage
    try:
        returned = step.run(ctx) if stage.timeout_s is None else _with_timeout(step.run, ctx, stage.timeout_s)
    except StepFailed as exc:
        return Outcome.FAIL, str(exc) or "the step reported a failure"
    except NotStarted as exc:
        ctx.not_started = True
        return Outcome.ERROR, str(exc)
    except StationError as exc:
        return Outcome.ERROR, str(exc)
    except StepTimeout:
        ctx.cancelled.set()
        close = getattr(ctx.device, "close", None)
        if callable(close):
            close()
        return Outcome.ERROR, f"timed out after {stage.timeout_s} s; the unit's device was closed"
    except Exception as exc:
        log.exception("step '%s' raised", stage.step)
        return Outcome.ERROR, f"{type(exc).__name__}: {exc}"
    outcome = returned if isinstance(returned, Outcome) else Outcome.PASS
    if outcome is not Outcome.PASS:
        return outcome, None
    return judged(ctx, expected)


def judged(ctx: StepContext, expected: frozenset[str]) -> tuple[Outcome, str | None]:
    """FAIL for a measurement outside its limits, ERROR for one the stage expects and never got."""
    seen = set()
    for m in ctx.measurements:
        if m.verdict is Verdict.FAIL:
            where = "".join(f" {k}={v}" for k, v in m.tags.items())
            units = f" {m.units}" if m.units else ""
            return (
                Outcome.FAIL,
                f"measurement '{m.name}'{where} = {m.value!r}{units} is outside its limits",
            )
        seen.add(m.name)
    if not expected.issubset(seen):
        missing = sorted(expected - seen)
        return Outcome.ERROR, f"the step recorded no '{missing[0]}', which the stage measures"
    return Outcome.PASS, None


def run_cleanups(ctx: StepContext, error: str | None) -> str | None:
    """Run the attempt's cleanups, last first; a failing one is logged and reported once."""
    for action in reversed(ctx.cleanups):
        try:
            action()
        except Exception as exc:
            log.exception("cleanup of '%s' failed", ctx.stage.id)
            error = error or f"cleanup failed: {type(exc).__name__}: {exc}"
    return error


def _with_timeout(run: Callable[[StepContext], Any], ctx: StepContext, timeout_s: float) -> Any:
    """Run a step in a worker thread and give up on it after ``timeout_s``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = run(ctx)
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"step-{ctx.stage.id}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise StepTimeout
    if "error" in box:
        raise box["error"]
    return box.get("value")
