"""One attempt of one step: called (a timed one watched), judged, cleaned up.

The runner decides what an attempt means for the unit; this module only says what the attempt
came to, and why.

Every step runs in its slot's own thread. A step with ``timeout_s`` is watched: the slot's thread
writes the step's deadline into its ``StepWatch`` (two attribute writes, no wake-up of anyone), and
one ``Watchdog`` thread per run looks at the deadlines a few times a second. A step past its deadline,
or cancelled by a stop, is told to stop (``ctx.cancelled``), on a timeout the unit's device is closed
first (which ends most waits on it), and it is given ``grace_s`` to return; if it does, its own thread
goes on, the attempt an ERROR on a timeout. Python cannot end a thread from outside: a step still
running after its grace is left behind with its thread (``ctx.abandoned``, and the attempt's error,
say so), and a new thread takes over the slot's work where the step left it; should the step ever
return, its thread records nothing and ends (``LeftBehind``).
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
POLL_S = 0.05
"""How often the watchdog looks at the slots' steps (sooner when a deadline comes before)."""
TIMED_OUT = "timed out"
CANCELLED = "cancelled"


class StepTimeout(Exception):
    """The step did not return within its stage's timeout_s."""


class LeftBehind(BaseException):
    """Raised in a slot's thread given up on, once its step returns: another thread has taken over the slot's
    work, so this one records nothing and ends. Not an Exception: no handler meant for a step's error takes it."""


TakeOver = Callable[[StepContext, str], None]
"""Carries on with a slot's work in place of its thread, left behind in a step (with the attempt's error)."""


def call_step(
    step: StepType,
    ctx: StepContext,
    expected: frozenset[str],
    watch: StepWatch | None = None,
    grace_s: float = STOP_GRACE_S,
) -> tuple[Outcome, str | None]:
    """Run one attempt of a step and say what it came to: the outcome and, unless PASS, why.

    A step with a timeout is watched by ``watch`` (its slot's, attached to the run's watchdog).
    """
    stage = ctx.stage
    try:
        if stage.timeout_s is None:
            returned = step.run(ctx)
        elif watch is None:
            raise RuntimeError(f"stage '{stage.id}' has a timeout and its slot no watch")
        else:
            returned = watch.call(step.run, ctx, stage.timeout_s, grace_s)
    except StepFailed as exc:
        return Outcome.FAIL, str(exc) or "the step reported a failure"
    except NotStarted as exc:
        ctx.not_started = True
        return Outcome.ERROR, str(exc)
    except StationError as exc:
        return Outcome.ERROR, str(exc)
    except StepTimeout:
        return Outcome.ERROR, stopped_error(ctx, True, grace_s)
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


def stopped_error(ctx: StepContext, timed_out: bool, grace_s: float) -> str:
    """The error of an attempt whose step was told to stop: at its timeout, or by a stop of the run."""
    if ctx.abandoned:
        stopped = f"the step did not stop within {grace_s:g} s and its thread was left running"
    else:
        stopped = "the step stopped"
    if timed_out:
        return f"timed out after {ctx.stage.timeout_s} s; the unit's device was closed; {stopped}"
    return f"told to stop; {stopped}"


