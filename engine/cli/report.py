"""``floorflow report OUT``: the line's report for a window of time, a lot, a station or a recipe.

The figures (``engine.report.figures``, SQL aggregates over the store) are written as one HTML page with its
charts inline (``engine.report.page``), or with ``--format json`` as the figures document itself; OUT ``-``
writes to stdout. The store must be there (``engine.cli.shared.open_existing``), and OUT a new or regular file
in a directory that is there, checked before the store is read.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli.shared import ExitCode, UsageError, check_writable, open_existing, parse_since
from engine.files import write_atomically
from engine.report import strictjson

if TYPE_CHECKING:
    from engine.flow import Flow

STDOUT = "-"
"""OUT that means standard output."""


def report(args: argparse.Namespace) -> int:
    """Compute the window's figures and write them as the page (or the JSON document) to OUT."""
    from engine.report.figures import Window, line_figures

    window = _window(args)
    html = args.format == "html"
    if html:
        _drawable()
    out = None if str(args.out) == STDOUT else Path(args.out)
    if out is not None:
        check_writable(out)
    flow = None
    if args.recipe is not None and Path(args.recipe).is_file():
        flow = _recipe_file(Path(args.recipe))
        if flow is None:
            print(f"floorflow: {args.recipe} has errors: no report written", file=sys.stderr)
            return ExitCode.RECIPE_ERRORS
        window["recipe"] = flow.recipe
    with open_existing(args.store) as store:
        figures = line_figures(store, Window(**window), flow)
    data = _page(figures) if html else strictjson.dumps(figures, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(data)
        return ExitCode.OK
    try:
        write_atomically(out, data.encode())
    except OSError as exc:
        raise UsageError(f"{out}: cannot be written: {exc.strerror or exc}") from None
    units = figures["units"]["total"]
    print(f"report of {units} unit{'s' if units != 1 else ''} written to {out}", file=sys.stderr)
    return ExitCode.OK


def _window(args: argparse.Namespace) -> dict[str, Any]:
    """What the report covers, from the options: times as seconds since the epoch, names as given."""
    since = parse_since(args.since) if args.since is not None else None
    until = parse_since(args.until, "--until") if args.until is not None else None
    if since is not None and until is not None and until < since:
        raise UsageError(f"--until {args.until!r} is before --since {args.since!r}")
    return {"since": since, "until": until, "lot": args.lot, "station": args.station, "recipe": args.recipe}


def _recipe_file(path: Path) -> Flow | None:
    """The recipe file ``--recipe`` names, whose stages' marginal bands the charts draw; None when it has
    errors (printed, each at its file:line:col)."""
    from engine.recipe.check import check_recipe
    from engine.registry import Registry

    flow, problems = check_recipe(path, Registry.discover())
    for diag in problems:
        print(diag, file=sys.stderr)
    return flow


def _drawable() -> None:
    """The page's charts need matplotlib (the ``plots`` extra): without it, one line saying so."""
    from engine.extras import missing

    absent = missing("the HTML report (floorflow report)", "matplotlib")
    if absent is not None:
        raise UsageError(f"{absent}; --format json needs nothing more")


def _page(figures: dict[str, Any]) -> str:
    from engine.report.page import render_page

    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return render_page(figures, generated=generated)
