"""A fork server for the fault-injection tests: ``floorflow run`` children that can be SIGKILLed.

Run as a script (``python tests/faultkit.py``), it imports the engine, the store backends and every
shipped step once, then reads one JSON request per line on stdin and answers one JSON line on
stdout. A request ``{"argv": [...], "log": PATH, "kill_after": S, "timeout": S}`` forks a child
that runs ``engine.cli.main(argv)`` with stdin from /dev/null and stdout/stderr into ``log``; if
the child is still running ``kill_after`` seconds after the fork (null: never), it is killed with
SIGKILL, a real process kill: no handler, no cleanup, no flush. The answer says
``{"pid", "killed", "code", "signal", "elapsed", "timed_out"}`` once the child is reaped, so no
zombie keeps its pid looking alive to the store.

Forking is safe because this process runs no thread besides its main one (checked before every
fork): the child starts with one thread and a clean copy of the imported modules, ~20x faster
than starting a new interpreter.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def cpu_burners() -> Iterator[int]:
    """One spinning process per core this process may use, for the duration; yields how many."""
    cores = len(os.sched_getaffinity(0))
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        yield cores
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait()


def _warm_up() -> None:
    """Import everything a run imports, so the children do not each import it again."""
    import psycopg  # noqa: F401
    from stdnum import imei  # noqa: F401

    import engine.cli
    import engine.cli.records
    import engine.cli.run
    import engine.run.console
    import engine.store.postgres
    import engine.store.sqlite
    from engine.registry import Registry, line_factory

    for _ in Registry.discover():  # imports every step type's module
        pass
    line_factory("sim")
    assert engine.cli.main is not None


def _child(argv: list[str], log: str) -> None:
    """In the forked child: run floorflow, never return."""
    code = 70
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(null)
        os.close(out)
        from engine.cli import main

        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def run(request: dict[str, Any]) -> dict[str, Any]:
    argv = [str(a) for a in request["argv"]]
    kill_after = request.get("kill_after")
    timeout = float(request.get("timeout") or 120.0)
    alive = threading.active_count()
    if alive != 1:
        raise RuntimeError(f"refusing to fork: {alive} threads are running in the fork server")
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(argv, str(request["log"]))
    handle = os.pidfd_open(pid)
    killed = timed_out = False
    try:
        limit = timeout if kill_after is None else min(float(kill_after), timeout)
        ready, _, _ = select.select([handle], [], [], max(0.0, limit))
        if not ready:
            timed_out = kill_after is None or float(kill_after) > timeout
            os.kill(pid, signal.SIGKILL)
            killed = True
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(handle)
    elapsed = time.monotonic() - start
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    return {
        "pid": pid,
        "killed": killed and sig == signal.SIGKILL,
        "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": sig,
        "elapsed": elapsed,
        "timed_out": timed_out,
    }


def serve() -> None:
    _warm_up()
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = run(json.loads(line))
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    serve()
