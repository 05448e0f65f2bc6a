"""The store's verbs: ``units show|list|release``, ``recipe release`` and ``export``.

Each opens the store named by ``--store`` (default ``$FLOORFLOW_STORE``, else ``sqlite:///floorflow.db``);
a SQLite file that does not exist is a usage error here (exit 2), never silently created empty, and so
is a unit the store does not know or cannot release.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from rich.console import Console

from engine.cli.shared import ExitCode, UsageError, check_writable, open_existing, parse_since
from engine.outcome import UnitStatus
from engine.store import StoreError, default_url, open_store
from engine.store.sqlstore import UNRELEASED_RUN


def units_show(args: argparse.Namespace) -> int:
    from engine.report.unitjson import json_text, unit_document
    from engine.report.unitview import show_unit

    with open_existing(args.store) as store:
        record = store.unit(args.serial)
        if not record.attempts and record.product is None and record.lot is None and not record.identities:
            print(f"floorflow: unit {args.serial} is not in the store {store.shown}", file=sys.stderr)
            return ExitCode.USAGE
        held = store.lot_hold(record.lot) if record.lot else None
    if args.format == "json":
        sys.stdout.write(json_text(unit_document(record, lot_hold=held)))
    else:
        show_unit(record, Console(), held=held)
    return ExitCode.OK


def units_list(args: argparse.Namespace) -> int:
    from engine.report.unitjson import json_text, unit_summary
    from engine.report.unitview import list_units

    with open_existing(args.store) as store:
        status = None if args.status == UnitStatus.HELD else args.status
        records = store.units(status=status, lot=args.lot)
        holds = {lot.lot: lot.hold for lot in store.lots() if lot.hold is not None}
    if args.status == UnitStatus.HELD:  # held is not stored: an in-route unit whose lot is on hold
        records = [r for r in records if r.status == UnitStatus.IN_ROUTE and r.lot in holds]
    elif args.status == UnitStatus.IN_ROUTE:
        records = [r for r in records if r.lot not in holds]
    if args.format == "json":
        sys.stdout.write(json_text([unit_summary(r, lot_hold=holds.get(r.lot or "")) for r in records]))
    else:
        list_units(records, Console(), holds=holds)
    return ExitCode.OK


def units_release(args: argparse.Namespace) -> int:
    with open_existing(args.store) as store:
        try:
            what = store.release(args.serial, args.decision, args.by, args.note)
        except (LookupError, ValueError) as exc:
            print(f"floorflow: {exc.args[0] if exc.args else exc}", file=sys.stderr)
            return ExitCode.USAGE
    print(f"unit {args.serial} released by {args.by}: {what}")
    return ExitCode.OK


def recipe_release(args: argparse.Namespace) -> int:
    from engine.recipe.check import check_recipe
    from engine.registry import Registry

    if not args.recipe.is_file():
        raise UsageError(f"{args.recipe}: no such file")
    flow, problems = check_recipe(args.recipe, Registry.discover(), recipe_root=args.recipe_root)
    for diag in problems:
        print(diag, file=sys.stderr)
    if flow is None:
        print(f"floorflow: {args.recipe} has errors: it is not released", file=sys.stderr)
        return ExitCode.RECIPE_ERRORS
    if flow.abstract:
        raise UsageError(f"{args.recipe}: recipe '{flow.recipe}' is abstract: release a recipe that extends it")
    try:
        store = open_store(args.store or default_url())
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    with store:
        earlier = store.release_recipe(flow.recipe, flow.version, flow.content_hash, str(args.recipe), args.by)
    named = f"{flow.recipe} v{flow.version} (hash {flow.content_hash[:12]})"
    if earlier is not None:
        print(f"{named} was already released for production by {earlier.by} at {_shown(earlier.at)}")
    else:
        print(f"{named} released for production by {args.by}")
    return ExitCode.OK


def export(args: argparse.Namespace) -> int:
    from engine.report.export import export as write

    since = parse_since(args.since) if args.since is not None else None
    check_writable(args.out)
    with open_existing(args.store) as store:
        units = store.units()
        lots = store.lots()
        unreleased = [d for d in store.audit() if d.action == UNRELEASED_RUN]
    count = write(args.format, units, lots, args.out, since=since, unreleased=unreleased)
    print(f"{count} attempts of {len(units)} units written to {args.out}", file=sys.stderr)
    return ExitCode.OK


def _shown(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")
