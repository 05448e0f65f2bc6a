"""The PNGs of ``floorflow simulate --plot`` (matplotlib, no screen): stations, stages, WIP, lead times.

Each plot is first built as a ``Figure`` from a result's figures (``*_figure``), then saved. Every plot
says what was run and the arrival rate against the line's capacity, every bar carries its value, and
an overload warning (arrivals past capacity) is written in red under the plot it would mislead. The
same figures give the same files.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from engine.simulate import Result

BAR_COLOUR = "#4878a8"
PASS_COLOUR = "#3a7d44"
WARN_COLOUR = "#c04040"
P95_COLOUR = "#e08a3c"
WIDTH_IN = 9.0
LEAD_BARS = 20
"""The lead-time histogram's bars: its fine bins gathered into this many of equal width."""
_STYLE: dict[Any, Any] = {  # rc_context wants its own key type; these are all rc keys
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
Figures = dict[str, Any]


def write_plots(result: Result, into: Path) -> list[Path]:
    """Write every plot into the directory ``into`` (made if missing); the files written, in order."""
    into.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with _style():
        for name, draw in PLOTS:
            path = into / name
            draw(result).savefig(path, dpi=100, metadata={"Software": None})
            written.append(path)
    return written


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(_STYLE):
        yield


def utilization_figure(result: Result) -> Figure:
    """Per station, the share of its slot time in use, with its slots and capacity under its name."""
    figures = result.figures
    stations: Figures = figures["stations"]
    names = list(stations)
    fig, ax = _figure(figures, "Station utilization (busiest station in red)", height=4.8)
    values = [100 * stations[n]["utilization"] for n in names]
    colours = [WARN_COLOUR if n == figures["bottleneck"] else BAR_COLOUR for n in names]
    bars = ax.bar(range(len(names)), values, color=colours)
    ax.bar_label(bars, labels=[f"{v:.1f}%" for v in values], padding=2, fontsize=8)
    ax.set_xticks(range(len(names)), [_station_label(n, stations[n]) for n in names], rotation=30, ha="right")
    ax.set_ylabel("utilization (% of slot time)")
    ax.set_ylim(0, 110)
    return fig


def yield_figure(result: Result) -> Figure:
    """Per stage, first-pass and final yield as horizontal bars, each with its value written on it."""
    figures = result.figures
    stages: Figures = figures["stages"]
    names = list(stages)
    fig, ax = _figure(figures, "Yield per stage (per arrival at the stage)", height=1.6 + 0.42 * max(len(names), 1))
    rows = range(len(names))
    for offset, key, label, colour in (
        (-0.2, "first_pass_yield", "first-pass yield", BAR_COLOUR),
        (0.2, "final_yield", "final yield (retries included)", PASS_COLOUR),
    ):
        values = [100 * stages[n][key] for n in names]
        bars = ax.barh([r + offset for r in rows], values, 0.4, label=label, color=colour)
        ax.bar_label(bars, labels=[f"{v:.2f}%" for v in values], padding=3, fontsize=7)
    _stage_rows(ax, names)
    ax.set_xlim(0, 118)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.set_xlabel("yield (%)")
    _legend_above(ax)
    return fig


def queue_figure(result: Result) -> Figure:
    """Per stage units queue for, the mean and 95th-percentile wait for a slot before it."""
    figures = result.figures
    stages = {n: s for n, s in figures["stages"].items() if s["queued"]}
    names = list(stages)
    title = "Wait for a slot before each stage (stages units queue for)"
    fig, ax = _figure(figures, title, height=1.6 + 0.42 * max(len(names), 1))
    longest = max((max(s["queue_p95_s"], s["queue_mean_s"]) for s in stages.values()), default=0.0)
    per, unit = _time_unit(longest)
    rows = range(len(names))
    for offset, key, label, colour in (
        (-0.2, "queue_mean_s", "mean", BAR_COLOUR),
        (0.2, "queue_p95_s", "95th percentile", P95_COLOUR),
    ):
        seconds = [stages[n][key] for n in names]
        bars = ax.barh([r + offset for r in rows], [s / per for s in seconds], 0.4, label=label, color=colour)
        ax.bar_label(bars, labels=[_duration(s) for s in seconds], padding=3, fontsize=7)
    _stage_rows(ax, names)
    ax.set_xlim(0, max(1.0, longest / per) * 1.2)
    ax.set_xlabel(f"wait ({unit})")
    if names:
        _legend_above(ax)
    else:
        ax.text(0.5, 0.5, "no unit queued", transform=ax.transAxes, ha="center")
    return fig


def wip_figure(result: Result) -> Figure:
    """Units in the line over the run, with its time mean and peak."""
    figures = result.figures
    fig, ax = _figure(figures, "Work in progress", height=4.5)
    if result.wip:
        ax.step([t / 3600 for t, _ in result.wip], [n for _, n in result.wip], where="post", color=BAR_COLOUR)
    wip = figures["wip"]
    ax.axhline(wip["mean"], color=PASS_COLOUR, linestyle="--", label=f"time mean {wip['mean']:,.1f} units")
    ax.axhline(wip["peak"], color=WARN_COLOUR, linestyle=":", label=f"peak {wip['peak']:,} units")
    ax.set_xlabel("time since the first arrival (h)")
    ax.set_ylabel("units in the line")
    ax.set_ylim(0, max(wip["peak"], 1) * 1.15)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def lead_time_figure(result: Result) -> Figure:
    """Shipped units' time in the line as a histogram, each bar with its count, and its p50 and p95."""
    figures = result.figures
    fig, ax = _figure(figures, "Lead time of shipped units", height=4.5)
    lows, counts, width = _lead_bars(result)
    if counts:
        bars = ax.bar(lows, counts, width=width, align="edge", color=BAR_COLOUR, edgecolor="white")
        ax.bar_label(bars, labels=[f"{c:,}" if c else "" for c in counts], padding=2, fontsize=7)
    lead = figures["lead_time"]
    for key, style in (("p50_s", "-"), ("p95_s", "--")):
        ax.axvline(lead[key] / 3600, color=WARN_COLOUR, linestyle=style, label=f"{key[:-2]} {lead[key] / 3600:.2f} h")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("lead time (h)")
    ax.set_ylabel("shipped units")
    return fig


PLOTS: Sequence[tuple[str, Callable[[Result], Figure]]] = (
    ("utilization.png", utilization_figure),
    ("yields.png", yield_figure),
    ("queues.png", queue_figure),
    ("wip.png", wip_figure),
    ("lead_time.png", lead_time_figure),
)
"""Each file ``--plot`` writes and the figure drawn into it."""


def _figure(figures: Figures, title: str, *, height: float) -> tuple[Figure, Axes]:
    """A figure with one plot: its title, what was run, arrivals against capacity, and any warning under it."""
    fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
    ax = fig.subplots()
    fig.suptitle(f"{title}\n{_run_line(figures)}\n{_rates_line(figures)}", fontsize=9)
    if figures["warnings"]:
        text = "\n".join(textwrap.fill(f"warning: {w}", 120) for w in figures["warnings"])
        fig.supxlabel(text, color=WARN_COLOUR, fontsize=8, ha="center")
    return fig, ax


def _run_line(figures: Figures) -> str:
    return (
        f"{figures['recipe']} v{figures['version']} · profile {figures['profile']} · seed {figures['seed']} · "
        f"{figures['units']:,} units, {figures['shipped']:,} shipped over {figures['hours']:,.1f} h "
        f"({figures['uph']:,.1f} units/h)"
    )


def _rates_line(figures: Figures) -> str:
    """Arrivals next to the line's capacity: the units/h the profile feeds the line and the slowest station's."""
    arrivals = f"arrivals {figures['arrival_rate_per_hour']:,.1f} units/h"
    if figures["capacity_per_hour"] is None:
        return f"{arrivals} · capacity without limit"
    capacity = f"capacity {figures['capacity_per_hour']:,.1f} units/h"
    return f"{arrivals} · {capacity} (slowest station: '{figures['capacity_station']}')"


def _station_label(name: str, station: Figures) -> str:
    capacity = station.get("capacity_per_hour")
    per_hour = f", {capacity:,.1f} units/h" if capacity is not None else ""
    return f"{name}\n{station['slots']:,} slots{per_hour}"


def _legend_above(ax: Axes) -> None:
    """The legend in a row above the plot, where no bar can be under it."""
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2, fontsize=8, frameon=False)


