"""Run ``floorflow validate`` on one fuzz input and judge what it printed.

In process: the real CLI entry point ``engine.cli.main(["validate", NAME])`` with file descriptors
1 and 2 captured (stdout strict UTF-8 and stderr backslash-escaped, as a real process has them), an
escaping exception caught and kept as a traceback, SystemExit turned into its exit code. As a
subprocess: the installed ``floorflow`` console script, the way a user runs it.

The judgement: a traceback anywhere is a traceback; every other line printed must be exactly a
diagnostic ``PATH:LINE:COL: error|warning: message [code]`` — PATH a regular file inside the
input's directory, LINE and COL a place inside that file, the message printable on one line — or
the summary ``N recipe(s) valid``. The exit code must be 0, 1 or 2, and explained by the lines:
0 with the summary and no error, 1 with at least one error; and 0 never for a recipe that holds
a non-finite number. A recipe validated after the input must still get its error reported.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
DIAGNOSTIC = re.compile(
    r"(?P<path>.+?):(?P<line>[0-9]+):(?P<col>[0-9]+): (?P<severity>error|warning): (?P<message>.+)"
    r" \[(?P<code>[A-Za-z][A-Za-z0-9_.-]*)\]"
)
SUMMARY = re.compile(r"1 recipe valid|(?:[2-9]|[1-9][0-9]+) recipes valid")
UNPRINTABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
"""Characters that break a line or drive a terminal: never inside a diagnostic (a tab is harmless)."""
LINE_BREAK = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")
"""Line breaks as YAML counts them, for checking a diagnostic's line number."""
LINE_START = re.compile(r"[^ ]+:[0-9]+:[0-9]+: |floorflow: |<")
"""How a line that stands on its own starts (a diagnostic, 'floorflow: error:', a judge's note)."""
NAMED_CHARACTER = re.compile(r"\bcharacter U\+([0-9A-F]{4,6})\b")
TRACEBACK = "Traceback (most recent call last):"
EXPLAINED_EXITS = ("0", "1", "2")


@dataclass
class Outcome:
    """What one run of ``floorflow validate`` did. ``exit`` is the code as text, or 'timeout'."""

    exit: str
    stdout: str
    stderr: str
    seconds: float
    via: str
    escaped: str | None = None
    """The traceback of an exception that escaped main() (in process only)."""


@dataclass
class Verdict:
    outcome: Outcome
    traceback: str | None = None
    bad_lines: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.traceback is not None or bool(self.bad_lines) or self.outcome.exit not in EXPLAINED_EXITS

    def kinds(self) -> list[str]:
        """The kinds of failure met, each the same for every input that meets the same defect."""
        kinds = [] if self.outcome.exit in EXPLAINED_EXITS else [f"exit {self.outcome.exit}"]
        if self.traceback is not None:
            kinds.append("traceback " + traceback_signature(self.traceback))
        for line in self.bad_lines:
            kind = "bad line " + (
                line_shape(line) if LINE_START.match(line) else "(the rest of a split line, or stray)"
            )
            if kind not in kinds:
                kinds.append(kind)
        return kinds


class _Timeout(BaseException):
    """Raised by the alarm: derives from BaseException so that no ``except Exception`` swallows it."""


def floorflow_command() -> list[str]:
    """The installed console script next to the interpreter, else ``python -m engine.cli``."""
    script = Path(sys.executable).parent / "floorflow"
    return [str(script)] if os.access(script, os.X_OK) else [sys.executable, "-m", "engine.cli"]


