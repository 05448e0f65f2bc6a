"""The PNGs of a sweep's ``--plot``: UPH against each varied setting, with its 95% confidence band.

One plot per varied setting, the other settings held at one scenario's values (the chosen one, or the
one with the highest UPH when none was chosen); each point carries its mean, the target is a dashed
line, the held scenario is marked. Drawn as ``engine.simulate.plots`` draws (matplotlib, no screen).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from engine.simulate.plots import BAR_COLOUR, PASS_COLOUR, WARN_COLOUR, WIDTH_IN
from engine.simulate.sweep import Scenario, choose

TITLE_CHARS = 110
"""A title's line is wrapped past this many characters (the figure is as wide as the report's)."""

_STYLE: dict[Any, Any] = {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False}


def write_sweep_plots(
    scenarios: Sequence[Scenario], held: int, target_uph: float | None, title: str, into: Path
) -> list[Path]:
    """Write ``uph-PATH.png`` per varied setting into ``into`` (made if missing), the others at scenario
    ``held``'s values; ``title`` says what was run. The files written, in the order of the settings."""
    into.mkdir(parents=True, exist_ok=True)
    written = []
    with matplotlib.rc_context(_STYLE):
        for path in scenarios[held].settings:
            out = into / f"uph-{path}.png"
            uph_figure(scenarios, path, held, target_uph, title).savefig(out, dpi=100, metadata={"Software": None})
            written.append(out)
    return written


def uph_figure(scenarios: Sequence[Scenario], path: str, held: int, target_uph: float | None, title: str) -> Figure:
    """UPH (mean and 95% band) against setting ``path``, over the scenarios that share scenario ``held``'s
    other settings."""
    anchor = scenarios[held].settings
    others = {k: v for k, v in anchor.items() if k != path}
    row = sorted(
        (s for s in scenarios if all(s.settings[k] == v for k, v in others.items())), key=lambda s: s.settings[path]
    )
    xs = [s.settings[path] for s in row]
    uph = [s.figures["uph"] for s in row]
    fig = Figure(figsize=(WIDTH_IN, 4.8), layout="constrained")
    ax = fig.subplots()
    held_at = ", ".join(f"{k} = {v:g}" for k, v in others.items())
    held_line = textwrap.wrap(f"held at {held_at}", TITLE_CHARS) if held_at else []
    heading = [f"Units per hour against {path}", *textwrap.wrap(title, TITLE_CHARS), *held_line]
    fig.suptitle("\n".join(heading), fontsize=9)
    if all(u["low"] is not None for u in uph):
        ax.fill_between(
            xs, [u["low"] for u in uph], [u["high"] for u in uph], color=BAR_COLOUR, alpha=0.25, label="95% interval"
        )
    means = [u["mean"] for u in uph]
    ax.plot(xs, means, marker="o", color=BAR_COLOUR, label="mean UPH")
    for x, mean in zip(xs, means, strict=True):
        ax.annotate(f"{mean:,.1f}", (x, mean), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    chosen = target_uph is not None and choose(scenarios, target_uph) == held
    mark = "chosen: the fewest resources meeting the target" if chosen else "highest mean UPH"
    ax.plot([anchor[path]], [scenarios[held].figures["uph"]["mean"]], "*", color=PASS_COLOUR, markersize=14, label=mark)
    if target_uph is not None:
        ax.axhline(target_uph, color=WARN_COLOUR, linestyle="--", label=f"target {target_uph:g} units/h")
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.set_xlabel(path)
    ax.set_ylabel("units per hour (shipped)")
    ax.set_ylim(0, max([*(u["high"] or u["mean"] for u in uph), target_uph or 0.0, 1.0]) * 1.15)
    ax.legend(loc="lower right", fontsize=8)
    return fig