def _stage_rows(ax: Axes, names: list[str]) -> None:
    """Stages as rows, in route order from the top."""
    ax.set_yticks(list(range(len(names))), names)
    ax.invert_yaxis()


def _time_unit(longest_s: float) -> tuple[float, str]:
    """Seconds, minutes or hours, whichever keeps the longest value readable."""
    if longest_s >= 2 * 3600:
        return 3600.0, "h"
    if longest_s >= 120:
        return 60.0, "min"
    return 1.0, "s"


def _duration(seconds: float) -> str:
    """A wait as written on its bar, in the unit that suits it: ``0.4 s``, ``56 s``, ``14.2 min``, ``2.3 h``."""
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:,.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:,.1f} min"
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def _lead_bars(result: Result) -> tuple[list[float], list[int], float]:
    """The lead-time histogram's fine bins gathered into ``LEAD_BARS`` bars of equal width, in hours."""
    bins = result.lead.bins()
    if not bins:
        return [], [], 0.0
    first, last = bins[0][0] / 3600, bins[-1][1] / 3600
    width = (last - first) / LEAD_BARS or 1.0
    counts = [0] * LEAD_BARS
    for low, high, count in bins:
        middle = (low + high) / 2 / 3600
        counts[min(int((middle - first) / width), LEAD_BARS - 1)] += count
    return [first + i * width for i in range(LEAD_BARS)], counts, width