@contextlib.contextmanager
def _captured() -> Iterator[list[str]]:
    """Point fds 1 and 2 (and sys.stdout/stderr over them) at temporary files; yields [stdout, stderr]."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds, saved_streams = (os.dup(1), os.dup(2)), (sys.stdout, sys.stderr)
    texts = ["", ""]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        # Never closed: something may keep a reference to sys.stdout; with closefd=False fds 1 and 2 stay.
        raw_out, raw_err = open(1, "wb", closefd=False), open(2, "wb", closefd=False)  # noqa: SIM115
        sys.stdout = io.TextIOWrapper(raw_out, encoding="utf-8", errors="strict")
        sys.stderr = io.TextIOWrapper(raw_err, encoding="utf-8", errors="backslashreplace", line_buffering=True)
        try:
            yield texts
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            sys.stdout, sys.stderr = saved_streams
            for fd, saved in zip((1, 2), saved_fds, strict=True):
                os.dup2(saved, fd)
                os.close(saved)
            for i, f in enumerate((out, err)):
                f.seek(0)
                texts[i] = f.read().decode("utf-8", "replace")


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Timeout


def run_in_process(directory: Path, args: Sequence[str], timeout_s: float = 60.0) -> Outcome:
    """``engine.cli.main(["validate", *args])`` run in ``directory``, its output captured."""
    from engine.cli import main

    escaped = None
    previous = signal.signal(signal.SIGALRM, _alarm)
    start = time.perf_counter()
    with contextlib.chdir(directory), _captured() as texts:
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            code: object = main(["validate", *args])
        except SystemExit as exc:
            code = 0 if exc.code is None else exc.code
            if not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
        except _Timeout:
            code = "timeout"
        except BaseException:
            escaped = traceback.format_exc()
            code = 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - start
    signal.signal(signal.SIGALRM, previous)
    return Outcome(str(code), texts[0], texts[1], seconds, "in-process", escaped)


def run_subprocess(directory: Path, args: Sequence[str], timeout_s: float = 60.0) -> Outcome:
    """``floorflow validate *args`` by the console script, in ``directory``."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [*floorflow_command(), "validate", *args],
            cwd=directory,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode("utf-8", "replace")
        err = (exc.stderr or b"").decode("utf-8", "replace")
        return Outcome("timeout", out, err, timeout_s, "subprocess")
    seconds = time.perf_counter() - start
    out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    return Outcome(str(proc.returncode), out, err, seconds, "subprocess")


def judge(
    outcome: Outcome,
    directory: Path,
    inputs: Sequence[Path] = (),
    must_report: Sequence[str] = (),
    json_output: bool = False,
) -> Verdict:
    """Every traceback and every line that is not a well-placed diagnostic or the summary.

    With ``json_output`` (``--format json``) stdout must be one JSON list of diagnostics, each
    judged as its text line would be, and there is no summary.

    A recipe among ``inputs`` holding a non-finite number (.nan, .inf, 1e400) must not pass: a
    limit of NaN passes every value, so accepting one is a failure that prints nothing. Each file
    of ``must_report`` has an error that must be named, however bad the files before it were.
    """
    verdict = Verdict(outcome, outcome.escaped)
    if outcome.exit == "0" and any(_holds_nonfinite(path) for path in inputs):
        verdict.bad_lines.append("<exit 0 although the recipe holds a non-finite number>")
    files = _FileLines(directory)
    summaries = 0
    errors: set[str] = set()
    stdout = _json_as_text(outcome.stdout) if json_output else outcome.stdout
    for stream in (stdout, outcome.stderr):
        lines = stream.split("\n")
        if lines[-1] == "":
            lines.pop()
        for n, line in enumerate(lines):
            if line.startswith(TRACEBACK):
                verdict.traceback = verdict.traceback or "\n".join(lines[n:])
                break
            match = DIAGNOSTIC.fullmatch(line)
            if SUMMARY.fullmatch(line):
                summaries += 1
            elif match is None or UNPRINTABLE.search(line) or not files.holds(match):
                verdict.bad_lines.append(line)
            elif match["severity"] == "error":
                errors.add(match["path"])
    if verdict.traceback is None:
        missed = [name for name in must_report if name not in errors]
        verdict.bad_lines += [f"<no error named {name}: validate stopped before it>" for name in missed]
    if verdict.traceback is None and not verdict.bad_lines:
        if outcome.exit == "0" and (errors or not (summaries or json_output)):
            verdict.bad_lines.append("<exit 0 without the summary, or with an error>")
        elif outcome.exit == "1" and not errors:
            verdict.bad_lines.append("<exit 1 without an error line>")
    return verdict


