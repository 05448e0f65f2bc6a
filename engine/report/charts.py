"""The line report's charts, drawn with matplotlib (no screen) and returned as SVG text to inline in the page.

Each function takes a part of the report's figures (``engine.report.figures``'s layout) and returns one
``<svg>`` element. The drawing is deterministic: text stays text (``svg.fonttype: none``, so a value written
on a bar can be found in the page), ids are salted with a fixed string, and no date is written in the
metadata; the same figures give the same SVG.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

PASS_COLOUR = "#3a7d44"
FIRST_PASS_COLOUR = "#4878a8"
FAIL_COLOUR = "#c04040"
LIMIT_COLOUR = "#a00000"
MARGINAL_COLOUR = "#f2c14e"
WIDTH_IN = 8.0
"""Every chart's width in inches; the page scales it to the screen's width."""
MOST_BARS = 20
"""A Pareto shows its first bars only: past twenty the rest are a long flat tail."""
_STYLE: dict[Any, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "floorflow-report",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
Figures = dict[str, Any]
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
_NAMESPACES = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')
"""Inside an HTML page an SVG needs neither its metadata (creator, licence) nor its namespaces: both name
addresses, and the page names none."""


@contextmanager
def _drawing() -> Iterator[Any]:
    """pyplot on the Agg backend (files only, never a window) with the report's style, for one chart."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    with matplotlib.rc_context(_STYLE):
        yield pyplot


def _svg(plt: Any, fig: Any) -> str:
    """The figure as one ``<svg>`` element for an HTML page: no XML prolog, doctype, metadata or namespace."""
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight", pad_inches=0.25, metadata={"Date": None})
    plt.close(fig)
    text = out.getvalue()
    text = _METADATA.sub("", text[text.index("<svg") :])
    return _NAMESPACES.sub("", text).strip() + "\n"


def _time(text: str) -> datetime:
    """An RFC 3339 time of the figures as a datetime in UTC."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _legend(ax: Any, **where: Any) -> None:
    """The chart's legend, when something in it is labelled (a histogram without limits has nothing to name)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**where)


def _time_axis(ax: Any) -> None:
    """The x axis as times in UTC, ticks as the span asks (minutes for a short run, days for a long one)."""
    from matplotlib import dates

    untyped: Any = dates  # its locators and formatters have no annotations
    locator = untyped.AutoDateLocator(tz=UTC)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(untyped.ConciseDateFormatter(locator, tz=UTC))


def percent(ratio: float | None) -> str:
    """A ratio as the charts and tables write it: ``97.5%``, or ``n/a`` when there was nothing to divide."""
    return "n/a" if ratio is None else f"{100 * ratio:.1f}%"


def number(value: float | None, digits: int = 4) -> str:
    """A statistic as written beside a chart: a few significant digits, ``n/a`` when unknown."""
    return "n/a" if value is None else f"{value:.{digits}g}"


def yield_chart(stages: Sequence[Figures]) -> str:
    """Per stage, first-pass and final yield as horizontal bars, each with its value written on it."""
    names = [s["stage"] for s in stages]
    with _drawing() as plt:
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 1.0 + 0.65 * max(len(names), 1)))
        rows = range(len(names))
        for offset, key, label, colour in (
            (-0.2, "first_pass_yield", "first-pass yield", FIRST_PASS_COLOUR),
            (0.2, "final_yield", "final yield", PASS_COLOUR),
        ):
            values = [s[key] for s in stages]
            bars = ax.barh([r + offset for r in rows], [v or 0.0 for v in values], 0.4, label=label, color=colour)
            ax.bar_label(bars, labels=[percent(v) for v in values], padding=3, fontsize=9)
        ax.set_yticks(list(rows), names)
        ax.invert_yaxis()  # route order reads top to bottom
        ax.set_xlim(0, 1.15)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0%", "25%", "50%", "75%", "100%"])
        _legend(ax, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, fontsize=8, frameon=False)
        return _svg(plt, fig)


def pareto_chart(labels: Sequence[str], failures: Sequence[int], title: str) -> str:
    """Failures as horizontal bars, most first from the top, each with its count, and the cumulative share as a
    line on a second axis (0-100%, along the top)."""
    ranked = sorted(zip(labels, failures, strict=True), key=lambda pair: -pair[1])[:MOST_BARS]
    total = sum(failures) or 1
    cumulative, running = [], 0
    for _, count in ranked:
        running += count
        cumulative.append(100 * running / total)
    with _drawing() as plt:
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 1.2 + 0.4 * max(len(ranked), 1)))
        places = list(range(len(ranked)))
        bars = ax.barh(places, [count for _, count in ranked], 0.6, color=FAIL_COLOUR)
        ax.bar_label(bars, padding=3, fontsize=9)
        ax.set_yticks(places, [_short(label) for label, _ in ranked], fontsize=8)
        ax.invert_yaxis()  # most first, at the top
        ax.set_xlabel("failures")
        ax.set_xlim(0, max([count for _, count in ranked] + [1]) * 1.15)
        share = ax.twiny()
        share.spines["top"].set_visible(True)
        share.plot(cumulative, places, color="#333333", marker="o", markersize=4)
        share.set_xlim(0, 105)
        share.set_xlabel("cumulative %", fontsize=8)
        ax.set_title(title, loc="left")
        return _svg(plt, fig)


