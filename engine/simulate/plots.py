"""PNG plots of a simulation (matplotlib, no screen): utilization, WIP over time, lead-time histogram."""

from __future__ import annotations

from pathlib import Path

from engine.simulate import Result


def write_plots(result: Result, into: Path) -> list[Path]:
    """Write the three plots into the directory ``into`` (made if missing); the files written."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never a window
    from matplotlib import pyplot as plt

    into.mkdir(parents=True, exist_ok=True)
    figures = result.figures
    title = f"{figures['recipe']} v{figures['version']}, {figures['units']} units, profile {figures['profile']}"
    written: list[Path] = []

    stations = figures["stations"]
    names = list(stations)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bars = ax.bar(names, [100 * stations[n]["utilization"] for n in names], color="#4878a8")
    if figures["bottleneck"] in names:
        bars[names.index(figures["bottleneck"])].set_color("#c04040")
    ax.set_ylabel("utilization (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Station utilization (bottleneck in red)\n{title}", fontsize=9)
    ax.tick_params(axis="x", labelrotation=30)
    written.append(_save(fig, into / "utilization.png"))

    fig, ax = plt.subplots(figsize=(8, 4.5))
    if result.wip:
        hours = [t / 3600 for t, _ in result.wip]
        ax.step(hours, [n for _, n in result.wip], where="post", color="#4878a8")
    ax.set_xlabel("hours")
    ax.set_ylabel("units in the line")
    ax.set_title(f"Work in progress\n{title}", fontsize=9)
    written.append(_save(fig, into / "wip.png"))

    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins = result.lead.bins()
    if bins:
        ax.bar(
            [low / 3600 for low, _, _ in bins],
            [count for _, _, count in bins],
            width=[(high - low) / 3600 for low, high, _ in bins],
            align="edge",
            color="#4878a8",
        )
    lead = figures["lead_time"]
    for key, style in (("p50_s", "-"), ("p95_s", "--")):
        ax.axvline(lead[key] / 3600, color="#c04040", linestyle=style, label=f"{key[:-2]} {lead[key] / 3600:.2f} h")
    ax.legend()
    ax.set_xlabel("lead time (hours), shipped units")
    ax.set_ylabel("units")
    ax.set_title(f"Lead time\n{title}", fontsize=9)
    written.append(_save(fig, into / "lead_time.png"))
    return written


def _save(fig: object, path: Path) -> Path:
    from matplotlib import pyplot as plt

    fig.savefig(path, dpi=100, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return path