class StepWatch:
    """A slot's timed step, watched: its deadline for the watchdog, and what the watchdog did about it."""

    __slots__ = ("ctx", "deadline", "dog", "grace_s", "lock", "name", "returned", "seen", "take_over", "trouble")

    def __init__(self, name: str) -> None:
        self.name = name
        """The slot's thread's name, which a thread taking over its work takes too."""
        self.lock: LockType = allocate_lock()
        self.ctx: StepContext | None = None
        """The step running now, watched (None: none is)."""
        self.deadline = 0.0
        """When it times out (time.monotonic())."""
        self.grace_s = STOP_GRACE_S
        self.trouble: str | None = None
        """TIMED_OUT or CANCELLED once the watchdog told the step to stop."""
        self.returned: threading.Event | None = None
        """Set when a step told to stop returns (made only then)."""
        self.seen: StepContext | None = None
        """The step the watchdog last acted on."""
        self.dog: Watchdog | None = None
        self.take_over: TakeOver | None = None

    def call(self, run: Callable[[StepContext], Any], ctx: StepContext, timeout_s: float, grace_s: float) -> Any:
        """``run(ctx)`` in this thread, watched: past ``timeout_s`` (or once cancelled) it is told to stop and
        given ``grace_s``; then StepTimeout (on a timeout), or, in a thread given up on, LeftBehind."""
        dog = self.dog
        if dog is None:
            raise RuntimeError(f"{self.name}: the step watch is not attached to a watchdog")
        if not dog.started:
            dog.start()
        self.grace_s = grace_s
        self.trouble = None
        self.deadline = time.monotonic() + timeout_s
        self.ctx = ctx  # last: the watchdog reads the step, then its deadline
        try:
            value = run(ctx)
        except BaseException:
            if self._returned(ctx):
                raise StepTimeout from None  # what a step stopped at its timeout raises is not the error
            raise
        if self._returned(ctx):
            raise StepTimeout
        return value

    def _returned(self, ctx: StepContext) -> bool:
        """The step returned: stop watching it, and say whether it had timed out."""
        with self.lock:
            if ctx.abandoned:
                raise LeftBehind
            self.ctx = None
            trouble = self.trouble
            if trouble is None:
                return False
            assert self.returned is not None
            self.returned.set()
        return trouble == TIMED_OUT

    def rescue(self, ctx: StepContext, timed_out: bool) -> None:
        """(In a thread of its own.) Tell the step to stop and wait its grace; take over the slot if it does not."""
        with self.lock:
            if self.ctx is not ctx:
                return  # it returned meanwhile
            self.trouble = TIMED_OUT if timed_out else CANCELLED
            self.returned = returned = threading.Event()
        ctx.cancelled.set()
        if timed_out:
            _close_device(ctx)
        if returned.wait(self.grace_s):
            return  # the slot's own thread goes on
        with self.lock:
            if self.ctx is not ctx:
                return  # it returned just now
            ctx.abandoned = True
            self.ctx = None
        assert self.take_over is not None  # attached with the watchdog
        self.take_over(ctx, stopped_error(ctx, timed_out, self.grace_s))


class Watchdog:
    """One thread per run that watches every slot's timed step, started at the first: when a step's deadline
    has passed, or a stop cancelled it, it starts a rescue of that step (``StepWatch.rescue``)."""

    def __init__(self, poll_s: float = POLL_S) -> None:
        self.poll_s = poll_s
        self.watches: list[StepWatch] = []
        self.started = False
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, watch: StepWatch, take_over: TakeOver) -> None:
        """Watch a slot's steps; ``take_over`` carries on with its work should its thread be left behind."""
        watch.dog, watch.take_over = self, take_over
        self.watches.append(watch)

    def start(self) -> None:
        with self._lock:
            if self.started:
                return
            self._thread = threading.Thread(target=self._run, name="floorflow-watchdog", daemon=True)
            self._thread.start()
            self.started = True

    def close(self) -> None:
        """Stop watching (a rescue under way goes on)."""
        self._closed.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while True:
            wait = self.poll_s
            now = time.monotonic()
            for watch in self.watches:
                ctx = watch.ctx
                if ctx is None or watch.seen is ctx:
                    continue
                left = watch.deadline - now
                cancelled = ctx.cancelled.is_set()
                if left <= 0 or cancelled:
                    watch.seen = ctx
                    rescue = threading.Thread(
                        target=watch.rescue, args=(ctx, not cancelled), name=watch.name, daemon=True
                    )
                    rescue.start()
                else:
                    wait = min(wait, left)
            if self._closed.wait(wait):
                return


def _close_device(ctx: StepContext) -> None:
    close = getattr(ctx.device, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            log.exception("closing the device of %s after a timeout failed", ctx.unit.serial)
