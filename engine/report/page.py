"""The line report as one self-contained HTML page: inline style, charts inline as SVG, no script, no external
reference; it reads on a phone (the charts scale to the screen's width) and prints.

It draws the report's figures (``engine.report.figures``'s layout) and nothing else: every number on the page
is in the figures document ``floorflow report --format json`` writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from engine.report import charts
from engine.report.charts import Figures, chart_id, number, percent

_CSS = """
* { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 1rem; max-width: 72rem; color: #111;
  background: #fff; font-size: 15px; line-height: 1.35; }
h1 { font-size: 1.5rem; margin: 0 0 0.2rem; }
h2 { font-size: 1.2rem; border-bottom: 2px solid #333; padding-bottom: 0.2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 0.3rem; }
p.meta { color: #444; margin-top: 0; }
svg { max-width: 100%; height: auto; display: block; }
figure.chart { margin: 0.6rem 0; }
figure.chart figcaption { font-size: 0.9rem; color: #333; margin-top: 0.2rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.3rem 0 0.8rem; font-size: 0.92rem; }
th, td { border: 1px solid #bbb; padding: 0.2rem 0.45rem; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.counts { display: grid; grid-template-columns: repeat(auto-fill, minmax(8rem, 1fr)); gap: 0.5rem; }
.count { border: 1px solid #bbb; border-radius: 6px; padding: 0.4rem 0.6rem; }
.count .n { display: block; font-size: 1.6rem; font-weight: 700; font-variant-numeric: tabular-nums; }
.count.shipped { background: #d9f2d9; }
.count.scrapped { background: #f8d0d0; }
.count.held, .count.quarantined, .count.aborted { background: #fbe9c4; }
.warning { background: #f8d0d0; border: 2px solid #a00; border-radius: 6px; padding: 0.4rem 0.8rem; margin: 1rem 0; }
.warning h2 { border: none; margin-top: 0.3rem; color: #800; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.stats { font-variant-numeric: tabular-nums; margin: 0.2rem 0; }
@media (max-width: 800px) {
  body { padding: 0.5rem; font-size: 14px; }
  .pair { grid-template-columns: 1fr; }
}
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2, h3 { break-after: avoid; }
  figure.chart, tr, .count, article.measurement { break-inside: avoid; }
  .scroll { overflow: visible; }
}
"""

UNIT_COUNTS = (
    ("total", "units"),
    ("shipped", "shipped"),
    ("scrapped", "scrapped"),
    ("in_route", "in route"),
    ("held", "held"),
    ("quarantined", "quarantined"),
    ("aborted", "aborted"),
    ("refused", "refused"),
)
"""The summary's counts: the figures' key and the words the page shows."""


def _e(value: Any) -> str:
    return "" if value is None else escape(str(value), quote=True)


def _table(headers: Iterable[str], rows: Iterable[Sequence[Any]], numeric: frozenset[int] = frozenset()) -> str:
    """A table of plain values (escaped here); the columns in ``numeric`` are right-aligned."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if n in numeric else ''}>{_e(v)}</td>" for n, v in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _figure(name: str, svg: str, caption: str = "", **data: str) -> str:
    """One chart: its SVG in a figure named by ``data-chart`` (and an id), with an optional caption."""
    more = "".join(f' data-{key}="{_e(value)}"' for key, value in data.items())
    ident = chart_id(name, *data.values())
    text = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f'<figure class="chart" id="{ident}" data-chart="{name}"{more}>{svg}{text}</figure>'


def render_page(figures: Figures, generated: str | None = None) -> str:
    """The report page of ``figures``; ``generated``: when it was made, as the page's header says it."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>floorflow line report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>floorflow line report</h1>",
        f'<p class="meta">{_e(window_text(figures["window"], generated))}</p>',
        _unreleased(figures["unreleased_recipes"]),
        _summary(figures["units"]),
        _yields(figures["stages"]),
        _pareto(figures["pareto"]),
        _retests(figures["stages"]),
        _throughput(figures["throughput"]),
        _holds(figures["quarantines"], figures["lot_holds"]),
        _measurements(figures["measurements"]),
        "</body></html>\n",
    ]
    return "\n".join(part for part in parts if part)


def window_text(window: Figures, generated: str | None) -> str:
    """What the report covers, in words: ``attempts from … to … · lot L1 · station rf`` (and when made)."""
    span = []
    if window.get("since"):
        span.append(f"from {window['since']}")
    if window.get("until"):
        span.append(f"until {window['until']}")
    words = ["attempts " + " ".join(span) if span else "all attempts"]
    words += [f"{key} {window[key]}" for key in ("lot", "station", "recipe") if window.get(key)]
    if generated:
        words.append(f"generated {generated}")
    return " · ".join(words)


def _unreleased(recipes: Sequence[Figures]) -> str:
    if not recipes:
        return ""
    rows = [(r["recipe"], r["version"], r["hash"], r["units"]) for r in recipes]
    return (
        '<section id="unreleased" class="warning" role="alert"><h2>Warning: units run with unreleased recipes</h2>'
        "<p>These recipe contents were never released for production, yet units were run with them.</p>"
        + _table(("recipe", "version", "hash", "units"), rows, frozenset({1, 3}))
        + "</section>"
    )


def _summary(units: Figures) -> str:
    cells = "".join(
        f'<div class="count {key}" data-count="{key}"><span class="n">{_e(units.get(key, 0))}</span>{_e(words)}</div>'
        for key, words in UNIT_COUNTS
    )
    return f'<section id="summary"><h2>Units</h2><div class="counts">{cells}</div></section>'


_YIELD_HEADERS = ("stage", "station", "units", "first pass", "first-pass yield", "passed", "final yield")


def _yields(stages: Sequence[Figures]) -> str:
    if not stages:
        return '<section id="yields"><h2>Yield per stage</h2><p>No attempts in this window.</p></section>'
    rows = [
        (
            s["stage"],
            s["station"],
            s["units"],
            s["first_pass"],
            percent(s["first_pass_yield"]),
            s["passed"],
            percent(s["final_yield"]),
            s["aborted"],
            s["held"],
        )
        for s in stages
    ]
    headers = (*_YIELD_HEADERS, "aborted", "held")
    caption = "First-pass and final yield; aborted attempts and units of held lots are not counted against them."
    return (
        '<section id="yields"><h2>Yield per stage</h2>'
        + _figure("yield", charts.yield_chart(stages), caption)
        + _table(headers, rows, frozenset(range(2, 9)))
        + "</section>"
    )


def _pareto(pareto: Figures) -> str:
    by_stage, by_check = pareto["by_stage"], pareto["by_check"]
    if not by_stage and not by_check:
        return '<section id="pareto"><h2>Failures</h2><p>No failures in this window.</p></section>'
    parts = ['<section id="pareto"><h2>Failures</h2>']
    if by_stage:
        svg = charts.pareto_chart([r["stage"] for r in by_stage], [r["failures"] for r in by_stage], "by stage")
        parts.append(_figure("pareto-stage", svg))
    if by_check:
        labels = [f"{r['stage']}: {r['check']}" for r in by_check]
        parts.append(
            _figure("pareto-check", charts.pareto_chart(labels, [r["failures"] for r in by_check], "by check"))
        )
    parts.append("</section>")
    return "".join(parts)


def _retests(stages: Sequence[Figures]) -> str:
    if not stages:
        return ""
    rows = [(s["stage"], s["attempts"], s["retests"], percent(s["retest_rate"])) for s in stages]
    return (
        '<section id="retests"><h2>Retests</h2>'
        + _figure("retests", charts.retest_chart(stages), "Attempts beyond each unit's first, as a share of attempts.")
        + _table(("stage", "attempts", "retests", "retest rate"), rows, frozenset({1, 2, 3}))
        + "</section>"
    )


def _throughput(rows: Sequence[Figures]) -> str:
    if not rows:
        return '<section id="throughput"><h2>Units per hour</h2><p>No unit finished in this window.</p></section>'
    caption = "Units finished (their last attempt ended) per station, per hour."
    chart = _figure("throughput", charts.throughput_chart(rows), caption)
    return f'<section id="throughput"><h2>Units per hour</h2>{chart}</section>'


def _decision_text(decision: Any) -> str:
    """A decision on a lot hold as one line: ``lot-released by Kim at 2026-11-21T11:00:00Z: retested``."""
    if not isinstance(decision, dict):
        return str(decision)
    words = str(decision.get("action") or "decided")
    words += f" by {decision['by']}" if decision.get("by") else ""
    words += f" at {decision['at']}" if decision.get("at") else ""
    return words + (f": {decision['reason']}" if decision.get("reason") else "")


def _holds(quarantines: Sequence[Figures], lot_holds: Sequence[Figures]) -> str:
    parts = ['<section id="holds"><h2>Quarantines and lot holds</h2><h3>Quarantined units</h3>']
    if quarantines:
        rows = [
            (q["serial"], q["reason"], q["at"], q["decision"] or "awaiting a decision", q["by"], q.get("decided_at"))
            for q in quarantines
        ]
        parts.append(_table(("unit", "reason", "quarantined at", "decision", "by", "decided at"), rows))
    else:
        parts.append("<p>No unit quarantined.</p>")
    parts.append("<h3>Lot holds</h3>")
    if lot_holds:
        holds = [
            (h["lot"], h["reason"], h["at"], "; ".join(_decision_text(d) for d in h["decisions"]) or "none yet")
            for h in lot_holds
        ]
        parts.append(_table(("lot", "reason", "held at", "decisions"), holds))
    else:
        parts.append("<p>No lot held.</p>")
    parts.append("</section>")
    return "".join(parts)


def limits_text(m: Figures) -> str:
    """``limits 14 to 18 dBm``, ``at most 4096``, ``no limits``: a measurement's limits in words."""
    units = f" {m['units']}" if m["units"] else ""
    low, high = m["low"], m["high"]
    if low is None and high is None:
        return "no limits"
    if low is None:
        return f"at most {number(high)}{units}"
    if high is None:
        return f"at least {number(low)}{units}"
    return f"limits {number(low)} to {number(high)}{units}"


def _measurement(m: Figures) -> str:
    """One measurement: its limits and statistics, its histogram and its run chart side by side."""
    named = f"{m['stage']}.{m['name']}"
    article = f'<article class="measurement" data-measurement="{_e(named)}">'
    head = f'<h3>{_e(named)}</h3><p class="stats">{_e(limits_text(m))} · {_e(charts.stats_line(m))}</p>'
    if not m["count"]:
        return f"{article}{head}<p>No values in this window.</p></article>"
    histogram = _figure("histogram", charts.histogram_chart(m), measurement=named)
    run = _figure("run", charts.run_chart(m), measurement=named)
    return f'{article}{head}<div class="pair">{histogram}{run}</div></article>'


def _measurements(measurements: Sequence[Figures]) -> str:
    if not measurements:
        return '<section id="measurements"><h2>Measurements</h2><p>No measurements in this window.</p></section>'
    explained = (
        "<p>Limits are solid red lines; the marginal zones (inside a limit, outside the recipe's marginal band) "
        "are shaded. The run chart colours each point by the station and socket that measured it.</p>"
    )
    body = "".join(_measurement(m) for m in measurements)
    return f'<section id="measurements"><h2>Measurements</h2>{explained}{body}</section>'
