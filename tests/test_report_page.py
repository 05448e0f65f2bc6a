"""The line report (`floorflow report`): the page drawn from a figures document, and the command that writes it.

The page's tests draw a hand-made figures document (FIGURES: two stations, a failing stage, a quarantine, a lot
hold, an unreleased recipe, two measurements, one with a bad socket); the command's tests run real units into a
store first.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from reportkit import FIGURES, SPHERE, line_store

CHARTS = ("yield", "pareto-stage", "pareto-check", "retests", "throughput", "histogram", "run")
"""Every kind of chart FIGURES draws (the measurement with values draws one histogram and one run chart)."""
SECTIONS = ("unreleased", "summary", "yields", "pareto", "retests", "throughput", "holds", "measurements")


@pytest.fixture(scope="module")
def page() -> str:
    from engine.report.page import render_page

    return render_page(copy.deepcopy(FIGURES), generated="2026-11-22T06:00:00Z")


def charts_in(page: str) -> list[str]:
    """The data-chart name of every chart figure on the page, in order."""
    return re.findall(r'<figure class="chart"[^>]*data-chart="([^"]+)"', page)


def test_the_page_has_every_section_and_one_svg_per_chart(page: str) -> None:
    """Each section is there, each chart figure is there once, and each holds one SVG (no other SVG)."""
    for section in SECTIONS:
        assert f'<section id="{section}"' in page, section
    assert charts_in(page) == list(CHARTS)
    assert page.count("<svg") == len(CHARTS)
    for figure in re.findall(r'<figure class="chart".*?</figure>', page, re.S):
        assert figure.count("<svg") == 1


def test_the_page_refers_to_nothing_outside_itself(page: str) -> None:
    """No script, no link, no src=: the file is read alone, offline (matplotlib's SVG namespaces aside)."""
    without_namespaces = re.sub(r'xmlns(:\w+)?="http://www\.w3\.org/[^"]*"', "", page)
    assert "http" not in without_namespaces
    assert "src=" not in page and "<script" not in page and "<link" not in page
    assert "@import" not in page
    assert set(re.findall(r"url\((.)", page)) == {"#"}  # the SVGs' clip paths, inside the page
    assert set(re.findall(r'href="(.)', page)) == {"#"}  # the SVGs' markers, inside the page


def test_the_yield_bars_carry_their_values(page: str) -> None:
    """The yield chart writes each bar's value on it (text stays text in the SVG), n/a where nothing was counted."""
    chart = re.search(r'data-chart="yield".*?</figure>', page, re.S)
    assert chart is not None
    for value in ("98.0%", "100.0%", "75.0%", "91.7%", "n/a"):
        assert f">{value}<" in chart.group(0) or f"> {value}<" in chart.group(0), value


def test_the_page_says_what_a_quality_engineer_looks_for(page: str) -> None:
    """The warning box names the unreleased recipe; counts, a pending quarantine, a lot hold's decision and a
    measurement's Cpk are written on the page."""
    warning = page.split('<section id="unreleased"', 1)[1].split("</section>", 1)[0]
    assert 'class="warning"' in warning and "sphere-module" in warning and "0123456789abcdef" in warning
    assert '<div class="count held" data-count="held"><span class="n">2</span>held</div>' in page
    assert "awaiting a decision" in page and "lot-released" in page
    assert "Cpk 0.61" in page and "No values in this window." in page


def test_the_charts_are_drawn_the_same_twice(page: str) -> None:
    """Same figures, same page: no date, no random id in the SVG (a page can be compared with yesterday's)."""
    from engine.report.page import render_page

    assert render_page(copy.deepcopy(FIGURES), generated="2026-11-22T06:00:00Z") == page
    assert "<dc:date>" not in page


def test_a_window_without_failures_or_values_draws_no_empty_chart() -> None:
    """Nothing failed, nothing finished, nothing measured: each section says so in words, and no chart is drawn."""
    from engine.report.page import render_page

    quiet = copy.deepcopy(FIGURES) | {
        "stages": [],
        "pareto": {"by_stage": [], "by_check": []},
        "throughput": [],
        "quarantines": [],
        "lot_holds": [],
        "unreleased_recipes": [],
        "measurements": [],
    }
    shown = render_page(quiet)
    assert "<svg" not in shown and 'id="unreleased"' not in shown
    for words in ("No failures in this window.", "No unit finished", "No unit quarantined.", "No lot held."):
        assert words in shown


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store of sixteen Sphere modules run on the simulated line (reportkit.SIM_CONFIG: retests, a scrap)."""
    return line_store(tmp_path_factory.mktemp("line"))


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``floorflow report ARGS``, in this process: its exit code, stdout and stderr."""
    from engine.cli import main

    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_writes_the_page_of_a_real_store(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`floorflow report OUT.html` writes the page of the store's units: every section, one SVG per chart, the
    route's stages and the scrapped module's failures; it says on stderr what it wrote."""
    out = tmp_path / "today.html"
    code, _, err = report(capsys, str(out), "--store", store)
    assert code == 0, err
    assert err == f"report of 16 units written to {out}\n"
    page = out.read_text()
    for section in ("summary", "yields", "pareto", "retests", "throughput", "holds", "measurements"):
        assert f'<section id="{section}"' in page, section
    charts = charts_in(page)
    assert {"yield", "pareto-stage", "pareto-check", "retests", "throughput", "histogram", "run"} <= set(charts)
    assert page.count("<svg") == len(charts)
    assert "rf_cal_5g" in page and "http" not in page
    assert '<div class="count scrapped" data-count="scrapped"><span class="n">1</span>' in page


def test_the_command_writes_the_figures_as_json(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--format json` writes the figures document, to OUT or to stdout for `-`; the window's options choose
    the units (another lot: none), and a recipe file brings the marginal bands."""
    code, out, err = report(capsys, "-", "--format", "json", "--store", store)
    assert code == 0, err
    figures = json.loads(out)
    assert figures["schema"] == "floorflow.report/1"
    assert (figures["units"]["total"], figures["units"]["scrapped"]) == (16, 1)
    assert figures["pareto"]["by_stage"][0]["stage"] in ("rf_cal_2g4", "rf_cal_5g")

    written = tmp_path / "figures.json"
    code, _, err = report(capsys, str(written), "--format", "json", "--lot", "L2", "--store", store)
    assert code == 0, err
    other = json.loads(written.read_text())
    assert other["window"]["lot"] == "L2" and other["units"]["total"] == 0

    code, out, err = report(capsys, "-", "--format", "json", "--recipe", str(SPHERE), "--store", store)
    assert code == 0, err
    power = {(m["stage"], m["name"]): m for m in json.loads(out)["measurements"]}[("rf_cal_2g4", "tx_power_dbm")]
    assert (power["marginal_low"], power["marginal_high"]) == (14.5, 17.5)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--since", "yesterday"], "--since 'yesterday': give an ISO 8601 date or time"),
        (["--until", "2026-11-21"], "--until '2026-11-21' is before --since '2026-11-22'"),
        (["--store", "sqlite:///{tmp}/none.db"], "no store at sqlite:///"),
        (["OUT={tmp}/absent/today.html"], "absent/today.html: cannot be written: no such directory"),
        (["OUT={tmp}"], "is a directory: only a new file or a regular file is written"),
    ],
    ids=["since", "until-before-since", "no-store", "no-directory", "out-is-a-directory"],
)
def test_what_cannot_be_done_is_said_in_one_line_with_exit_2(
    args: list[str], says: str, store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad time, a window that ends before it starts, a store or a directory not there, OUT a directory:
    exit 2, one line on stderr saying so, nothing written."""
    given = [a.format(tmp=tmp_path) for a in args]
    out = next((a[4:] for a in given if a.startswith("OUT=")), str(tmp_path / "today.html"))
    options = [a for a in given if not a.startswith("OUT=")]
    if "--since" not in options and "--until" in options:
        options += ["--since", "2026-11-22"]
    if "--store" not in options:
        options += ["--store", store]
    code, _, err = report(capsys, out, *options)
    assert code == 2
    assert len(err.splitlines()) == 1 and says in err, err
    assert not (tmp_path / "today.html").exists()


@pytest.mark.parametrize("args", [["--format", "pdf"], ["--lot"], []], ids=["format", "lot-without-value", "no-out"])
def test_options_the_parser_refuses_give_the_usage_and_exit_2(args: list[str]) -> None:
    """Options the parser refuses exit 2 with the usage and one error line, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "report", *(["x.html"] if args else []), *args],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("usage: floorflow report") and lines[-1].startswith("floorflow report: error:")
    assert "Traceback" not in result.stderr
