"""``floorflow profile OUT.yaml``: a line profile for ``floorflow simulate``, fitted to the line's own records.

The store sums each stage's attempt times and failures over the window (``engine.store.timings``);
each stage's time distribution is chosen by ``engine.simulate.fitting``; the profile is written with
ruamel.yaml, a comment on each stage saying what it was fitted to. docs/profiles.md has the rules.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli.shared import ExitCode, UsageError, check_writable, open_existing, parse_since, reading_store
from engine.files import write_atomically
from engine.inputs import name_argument

if TYPE_CHECKING:  # building the parser imports no room: the verb imports them when it runs
    from collections.abc import Callable

    from ruamel.yaml.comments import CommentedMap

    from engine.simulate.fitting import Fit
    from engine.store.figures import Window
    from engine.store.timings import StageTimes, Timings

MIN_ATTEMPTS = 10
"""A stage with fewer counted attempts gets no time of its own: the default profile's stands."""


def add_profile_verb(verbs: Any, store_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """The verb on ``floorflow``'s parser (``verbs``, its subparsers), its store option as every verb's."""
    profile = verbs.add_parser("profile", help="a line profile for simulate: each stage's times and failures, fitted")
    profile.add_argument("out", metavar="OUT.yaml", type=Path, help="the profile to write")
    profile.add_argument("--since", metavar="WHEN", help="only attempts ended since this ISO 8601 date or time")
    profile.add_argument("--until", metavar="WHEN", help="and up to this one (default: all since)")
    profile.add_argument("--recipe", metavar="NAME", type=name_argument, help="only the units run with this recipe")
    store_option(profile)
    profile.set_defaults(run=profile_verb)


def profile_verb(args: argparse.Namespace) -> int:
    """``floorflow profile``: a store that cannot be read is a usage error, as under every verb that reads one."""
    return reading_store(lambda: write_profile(args))


def write_profile(args: argparse.Namespace) -> int:
    """Fit a profile to the window's records and write it to OUT."""
    from engine.extras import missing

    absent = missing("fitting a line profile (floorflow profile)", "numpy", "scipy")
    if absent is not None:
        raise UsageError(absent)
    out = Path(args.out)
    check_writable(out)
    window = _window(args)
    with open_existing(args.store) as store:
        found = store.stage_timings(window)
        shown = store.shown
    _one_recipe(found, window, shown)
    if not found.stages:
        raise UsageError(f"no attempts of {_what(window)} in {shown}: no profile written")
    recipe = window.recipe or found.recipes[0]
    text = _document(found, dataclasses.replace(window, recipe=recipe), shown)
    try:
        write_atomically(out, text.encode())
    except OSError as exc:
        raise UsageError(f"{out}: cannot be written: {exc.strerror or exc}") from None
    fitted = sum(1 for s in found.stages if s.count >= MIN_ATTEMPTS)
    print(f"profile of {len(found.stages)} stages of {recipe} ({fitted} timed) written to {out}", file=sys.stderr)
    return ExitCode.OK


def _window(args: argparse.Namespace) -> Window:
    """The attempts the profile is fitted to, from the options: times as seconds since the epoch."""
    from engine.store.figures import Window

    since = parse_since(args.since) if args.since is not None else None
    until = parse_since(args.until, "--until") if args.until is not None else None
    if since is not None and until is not None and until < since:
        raise UsageError(f"--until {args.until!r} is before --since {args.since!r}")
    return Window(since=since, until=until, recipe=args.recipe)


def _one_recipe(found: Timings, window: Window, shown: str) -> None:
    """A profile is of one recipe: several in the window without ``--recipe`` is a usage error naming them."""
    if window.recipe is None and len(found.recipes) > 1:
        names = ", ".join(found.recipes)
        raise UsageError(f"{shown} holds attempts of several recipes ({names}): choose one with --recipe NAME")


def _what(window: Window) -> str:
    """The window in words: its recipe and its times."""
    parts = [f"recipe {window.recipe}" if window.recipe else "any recipe"]
    if window.since is not None:
        parts.append(f"ended since {_when(window.since)}")
    if window.until is not None:
        parts.append(f"up to {_when(window.until)}")
    return " ".join(parts)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _document(found: Timings, window: Window, shown: str) -> str:
    """The profile as YAML text, with its comments."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    written = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = CommentedMap()
    doc["profile"] = f"{window.recipe}, fitted to {shown}"
    doc["description"] = (
        f"Fitted by floorflow profile to the counted attempts (PASS, FAIL, ERROR) of {_what(window)} in {shown}, "
        f"written {written}. What it leaves out comes from the shipped default profile."
    )
    header = [
        f"Written by `floorflow profile` from {shown} ({_what(window)}) at {written}.",
        "Each stage: its attempts' time distribution (the one that fits them best, by the Kolmogorov-Smirnov",
        "statistic), `fail` the chance an attempt with no failed measurement fails, `measurements` the chance",
        "an attempt judges each measurement FAIL. See docs/profiles.md.",
    ]
    doc.yaml_set_start_comment("\n".join(header))
    stages = CommentedMap()
    column = 2 + max(len(times.stage) for times in found.stages) + 3  # the comments in line, past the longest id
    for times in found.stages:
        entry, comment = _stage(times)
        stages[times.stage] = entry
        stages.yaml_add_eol_comment(comment, times.stage, column=column)
    doc["stages"] = stages
    yaml = YAML()
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    text = StringIO()
    yaml.dump(doc, text)
    return text.getvalue()


def _stage(times: StageTimes) -> tuple[CommentedMap, str]:
    """A stage's entry (time, fail, measurements) and the comment that says what it was fitted to."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    from engine.simulate.fitting import Moments, fit_times

    entry = CommentedMap()
    plural = "s" if times.count != 1 else ""
    said = f"{times.count:,} attempt{plural}, mean {_seconds(times.mean)}, sd {_seconds(times.sd)}"
    if times.count < MIN_ATTEMPTS:
        comment = f"{said}; too few to fit a time (at least {MIN_ATTEMPTS}): the default profile's time stands"
    else:
        moments = Moments(times.count, times.mean, times.sd, times.least, times.most)
        fit = fit_times(moments, times.sample)
        time = fit.as_profile()
        for key, value in time.items():
            time[key] = _flow_style(value, CommentedMap, CommentedSeq)
        entry["time"] = _flow_style(time, CommentedMap, CommentedSeq)
        comment = f"{said}; {_fits(fit, len(times.sample))}"
    entry["fail"] = _chance(times.clean_failed, times.clean)
    if times.measurements:
        chances = {name: _chance(failed, times.count) for name, failed in times.measurements.items()}
        entry["measurements"] = _flow_style(chances, CommentedMap, CommentedSeq)
    return entry, comment


def _fits(fit: Fit, sampled: int) -> str:
    if fit.kind == "fixed":
        return "fixed (the times hardly vary)"
    return f"{fit.kind} fits best (KS {fit.ks:.3f} over {sampled:,} of them)"


def _chance(failed: int, of: int) -> float:
    """A chance to 4 significant digits (0 when there is nothing to count)."""
    return float(f"{failed / of:.4g}") if of else 0.0


def _seconds(x: float) -> str:
    if x == 0 or math.isnan(x):
        return "0 s"
    return f"{x:.3g} s" if abs(x) >= 0.1 else f"{x * 1000:.3g} ms"


def _flow_style(value: object, mapping: type, sequence: type) -> object:
    """A time's or measurements' mapping (or a triangle) written on one line, as the shipped profiles write them."""
    if isinstance(value, dict):
        flow = mapping(value)
        flow.fa.set_flow_style()
        return flow
    if isinstance(value, list):
        flow = sequence(value)
        flow.fa.set_flow_style()
        return flow
    return value