def _short(label: str, most: int = 48) -> str:
    """A bar's label cut to ``most`` characters (an error's words can run long)."""
    return label if len(label) <= most else label[: most - 1] + "…"


def retest_chart(stages: Sequence[Figures]) -> str:
    """Per stage, the share of attempts that were retests, as bars with their values written on them."""
    names = [s["stage"] for s in stages]
    rates = [s["retest_rate"] for s in stages]
    with _drawing() as plt:
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.6))
        places = list(range(len(names)))
        bars = ax.bar(places, [100 * (r or 0.0) for r in rates], color="#b07aa1")
        ax.bar_label(bars, labels=[percent(r) for r in rates], padding=2, fontsize=9)
        ax.set_xticks(places, names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("retests (% of attempts)")
        ax.set_ylim(0, max([100 * (r or 0.0) for r in rates] + [1.0]) * 1.2)
        ax.set_title("Retest rate per stage")
        return _svg(plt, fig)


def throughput_chart(rows: Sequence[Figures]) -> str:
    """Units finished per hour over time, a line per station."""
    stations: dict[str, list[tuple[datetime, int]]] = {}
    for row in rows:
        stations.setdefault(row["station"], []).append((_time(row["hour"]), row["units"]))
    with _drawing() as plt:
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.8))
        for station, points in sorted(stations.items()):
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=4, label=station)
        _time_axis(ax)
        ax.set_ylabel("units per hour")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("hour (UTC)")
        _legend(ax, fontsize=8, loc="best")
        ax.set_title("Units per hour, per station")
        return _svg(plt, fig)


def stats_line(m: Figures) -> str:
    """``n 200 · mean 15.02 · sd 0.31 · Cp 1.6 · Cpk 1.4``: what is written beside a measurement's charts."""
    return (
        f"n {m['count']} · mean {number(m['mean'])} · sd {number(m['sd'])} · "
        f"Cp {number(m['cp'], 3)} · Cpk {number(m['cpk'], 3)}"
    )


def _limits(ax: Any, m: Figures, vertical: bool) -> None:
    """The limits as solid lines; the marginal zones (inside a limit, outside the marginal band) shaded."""
    line = ax.axvline if vertical else ax.axhline
    span = ax.axvspan if vertical else ax.axhspan
    for key, name in (("low", "low limit"), ("high", "high limit")):
        if m[key] is not None:
            line(m[key], color=LIMIT_COLOUR, linewidth=1.6, label=name)
    zones = ((m["low"], m["marginal_low"]), (m["marginal_high"], m["high"]))
    shaded = False
    for start, end in zones:
        if start is not None and end is not None and start < end:
            span(start, end, color=MARGINAL_COLOUR, alpha=0.35, zorder=0, label=None if shaded else "marginal")
            shaded = True


def histogram_chart(m: Figures) -> str:
    """A measurement's histogram with its limits, the marginal zones shaded, and n, mean, sd, Cp, Cpk written."""
    histogram = m["histogram"]
    with _drawing() as plt:
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.4))
        if histogram["counts"]:
            ax.stairs(histogram["counts"], histogram["edges"], fill=True, color=FIRST_PASS_COLOUR, alpha=0.8)
        _limits(ax, m, vertical=True)
        ax.set_xlabel(f"{m['name']} ({m['units']})" if m["units"] else m["name"])
        ax.set_ylabel("units")
        _legend(ax, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_title(f"{m['stage']} · {m['name']}\n{stats_line(m)}", fontsize=10)
        return _svg(plt, fig)


def _sources(run: Sequence[Figures]) -> dict[str, list[Figures]]:
    """The run's points by where they were measured: ``station socket N`` (a bad socket stands out)."""
    by_source: dict[str, list[Figures]] = {}
    for point in run:
        socket = "" if point["socket"] is None else f" socket {point['socket']}"
        by_source.setdefault(f"{point['station'] or 'unknown station'}{socket}", []).append(point)
    return dict(sorted(by_source.items()))


def run_chart(m: Figures) -> str:
    """A measurement's values over time, coloured by station and socket, with its limits: drift shows."""
    markers = "os^Dv<>p"
    with _drawing() as plt:
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.4))
        for n, (source, points) in enumerate(_sources(m["run"]).items()):
            times, values = [_time(p["at"]) for p in points], [p["value"] for p in points]
            marker = markers[(n // 10) % len(markers)]  # past ten colours, another shape
            ax.scatter(times, values, s=12, marker=marker, color=f"C{n % 10}", label=source)
        _limits(ax, m, vertical=False)
        _time_axis(ax)
        ax.set_ylabel(m["units"] or m["name"])
        ax.set_xlabel("time (UTC)")
        _legend(ax, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_title(f"{m['stage']} · {m['name']} over time")
        return _svg(plt, fig)


_ID = re.compile(r"[^A-Za-z0-9_-]+")


def chart_id(*parts: str) -> str:
    """An HTML id from names: ``hist-rf_test-tx_power_dbm``."""
    return "-".join(_ID.sub("_", part) for part in parts)