def _json_as_text(stdout: str) -> str:
    """The diagnostics of ``--format json`` as text lines, so that they are judged as those are."""
    try:
        entries = json.loads(stdout)
    except ValueError:
        return "<--format json: stdout is not one JSON document>\n" + stdout
    if not isinstance(entries, list):
        return "<--format json: not a list>\n"
    lines = []
    for entry in entries:
        if isinstance(entry, dict) and set(entry) == {"file", "line", "column", "severity", "code", "message"}:
            where = f"{entry['file']}:{entry['line']}:{entry['column']}"
            lines.append(f"{where}: {entry['severity']}: {entry['message']} [{entry['code']}]\n")
        else:
            lines.append(f"<--format json: entry {entry!r:.80}>\n")
    return "".join(lines)


def _holds_nonfinite(path: Path) -> bool:
    try:
        data = YAML(typ="safe").load(path.read_bytes())
    except Exception:  # not YAML a loader takes: validate cannot have passed it for a number
        return False
    seen: set[int] = set()
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return True
        if isinstance(value, dict | list) and id(value) not in seen:
            seen.add(id(value))
            stack.extend(value.values() if isinstance(value, dict) else value)
    return False


class _FileLines:
    """The lines of the files diagnostics name, each read once; only files inside ``directory`` count."""

    def __init__(self, directory: Path) -> None:
        self.directory = os.path.realpath(directory)
        self.lines: dict[str, list[str] | None] = {}

    def holds(self, match: re.Match[str]) -> bool:
        lines = self._lines(match["path"])
        line, col = int(match["line"]), int(match["col"])
        if lines is None or not 1 <= line <= len(lines):
            return False
        text = lines[line - 1]
        named = NAMED_CHARACTER.search(match["message"])
        if named is not None:  # a diagnostic about one character points at that character
            return text[col - 1 : col] == chr(int(named[1], 16))
        if match["code"] == "yaml-encoding":  # ... and one about a byte that is not UTF-8 at that byte
            return text[col - 1 : col] == "\ufffd"
        return 1 <= col <= len(text) + 1

    def _lines(self, path: str) -> list[str] | None:
        if path not in self.lines:
            real = os.path.realpath(os.path.join(self.directory, path))
            inside = real.startswith(self.directory + os.sep)
            if inside and os.path.isfile(real):
                with open(real, "rb") as fh:
                    self.lines[path] = LINE_BREAK.split(fh.read().decode("utf-8", "replace"))
            else:
                self.lines[path] = None
        return self.lines[path]


def traceback_signature(text: str) -> str:
    """'ExceptionType at file:line' with the innermost frame in the project (the raise site if none)."""
    frames = re.findall(r'File "([^"]+)", line (\d+)', text)
    last = text.rstrip().split("\n")[-1]
    kind = last.split(":", 1)[0].strip() or "?"
    # The engine's and the steps' frames, wherever the package was imported from.
    ours = [(m[1], n) for f, n in frames if "-packages/" not in f and (m := re.search(r"/((?:engine|steps)/.*)", f))]
    where = ours[-1] if ours else (frames[-1] if frames else ("?", "?"))
    return f"{kind} at {where[0]}:{where[1]}"


def line_shape(line: str) -> str:
    """A bad line with its numbers and quoted values blurred, so that lines of one defect group together."""
    shape = re.sub(r"in-[0-9]+(-base)?\.yaml", "IN.yaml", line)
    shape = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", shape)
    shape = re.sub(r"#x[0-9A-Fa-f]+", "#xH", shape)
    shape = re.sub(r"[0-9]+", "N", shape)
    return repr(shape[:90])
