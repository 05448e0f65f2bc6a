"""Instruments a station's slots share, in ``floorflow simulate``: the profile's ``instruments``.

A hand-checkable line (one stage of a fixed 60 s, held by the station's instrument, every unit in
one batch) gives figures worked out on paper; as many instruments as slots gives the line without
instruments; the profile's mistakes are reported at their file:line:col; a profile without
instruments gives the figures it gave before there were instruments; a profile with them pickles.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import textwrap
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from engine.cli.simulate import show
from engine.flow import Flow
from engine.recipe.check import check_recipe
from engine.registry import Registry
from engine.simulate import ProfileError, load_profile, simulate
from engine.simulate.profile import Behaviour, Instrument, Profile

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = Registry.discover()
UNITS = 40

SHARED = """\
    recipe: shared-tester
    version: 1
    stations:
      cell: {slots: 4}
      pack: {slots: 1}
    stages:
      - {id: connect, step: device.connect, station: cell}
      - {id: measure, step: device.record_id, station: cell}
      - {id: box, step: device.record_id, station: pack}
"""


def _flow(directory: Path) -> Flow:
    path = directory / "recipe.yaml"
    path.write_text(textwrap.dedent(SHARED))
    flow, problems = check_recipe(path, REGISTRY)
    assert flow is not None, "\n".join(map(str, problems))
    return flow


def _profile(directory: Path, flow: Flow, instruments: str) -> Profile:
    """Every unit in one batch; 60 s in ``measure``, nothing anywhere else; no failures."""
    path = directory / "profile.yaml"
    text = f"""\
        profile: shared
        arrivals: {{batch: {{size: {UNITS}, every_s: 1800}}}}
        defaults: {{time: {{fixed: 0}}, fail: 0}}
        stages:
          measure: {{time: {{fixed: 60}}}}
        stations:
          cell:
            slots: 4
{textwrap.indent(instruments, " " * 12)}
    """
    path.write_text(textwrap.dedent(text))
    return load_profile(path, flow)


def _figures(tmp_path: Path, instruments: str) -> dict[str, Any]:
    flow = _flow(tmp_path)
    return simulate(flow, _profile(tmp_path, flow, instruments), UNITS, seed=5).figures


def test_one_instrument_serves_four_slots_one_unit_at_a_time(tmp_path: Path) -> None:
    """One tester for four slots: 60 units an hour, not 240, the tester always busy. The first four units
    wait 0, 1, 2 and 3 minutes for it; each later one gets a slot as a unit leaves, behind the three others."""
    figures = _figures(tmp_path, "instruments:\n  tester: {count: 1, stages: [measure]}")
    assert figures["hours"] == pytest.approx(UNITS * 60 / 3600, abs=1e-4)
    assert figures["uph"] == pytest.approx(60.0, abs=1e-3)
    tester = figures["instruments"]["cell/tester"]
    assert tester == {
        "count": 1,
        "stages": ["measure"],
        "capacity_per_hour": 60.0,
        "utilization": pytest.approx(1.0, abs=1e-6),
        "mean_wait_s": pytest.approx((0 + 60 + 120 + 180 * (UNITS - 3)) / UNITS, abs=1e-3),
        "visits": UNITS,
    }
    assert figures["stations"]["cell"]["capacity_per_hour"] == 60.0
    assert figures["capacity_per_hour"] == 60.0 and figures["capacity_station"] == "cell"
    assert figures["lead_time"]["max_s"] == pytest.approx(UNITS * 60, abs=1e-3)


def test_arrivals_past_an_instruments_capacity_are_warned_with_its_name(tmp_path: Path) -> None:
    """40 units every half hour (80/h) is within the slots' 240/h but past the one tester's 60/h."""
    figures = _figures(tmp_path, "instruments:\n  tester: {count: 1, stages: [measure]}")
    assert figures["arrival_rate_per_hour"] == 80.0
    [warning] = figures["warnings"]
    assert "line's capacity (60 units/h, bottleneck: station 'cell', its shared instrument 'tester')" in warning


def test_as_many_instruments_as_slots_is_the_line_without_instruments(tmp_path: Path) -> None:
    """Four testers for four slots: every figure as with no instruments, at 240 units an hour."""
    shared = _figures(tmp_path, "instruments:\n  tester: {count: 4, stages: [measure]}")
    alone = _figures(tmp_path, "")
    tester = shared.pop("instruments")["cell/tester"]
    assert alone.pop("instruments") == {}
    assert shared == alone
    assert alone["uph"] == pytest.approx(240.0, abs=1e-3)
    assert tester["utilization"] == pytest.approx(1.0, abs=1e-6) and tester["mean_wait_s"] == 0.0


def test_a_manual_stage_holds_its_instrument_and_an_operator_together(tmp_path: Path) -> None:
    """A stage both manual and held needs an operator and the tester at once: with one of each, in turn."""
    flow = _flow(tmp_path)
    profile = _profile(tmp_path, flow, "instruments:\n  tester: {count: 1, stages: [measure]}")
    profile = Profile(**{**vars(profile), "operators": 1, "manual_steps": ("device.record_id",)})
    figures = simulate(flow, profile, UNITS, seed=5).figures
    operators, tester = figures["operators"], figures["instruments"]["cell/tester"]
    assert operators["visits"] == tester["visits"] == UNITS  # box takes no time: no operator asked for
    assert operators["utilization"] == pytest.approx(tester["utilization"], abs=1e-6)
    assert figures["hours"] == pytest.approx(UNITS * 60 / 3600, abs=1e-4)


def test_the_profile_holds_instruments_by_station_and_pickles(tmp_path: Path) -> None:
    """``Profile.instruments`` by station, of frozen ``Instrument``s; they round-trip through pickle, and so
    does the whole profile once its other (read-only) mappings are dicts, running the same after."""
    flow = _flow(tmp_path)
    profile = _profile(tmp_path, flow, "instruments:\n  tester: {count: 2, stages: [connect, measure]}")
    assert profile.instruments == {"cell": (Instrument("tester", 2, ("connect", "measure")),)}
    assert pickle.loads(pickle.dumps(profile.instruments)) == profile.instruments
    restored = pickle.loads(pickle.dumps(_picklable(profile)))
    assert restored.instruments == profile.instruments
    assert simulate(flow, restored, UNITS, 3).figures == simulate(flow, _picklable(profile), UNITS, 3).figures


def _picklable(profile: Profile) -> Profile:
    """The profile with its read-only mappings as dicts: those do not pickle (``instruments`` is a dict already)."""

    def plain(behaviour: Behaviour) -> Behaviour:
        return dataclasses.replace(behaviour, measurements=dict(behaviour.measurements))

    return dataclasses.replace(
        profile,
        defaults=plain(profile.defaults),
        steps={name: plain(b) for name, b in profile.steps.items()},
        stages={name: plain(b) for name, b in profile.stages.items()},
        stations=dict(profile.stations),
        fallback=_picklable(profile.fallback) if profile.fallback is not None else None,
    )


@pytest.mark.parametrize(
    ("text", "line", "col", "code", "message"),
    [
        (
            "    instruments:\n      tester: {count: 1, stages: [connect, measur]}\n",
            8,
            44,
            "profile-unknown-stage",
            "recipe shared-tester has no stage 'measur' (did you mean 'measure'?)",
        ),
        (
            "    instruments:\n      tester:\n        count: 1\n        stages: [measure, box]\n",
            10,
            27,
            "profile-instrument-station",
            "instrument 'tester' is at station 'cell', but stage 'box' runs at station 'pack'",
        ),
        (
            "    instruments:\n      tester: {count: 0, stages: [measure]}\n",
            8,
            23,
            "schema-minimum",
            "0 is less than the minimum of 1",
        ),
        (
            "    instruments:\n      tester: {count: 1, stages: []}\n",
            8,
            34,
            "schema-minItems",
            "[] should be non-empty",
        ),
        (
            "    instruments:\n      tester: {count: 1, stages: [measure], spare: 1}\n",
            8,
            45,
            "schema-unknown-key",
            "unknown key 'spare' in stations.cell.instruments.tester",
        ),
    ],
    ids=["unknown-stage", "stage-at-another-station", "count", "no-stages", "unknown-key"],
)
def test_instrument_mistakes_are_reported_at_their_line_and_column(
    tmp_path: Path, text: str, line: int, col: int, code: str, message: str
) -> None:
    flow = _flow(tmp_path)
    path = tmp_path / "profile.yaml"
    path.write_text(
        "profile: mistakes\nstages:\n  measure: {time: {fixed: 60}}\nstations:\n  cell:\n    slots: 4\n" + text
    )
    with pytest.raises(ProfileError) as caught:
        load_profile(path, flow)
    [problem] = caught.value.diagnostics
    assert (problem.pos.line, problem.pos.col, problem.code) == (line, col, code), problem
    assert message in problem.message
    assert f"{path}:{line}:{col}:" in str(caught.value)


def test_a_profile_without_instruments_gives_the_figures_it_gave_before() -> None:
    """phone-wim, 2,000 units, seed 7, the shipped profile: the figures recorded before instruments existed."""
    flow, problems = check_recipe(ROOT / "workflows" / "phone-wim.yaml", REGISTRY)
    assert flow is not None, "\n".join(map(str, problems))
    figures = simulate(flow, load_profile(None, flow), 2000, seed=7).figures
    assert figures.pop("instruments") == {}
    assert (figures.pop("warmup_s"), figures.pop("steady_hours")) == (0.0, figures["hours"])  # no warm-up
    recorded = json.loads((Path(__file__).parent / "figures" / "phone-wim-2000-seed7.json").read_text())
    assert json.loads(json.dumps(figures)) == recorded


def test_the_shipped_phone_line_profile_shares_one_tester_among_the_rf_stages() -> None:
    """workflows/profiles/phone-line.yaml: the RF station's stages hold its one tester, which limits the line."""
    flow, problems = check_recipe(ROOT / "workflows" / "phone-wim.yaml", REGISTRY)
    assert flow is not None, "\n".join(map(str, problems))
    profile = load_profile(ROOT / "workflows" / "profiles" / "phone-line.yaml", flow)
    [tester] = profile.instruments["rf"]
    assert set(tester.stages) == {s.id for s in flow.stages.values() if s.station == "rf" and not s.rework}
    figures = simulate(flow, profile, 2000, seed=7).figures
    assert figures["capacity_station"] == "rf" and figures["bottleneck"] == "rf"
    assert figures["instruments"]["rf/tester"]["visits"] == figures["stations"]["rf"]["visits"]


def test_the_terminal_shows_a_table_of_the_shared_instruments_only_when_there_are_any(tmp_path: Path) -> None:
    """`floorflow simulate`'s tables: one row per instrument (utilization, mean wait), no table without any."""
    shown = []
    for instruments in ("instruments:\n  tester: {count: 1, stages: [measure]}", ""):
        console = Console(record=True, width=160)
        show(_figures(tmp_path, instruments), console)
        shown.append(console.export_text())
    assert "shared instruments" in shown[0]
    [row] = [line for line in shown[0].splitlines() if "cell/tester" in line]
    assert [cell.strip() for cell in row.split("│")[2:7]] == ["1", "60.0 units/h", "100.0 %", "171.0 s", "40"]
    assert "shared instruments" not in shown[1]
