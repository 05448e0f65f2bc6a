"""Write large valid recipes: the largest ``floorflow validate`` accepts, or one of N stages.

The route repeats a short pattern of real step types (measurements with limits, parameters taken
from ``params:``, an any_order group every few stages, a rework loop), so every check has work to
do on every stage, not just the YAML parser.

    python bench/bigrecipe.py OUT.yaml [--stages N | --bytes B | --schema-error | --extends N]

Without --stages, the recipe is the largest whose file stays within --bytes (default: 1 MiB, the
largest recipe floorflow accepts). ``--schema-error`` writes that recipe with one key misspelt near
its end; ``--extends N`` writes OUT.yaml as a child of N after:/before: entries over a base of N
stages (written next to it as OUT.base.yaml). Importable: ``big_recipe(stages)``,
``largest_recipe(limit)``, ``with_schema_error(text)`` and ``extends_recipes(entries, base_name)``
return the text.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MIB = 1 << 20

_HEAD = """\
recipe: big-line
version: 1
product: {name: Big Line, sku: BIG-1}
lifecycle: [Blank, Done]
params:
  power_dbm: {min: 14.0, max: 18.0}
  region: EU
stations:
  a: {slots: 4}
  b: {slots: 2}
stages:
  - {id: connect, step: device.connect, station: a}
"""
_TAIL = """\
  - {id: finish, step: lifecycle.advance, station: b, with: {to: Done}, irreversible: true}
rework:
  - {id: rework, step: manual.checklist, station: b, with: {checks: [reseat]}, then: connect, max_visits: 2}
"""
_GROUP_EVERY = 50


def _stage(n: int) -> str:
    """The n-th generated stage as one flow-style line: mostly short ones, a richer one every 8th."""
    if n == 3:
        return f"{{id: s{n}, step: manual.checklist, station: a, with: {{checks: [look]}}, on_fail: rework}}"
    kind = n % 16
    if kind == 5:
        return (
            f"{{id: s{n}, step: rf.measure, station: b, with: {{band: wifi-2g4, channels: [1, 6]}}, "
            f'measurements: {{p{n}: {{limits: "${{params.power_dbm}}", units: dBm}}}}}}'
        )
    if kind == 13:
        return (
            f"{{id: s{n}, step: rf.verify_config, station: b, "
            f'with: {{region: "${{params.region}}", target_power_dbm: 16.0}}}}'
        )
    if kind % 2:
        return f"{{id: s{n}, step: manual.checklist, station: a, with: {{checks: [look]}}}}"
    return f"{{id: s{n}, step: device.record_id, station: a}}"


def _body(stages: int) -> list[str]:
    """The route between connect and finish: ``stages`` stages, some gathered in any_order groups."""
    lines: list[str] = []
    n = 0
    while n < stages:
        if n % _GROUP_EVERY == 0 and stages - n >= 3:
            lines.append(f"  - any_order:\n      id: g{n}\n      stages:\n")
            lines.extend(f"        - {_stage(n + i)}\n" for i in range(3))
            n += 3
        else:
            lines.append(f"  - {_stage(n)}\n")
            n += 1
    return lines


def big_recipe(stages: int) -> str:
    """A valid recipe of ``stages`` generated stages (plus connect, finish and one rework stage)."""
    return _HEAD + "".join(_body(stages)) + _TAIL


def largest_recipe(limit: int = MIB) -> str:
    """The valid recipe of the most generated stages whose UTF-8 text is at most ``limit`` bytes."""
    low, high = 0, 1
    while len(big_recipe(high).encode()) <= limit:
        low, high = high, high * 2
    while high - low > 1:  # the size grows with the stage count: bisect the largest that fits
        middle = (low + high) // 2
        low, high = (middle, high) if len(big_recipe(middle).encode()) <= limit else (low, middle)
    return big_recipe(low)


def with_schema_error(text: str) -> str:
    """``text`` with the last generated stage's ``station:`` misspelt ``statoin:``: one unknown key, near the end."""
    at = text.rindex("station: a,")
    return text[:at] + "statoin" + text[at + len("station") :]


def extends_recipes(entries: int, base_name: str) -> tuple[str, str]:
    """A base of ``entries`` generated stages and a child (extending ``base_name``) of ``entries``
    route entries, each placed by after: or before: (one in three moves an inherited stage, the
    others are new stages), so that merging finds two stages by id for each entry."""
    child = [f"recipe: big-child\nversion: 2\nextends: {base_name}\nstages:\n"]
    for n in range(entries):
        anchor = f"s{n}"
        if n % 3 == 2 and n % _GROUP_EVERY not in (0, 1, 2, _GROUP_EVERY - 1) and n + 1 < entries:
            child.append(f"  - {{id: s{n}, after: s{n + 1}}}\n")
        else:
            where = "after" if n % 2 else "before"
            child.append(f"  - {{id: x{n}, step: device.record_id, station: a, {where}: {anchor}}}\n")
    return big_recipe(entries), "".join(child)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a large valid recipe.")
    parser.add_argument("out", type=Path, metavar="OUT.yaml")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--stages", type=int, metavar="N", help="generated stages")
    size.add_argument("--bytes", type=int, default=MIB, metavar="B", help="largest file size (default 1 MiB)")
    size.add_argument("--extends", type=int, metavar="N", help="a child of N after:/before: entries, and its base")
    parser.add_argument("--schema-error", action="store_true", help="misspell one key of the recipe written")
    args = parser.parse_args(argv)
    if args.extends is not None:
        base_path = args.out.with_suffix(".base.yaml")
        base, text = extends_recipes(args.extends, base_path.name)
        base_path.write_text(base, encoding="utf-8")
    else:
        text = big_recipe(args.stages) if args.stages is not None else largest_recipe(args.bytes)
    if args.schema_error:
        text = with_schema_error(text)
    args.out.write_text(text, encoding="utf-8")
    what = f"{args.extends} entries" if args.extends is not None else f"{text.count('id: s')} generated stages"
    print(f"{args.out}: {len(text.encode())} bytes, {what}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
