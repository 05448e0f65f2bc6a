"""One attempt of one step: called (in a worker thread when it has a timeout), judged, cleaned up.

The runner decides what an attempt means for the unit; this module only says what the attempt
came to, and why.

A step in a worker thread that times out, or is cancelled by a stop, is told to stop
(``ctx.cancelled``) and waited for, ``grace_s`` at most; on a timeout the unit's device is closed
first, which ends most waits on it. Python cannot end a thread from outside: a step still running
after its grace is left behind, ``ctx.abandoned`` says so, and the attempt's error says so too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from engine.context import StepContext
from engine.outcome import NotStarted, Outcome, StationError, StepFailed, Verdict
from engine.step import StepType

log = logging.getLogger("floorflow.runner")


STOP_GRACE_S = 10.0
"""How long a step told to stop (at its timeout, or by a stop of the run) has to end."""


class StepTimeout(Exception):
    """The step did not return within its stage's timeout_s."""


class StepAbandoned(Exception):
    """The step was told to stop and did not within its grace: its thread is left running."""


def call_step(
    step: StepType, ctx: StepContext, expected: frozenset[str], grace_s: float = STOP_GRACE_S
) -> tuple[Outcome, str | None]:
    """Run one attempt of a step and say what it came to: the outcome and, unless PASS, why."""
    stage = ctx.stage
    try:
        returned = step.run(ctx) if stage.timeout_s is None else _in_thread(step.run, ctx, stage.timeout_s, grace_s)
    except StepFailed as exc:
        return Outcome.FAIL, str(exc) or "the step reported a failure"
    except NotStarted as exc:
        ctx.not_started = True
        return Outcome.ERROR, str(exc)
    except StationError as exc:
        return Outcome.ERROR, str(exc)
    except StepTimeout:
        return Outcome.ERROR, f"timed out after {stage.timeout_s} s; the unit's device was closed; " + _stopped(
            ctx, grace_s
        )
    except StepAbandoned:
        return Outcome.ERROR, "told to stop; " + _stopped(ctx, grace_s)
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


def _stopped(ctx: StepContext, grace_s: float) -> str:
    if ctx.abandoned:
        return f"the step did not stop within {grace_s:g} s and its thread was left running"
    return "the step stopped"


def _in_thread(run: Callable[[StepContext], Any], ctx: StepContext, timeout_s: float, grace_s: float) -> Any:
    """Run a step in a worker thread; past ``timeout_s`` (or once cancelled) stop it within ``grace_s``."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = run(ctx)
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=target, name=f"step-{ctx.stage.id}-slot-{ctx.slot}", daemon=True)
    worker.start()
    deadline = time.monotonic() + timeout_s
    # A stop of the run cancels the attempt: it is waited for as a timeout would be, not to its end.
    while not done.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
        if time.monotonic() >= deadline or ctx.cancelled.is_set():
            break
    timed_out = not done.is_set() and not ctx.cancelled.is_set()
    if not done.is_set():
        ctx.cancelled.set()
        if timed_out:
            _close_device(ctx)
        ctx.abandoned = not done.wait(grace_s)
    if timed_out:
        raise StepTimeout
    if ctx.abandoned:
        raise StepAbandoned
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _close_device(ctx: StepContext) -> None:
    close = getattr(ctx.device, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            log.exception("closing the device of %s after a timeout failed", ctx.unit.serial)
