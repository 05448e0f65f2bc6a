"""One attempt of one step: called (in its slot's worker thread when it has a timeout), judged, cleaned up.

The runner decides what an attempt means for the unit; this module only says what the attempt
came to, and why.

A step with ``timeout_s`` runs in its slot's ``StepWorker``: one long-lived thread, reused by every
timed step of every unit in the slot (a new thread per step would cost more than the rest of the
step's bookkeeping). A step that times out, or is cancelled by a stop, is told to stop
(``ctx.cancelled``) and waited for, ``grace_s`` at most; on a timeout the unit's device is closed
first, which ends most waits on it. Python cannot end a thread from outside: a step still running
after its grace is left behind with its thread, ``ctx.abandoned`` says so, the attempt's error says so
too, and the worker's next step gets a new thread.
"""

from __future__ import annotations

import logging
import threading
import time
from _thread import LockType, allocate_lock
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
    step: StepType,
    ctx: StepContext,
    expected: frozenset[str],
    grace_s: float = STOP_GRACE_S,
    worker: StepWorker | None = None,
) -> tuple[Outcome, str | None]:
    """Run one attempt of a step and say what it came to: the outcome and, unless PASS, why.

    A step with a timeout runs in ``worker`` (a worker of its own when none is given).
    """
    stage = ctx.stage
    try:
        if stage.timeout_s is None:
            returned = step.run(ctx)
        elif worker is not None:
            returned = worker.call(step.run, ctx, stage.timeout_s, grace_s)
        else:
            with StepWorker(f"step-{stage.id}-slot-{ctx.slot}") as alone:
                returned = alone.call(step.run, ctx, stage.timeout_s, grace_s)
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


class _Hand:
    """What a worker thread and its caller share: the job, its result, and a lock each way."""

    __slots__ = ("abandoned", "done", "error", "go", "job", "value")

    def __init__(self) -> None:
        self.go: LockType = allocate_lock()
        self.done: LockType = allocate_lock()
        self.go.acquire()
        self.done.acquire()
        self.job: tuple[Callable[[StepContext], Any], StepContext] | None = None
        self.value: Any = None
        self.error: BaseException | None = None
        self.abandoned = False


def _serve(hand: _Hand) -> None:
    """A worker thread: run each job handed over, until closed or left behind."""
    while True:
        hand.go.acquire()
        job = hand.job
        if job is None:
            return  # closed
        run, ctx = job
        try:
            hand.value, hand.error = run(ctx), None
        except BaseException as exc:  # handed back to the caller, who raises it
            hand.value, hand.error = None, exc
        hand.job = None
        hand.done.release()
        if hand.abandoned:
            return


class StepWorker:
    """A slot's thread for steps with a timeout: started on first use, reused, replaced once abandoned."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._hand: _Hand | None = None
        self.threads = 0
        """How many threads it has started (one, unless steps were abandoned)."""

    def __enter__(self) -> StepWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, run: Callable[[StepContext], Any], ctx: StepContext, timeout_s: float, grace_s: float) -> Any:
        """``run(ctx)`` in the worker's thread; past ``timeout_s`` (or once cancelled) stop it within ``grace_s``."""
        hand = self._hand
        if hand is None:
            hand = self._hand = _Hand()
            self.threads += 1
            threading.Thread(target=_serve, args=(hand,), name=self.name, daemon=True).start()
        hand.job = (run, ctx)
        hand.go.release()
        if not _wait(hand.done, ctx, timeout_s):
            timed_out = not ctx.cancelled.is_set()
            ctx.cancelled.set()
            if timed_out:
                _close_device(ctx)
            if not hand.done.acquire(timeout=grace_s):
                ctx.abandoned = True
                hand.abandoned = True  # its thread ends should the step ever return; the next step gets a new one
                self._hand = None
                hand.go.release()  # (with no job: should the step return just now, its thread ends all the same)
            if timed_out:
                raise StepTimeout
            if ctx.abandoned:
                raise StepAbandoned
        error, hand.error, value, hand.value = hand.error, None, hand.value, None
        if error is not None:
            raise error
        return value

    def close(self) -> None:
        """End the thread (once its step, if any, has returned)."""
        hand, self._hand = self._hand, None
        if hand is not None:
            hand.job = None
            hand.go.release()


def _wait(done: LockType, ctx: StepContext, timeout_s: float) -> bool:
    """Whether the step handed over returned within ``timeout_s``, and before a stop cancelled it."""
    deadline = time.monotonic() + timeout_s
    # A stop of the run cancels the attempt: it is waited for as a timeout would be, not to its end.
    while not done.acquire(timeout=min(0.1, max(0.0, deadline - time.monotonic()))):
        if time.monotonic() >= deadline or ctx.cancelled.is_set():
            return False
    return True


def _close_device(ctx: StepContext) -> None:
    close = getattr(ctx.device, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            log.exception("closing the device of %s after a timeout failed", ctx.unit.serial)
