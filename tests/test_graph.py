"""The drawings of a compiled Flow: the edge list, Mermaid ``stateDiagram-v2`` and Graphviz DOT.

The edges are checked against what the Flow says (route order, any_order groups, retries, on_fail,
rework ``then``), for two example workflows and for small Flows built by hand; so is what the
drawing adds: a lane per station, one scrap edge per lane, the way past a sampled stage. Neither
Graphviz nor Mermaid is needed: the DOT text is checked by hand for structure (and by Graphviz's
``dot`` where it is installed), and the Mermaid text against the lexical rules of Mermaid's
state-diagram grammar (``stateDiagram.jison``).
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.flow import SCRAP, SCRAPPED, SHIPPED, Flow, Group, Sampling, Stage
from engine.recipe.check import load_flow
from engine.recipe.graph import NOT_SAMPLED, Edge, drawing, edges, join_of, to_dot, to_mermaid
from engine.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"
EXAMPLES = ("sphere-thermostat.yaml", "phone-wim.yaml")
START = "start"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.discover()


@pytest.fixture(scope="module", params=EXAMPLES)
def example(request: pytest.FixtureRequest, registry: Registry) -> Flow:
    """A compiled example workflow."""
    return load_flow(WORKFLOWS / request.param, registry)


def mini_flow(*, irreversible: bool = True, first_id: str = "connect") -> Flow:
    """connect -> any_order g {measure (retry 2), tune (on_fail fix)} -> lock -> shipped.

    ``fix`` is a rework stage that sends the unit back to ``measure``, at most twice.
    """
    stages = [
        Stage(first_id, "device.connect"),
        Stage("measure", "rf.measure", group="g", retry_max=2),
        Stage("tune", "rf.calibrate", group="g", on_fail="fix"),
        Stage("lock", "lifecycle.advance", irreversible=irreversible),
        Stage("fix", "manual.checklist", rework=True, then="measure", max_visits=2),
    ]
    route = (first_id, Group("g", ("measure", "tune")), "lock")
    return Flow("mini", 1, {s.id: s for s in stages}, route)


def triples(found: list[Edge], kind: str | None = None) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.kind) for e in found if kind is None or e.kind == kind}


# -- engine.recipe.graph.edges ---------------------------------------------------------------------------


def test_mini_flow_has_exactly_the_expected_edges() -> None:
    """A hand-built Flow yields every transition it implies and nothing else."""
    flow = mini_flow()
    group = flow.route[1]
    assert isinstance(group, Group)
    join = join_of(group)
    found = edges(flow)
    assert triples(found) == {
        (START, "connect", "pass"),
        ("connect", "g", "pass"),
        ("g", "measure", "any"),
        ("g", "tune", "any"),
        ("measure", join, "pass"),
        ("tune", join, "pass"),
        (join, "lock", "pass"),
        ("lock", SHIPPED, "pass"),
        ("measure", "measure", "retry"),
        ("connect", SCRAPPED, "fail"),
        ("measure", SCRAPPED, "fail"),
        ("tune", "fix", "fail"),
        ("lock", SCRAPPED, "fail"),
        ("fix", SCRAPPED, "fail"),
        ("fix", SCRAPPED, "exhausted"),
        ("fix", "measure", "resume"),
        (join, "g", "again"),
    }
    assert len(found) == len(triples(found)), "no edge appears twice"


def test_mini_flow_labels_carry_the_bounds() -> None:
    """The retry loop shows its retry.max and the rework edges show max_visits."""
    by_kind = {(e.source, e.target, e.kind): e.label for e in edges(mini_flow())}
    assert "2" in by_kind[("measure", "measure", "retry")]
    assert "2" in by_kind[("fix", "measure", "resume")]
    visits = [e for e in edges(mini_flow()) if e.source == "fix" and e.target == SCRAPPED]
    assert any("2" in e.label for e in visits), visits


def _route_nodes(flow: Flow) -> list[tuple[str, str]]:
    """(entry node, exit node) of each route entry, framed by start and shipped."""
    nodes = [(START, START)]
    for entry in flow.route:
        nodes.append((entry.id, join_of(entry)) if isinstance(entry, Group) else (entry, entry))
    nodes.append((SHIPPED, SHIPPED))
    return nodes


def test_pass_edges_follow_the_route(example: Flow) -> None:
    """Each route entry is entered by a pass edge from the exit of the entry before it."""
    expected = set()
    nodes = _route_nodes(example)
    for (_, exit_node), (entry_node, _) in itertools.pairwise(nodes):
        expected.add((exit_node, entry_node, "pass"))
    for entry in example.route:
        if isinstance(entry, Group):
            expected |= {(m, join_of(entry), "pass") for m in entry.members}
    assert triples(edges(example), "pass") == expected


def test_any_order_groups_fork_and_join(example: Flow) -> None:
    """Every member of a group is reached from the group's fork and leads to its join."""
    groups = [e for e in example.route if isinstance(e, Group)]
    assert groups, f"{example.recipe} has no any_order group to check"
    found = edges(example)
    for group in groups:
        assert triples(found, "any") >= {(group.id, m, "any") for m in group.members}
        assert {(m, join_of(group), "pass") for m in group.members} <= triples(found, "pass")
    forks = {(g.id, m, "any") for g in groups for m in g.members}
    assert triples(found, "any") == forks


def test_retry_self_loops_carry_the_bound(example: Flow) -> None:
    """A stage with retry.max has one self-loop labelled with it; no other stage has one."""
    retried = {s.id: s.retry_max for s in example.stages.values() if s.retry_max}
    assert retried, f"{example.recipe} has no retried stage to check"
    loops = [e for e in edges(example) if e.kind == "retry"]
    assert {(e.source, e.target) for e in loops} == {(s, s) for s in retried}
    for loop in loops:
        assert str(retried[loop.source]) in loop.label, loop


def test_fail_edges_go_to_scrapped_or_the_rework_stage(example: Flow) -> None:
    """Each stage has a fail edge into its on_fail: scrapped for scrap, else the rework stage."""
    fails = triples(edges(example), "fail")
    for stage in example.stages.values():
        target = SCRAPPED if stage.on_fail == SCRAP else stage.on_fail
        assert (stage.id, target, "fail") in fails, stage.id
    routed = {(s.id, SCRAPPED if s.on_fail == SCRAP else s.on_fail, "fail") for s in example.stages.values()}
    bounded = {(s.id, SCRAPPED, "fail") for s in example.stages.values() if s.max_visits}
    assert fails == routed | bounded


def test_phone_wim_rework_fails_into_rework_and_resumes_at_then(registry: Registry) -> None:
    """phone-wim's RF stages fail into rf_rework, which resumes the unit at boot_mmos_wim."""
    flow = load_flow(WORKFLOWS / "phone-wim.yaml", registry)
    found = edges(flow)
    assert ("modem_rf_cal", "rf_rework", "fail") in triples(found)
    assert triples(found, "resume") == {("rf_rework", "boot_mmos_wim", "resume")}


def test_resume_edges_go_to_then(example: Flow) -> None:
    """Every rework stage with a then has exactly one resume edge, to that stage."""
    expected = {(s.id, s.then, "resume") for s in example.stages.values() if s.rework and s.then}
    assert triples(edges(example), "resume") == expected


# -- Mermaid --------------------------------------------------------------------------------------


def _mermaid_classes(text: str, name: str) -> set[str]:
    ids: set[str] = set()
    for match in re.finditer(rf"^\s*class\s+(\S+)\s+{name}\s*$", text, re.MULTILINE):
        ids.update(match.group(1).split(","))
    return ids


def test_mermaid_starts_with_the_diagram_type(example: Flow) -> None:
    """The Mermaid text opens with the stateDiagram-v2 header line."""
    assert to_mermaid(example).splitlines()[0] == "stateDiagram-v2"


def test_mermaid_declares_every_stage(example: Flow) -> None:
    """Every stage of the flow has a state line ``id : ...`` in the Mermaid text."""
    text = to_mermaid(example)
    missing = [s for s in example.stages if not re.search(rf"^\s+{re.escape(s)} : ", text, re.M)]
    assert not missing


def test_mermaid_marks_exactly_the_irreversible_stages(example: Flow) -> None:
    """The irreversible class is applied to every irreversible stage and to no other."""
    irreversible = {s.id for s in example.stages.values() if s.irreversible}
    assert irreversible, f"{example.recipe} has no irreversible stage to check"
    assert _mermaid_classes(to_mermaid(example), "irreversible") == irreversible


def test_mermaid_marks_nothing_irreversible_without_such_stages() -> None:
    """A flow without irreversible stages applies the irreversible class to no state."""
    text = to_mermaid(mini_flow(irreversible=False))
    assert _mermaid_classes(text, "irreversible") == set()
    assert _mermaid_classes(to_mermaid(mini_flow()), "irreversible") == {"lock"}


# Lexical rules of packages/mermaid/src/diagrams/state/parser/stateDiagram.jison: a state id is
# ``[^:\n\s\-\{]+`` and a description (after `` : ``) is ``[^:\n;]+``; Mermaid releases before
# mermaid-js/mermaid#7430 reject a second colon in a transition label with a parse error.
_MERMAID_ID = r"(?:\[\*\]|[^:\s\-{]+)"
_MERMAID_TRANSITION = re.compile(rf"^\s*{_MERMAID_ID} --> {_MERMAID_ID}(?: : [^:;\n]+)?$")
_MERMAID_STATE = re.compile(r"^\s*[^:\s\-{]+ : [^:;\n]+$")
_MERMAID_COMPOSITE = re.compile(r'^    state "([^"\n]+)" as ([^:\s\-{]+) \{$')
"""A composite state with a description: ``STATE_DESCR AS ID STRUCT_START`` in the grammar."""


def _mermaid_lexical_problems(text: str) -> list[str]:
    problems = []
    for line in text.splitlines()[1:]:
        if "-->" in line:
            ok = _MERMAID_TRANSITION.match(line) is not None
        elif line.lstrip().startswith('state "'):
            ok = _MERMAID_COMPOSITE.match(line) is not None
        elif line == "    }" or re.match(r"^\s*(%%|state |classDef |class )", line):
            ok = True
        else:
            ok = _MERMAID_STATE.match(line) is not None
        if not ok:
            problems.append(line.strip())
    return problems


def test_mermaid_lines_follow_the_state_diagram_lexer(example: Flow) -> None:
    """Every state and transition line uses only ids and labels Mermaid's lexer accepts."""
    assert _mermaid_lexical_problems(to_mermaid(example)) == []


def test_mermaid_writes_hyphenated_stage_ids_as_valid_state_ids() -> None:
    """A schema-valid stage id with a hyphen still yields lexically valid Mermaid lines."""
    problems = _mermaid_lexical_problems(to_mermaid(mini_flow(first_id="power-on")))
    assert [line for line in problems if "power" in line] == []


# -- DOT ------------------------------------------------------------------------------------------

_DOT_STRING = r'"(?:[^"\\]|\\.)*"'
_DOT_EDGE = re.compile(rf"^\s*({_DOT_STRING})\s*->\s*({_DOT_STRING})\s*\[.*\];$")
_DOT_NODE = re.compile(rf"^\s*({_DOT_STRING}|\w+)\s*\[.*\];$")
_DOT_ATTRS = re.compile(rf"^\s*(?:\w+=(?:{_DOT_STRING}|[\w.#]+);\s*)+$")
_DOT_SUBGRAPH = re.compile(rf"^\s*subgraph {_DOT_STRING} \{{$")


def _unquote(token: str) -> str:
    return token[1:-1].replace('\\"', '"') if token.startswith('"') else token


def _dot_structure(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Node statements (ids) and edges of DOT text; AssertionError on a structural problem."""
    lines = text.splitlines()
    assert re.match(rf"^digraph {_DOT_STRING} \{{$", lines[0]), lines[0]
    assert lines[-1] == "}"
    depth = 0
    nodes: list[str] = []
    found: list[tuple[str, str]] = []
    for number, line in enumerate(lines, 1):
        bare = re.sub(_DOT_STRING, '""', line)
        assert '"' not in bare.replace('""', ""), f"line {number}: unbalanced quote: {line}"
        depth += bare.count("{") - bare.count("}")
        assert depth >= 0, f"line {number}: closes a brace never opened"
        assert depth > 0 or number == len(lines), f"line {number}: text after the graph closed"
        assert bare.rstrip().endswith((";", "{", "}")), f"line {number}: unterminated: {line}"
        if "->" in bare:
            edge = _DOT_EDGE.match(line)
            assert edge, f"line {number}: malformed edge: {line}"
            found.append((_unquote(edge.group(1)), _unquote(edge.group(2))))
        elif node := _DOT_NODE.match(line):
            if node.group(1) not in ("node", "edge", "graph"):
                nodes.append(_unquote(node.group(1)))
        else:
            known = number == 1 or line.strip() == "}" or _DOT_ATTRS.match(line) or _DOT_SUBGRAPH.match(line)
            assert known, f"line {number}: not a DOT statement: {line}"
    assert depth == 0, "unbalanced braces"
    return nodes, found


def test_dot_is_structurally_valid_and_declares_every_endpoint(example: Flow) -> None:
    """The DOT text is one balanced digraph whose edges all join declared nodes."""
    nodes, found = _dot_structure(to_dot(example))
    drawn = drawing(example)
    assert len(found) == len(drawn.edges) + len(drawn.lane_fails)
    stray = {end for edge in found for end in edge} - set(nodes)
    assert len(nodes) == len(set(nodes)), "a node is declared twice"
    assert not stray, f"edges to undeclared nodes: {sorted(stray)}"


def test_dot_declares_every_stage(example: Flow) -> None:
    """Every stage of the flow is a node of the DOT graph."""
    nodes, _ = _dot_structure(to_dot(example))
    assert set(example.stages) <= set(nodes)


def test_dot_check_rejects_broken_text(example: Flow) -> None:
    """The hand check itself fails on an unbalanced brace and on a malformed edge."""
    text = to_dot(example)
    with pytest.raises(AssertionError):
        _dot_structure(text.replace("\n}\n", "\n", 1) + "}\n}\n")
    with pytest.raises(AssertionError):
        _dot_structure(text.replace(" -> ", " - ", 1))


@pytest.mark.parametrize("name", [START, SHIPPED, SCRAPPED])
def test_a_stage_cannot_take_the_name_of_a_flow_state(name: str) -> None:
    """start, shipped and scrapped name the flow's own states, so a Flow refuses them as stage ids."""
    with pytest.raises(ValueError, match="reserved"):
        mini_flow(first_id=name)


@pytest.mark.parametrize("name", [START, SHIPPED, SCRAPPED, SCRAP])
def test_recipe_with_a_reserved_stage_id_is_an_error(name: str, tmp_path: Path) -> None:
    """validate refuses a stage named like a flow state (or scrap) with file:line:col and the reason."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"recipe: r\nversion: 1\nstages:\n  - {{id: {name}, step: device.record_id}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "validate", str(recipe)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"{recipe}:4:" in result.stdout and "is reserved" in result.stdout
    assert "[reserved-id]" in result.stdout


def test_dot_marks_only_the_irreversible_stage() -> None:
    """In DOT only the irreversible stage's node says irreversible."""
    marked = [line.split()[0] for line in to_dot(mini_flow()).splitlines() if "irreversible" in line]
    assert marked == ['"lock"']


# -- stations as lanes, scrap edges per lane, the way past sampled stages --------------------------

SAMPLE = Sampling(rate=0.1)


def station_flow(*, sampled: tuple[str, ...] = ("inspect",), group_id: str = "checks") -> Flow:
    """bench: connect; rf: measure (retry 2, on_fail fix), inspect, tune; qa: any_order group
    {leds, keys}; bench: lock (irreversible) and the rework stage fix (back to measure, at most twice).

    The stages named in ``sampled`` are random sample tests.
    """
    stages = [
        Stage("connect", "device.connect", station="bench"),
        Stage("measure", "rf.measure", station="rf", retry_max=2, on_fail="fix"),
        Stage("inspect", "sample.inspect", station="rf"),
        Stage("tune", "rf.calibrate", station="rf"),
        Stage("leds", "uart.functional", station="qa", group=group_id),
        Stage("keys", "manual.checklist", station="qa", group=group_id),
        Stage("lock", "lifecycle.advance", station="bench", irreversible=True),
        Stage("fix", "manual.checklist", station="bench", rework=True, then="measure", max_visits=2),
    ]
    stages = [Stage(**{**s.__dict__, "sampling": SAMPLE}) if s.id in sampled else s for s in stages]
    route = ("connect", "measure", "inspect", "tune", Group(group_id, ("leds", "keys")), "lock")
    return Flow("lanes", 1, {s.id: s for s in stages}, route, stations={"bench": 1, "rf": 1, "qa": 1})


STATION_STAGES = {"bench": {"connect", "lock", "fix"}, "rf": {"measure", "inspect", "tune"}, "qa": {"leds", "keys"}}


def _mermaid_composites(text: str) -> dict[str, tuple[str, set[str]]]:
    """Each composite state: its id -> (its description, the state ids declared inside it)."""
    found: dict[str, tuple[str, set[str]]] = {}
    inside: str | None = None
    for line in text.splitlines():
        if composite := _MERMAID_COMPOSITE.match(line):
            inside = composite.group(2)
            found[inside] = (composite.group(1), set())
        elif line == "    }":
            inside = None
        elif inside and (state := re.match(r"^\s+(?:state )?([^:\s\-{]+)(?: : | <<)", line)):
            found[inside][1].add(state.group(1))
    return found


def test_mermaid_breaks_label_lines_with_br(example: Flow) -> None:
    """Mermaid 11 prints a literal \\n: every stage's box breaks its lines with <br/> instead."""
    text = to_mermaid(example)
    assert "\\n" not in text
    for stage in example.stages:
        assert re.search(rf"^\s+{re.escape(stage)} : {re.escape(stage)}<br/>\S", text, re.M), stage


def test_mermaid_draws_a_composite_state_per_station() -> None:
    """Each station is one composite state, named for the station, holding exactly its stages."""
    composites = _mermaid_composites(to_mermaid(station_flow()))
    stages = {label: inside & set(STATION_STAGES[label]) for label, inside in composites.values()}
    assert stages == STATION_STAGES
    assert set(composites) == {"station_bench", "station_rf", "station_qa"}
    assert composites["station_qa"][1] == {"checks", "checks_done", "leds", "keys"}


def test_mermaid_composite_ids_never_take_a_stage_id() -> None:
    """A stage named like a station's composite keeps its id; the composite takes another, unique one."""
    flow = station_flow()
    stages = {**flow.stages, "station_rf": Stage("station_rf", "device.connect", station="bench")}
    flow = Flow("lanes", 1, stages, (*flow.route, "station_rf"), stations=flow.stations)
    text = to_mermaid(flow)
    composites = _mermaid_composites(text)
    assert "station_rf" in composites["station_bench"][1]
    assert {label for label, _ in composites.values()} == {"bench", "rf", "qa"}
    assert len(set(composites)) == 3 and "station_rf" not in composites
    assert _mermaid_lexical_problems(text) == []


def test_mermaid_writes_every_transition_at_the_top_level() -> None:
    """Transitions sit outside every composite state, where Mermaid lets them cross lanes."""
    depth = 0
    for line in to_mermaid(station_flow()).splitlines():
        depth += line.count("{") - line.count("}")
        if "-->" in line:
            assert depth == 0 and line.startswith("    ") and not line.startswith("     "), line


def _dot_clusters(text: str) -> dict[str, tuple[str, set[str]]]:
    """Each DOT cluster: its name -> (its label, the nodes declared inside it, nested clusters too)."""
    found: dict[str, tuple[str, set[str]]] = {}
    stack: list[str] = []
    for line in text.splitlines():
        if sub := re.match(rf"^\s*subgraph ({_DOT_STRING}) \{{$", line):
            stack.append(_unquote(sub.group(1)))
            found[stack[-1]] = ("", set())
        elif line.strip() == "}" and stack:
            stack.pop()
        elif stack and (label := re.match(rf"^\s*label=({_DOT_STRING});", line)):
            found[stack[-1]] = (_unquote(label.group(1)), found[stack[-1]][1])
        elif stack and "->" not in line and (node := _DOT_NODE.match(line)):
            for name in stack:
                found[name][1].add(_unquote(node.group(1)))
    return found


def test_dot_draws_a_cluster_per_station() -> None:
    """Each station is a cluster_<station> labelled with the station's name, holding exactly its stages."""
    flow = station_flow()
    clusters = _dot_clusters(to_dot(flow))
    for station, stages in STATION_STAGES.items():
        label, nodes = clusters[f"cluster_{station}"]
        assert label == station
        assert nodes & set(flow.stages) == stages


def test_dot_cluster_names_stay_unique_when_a_group_is_named_like_a_station() -> None:
    """A group named like a station gets a cluster of its own, inside the station's."""
    text = to_dot(station_flow(group_id="qa"))
    names = re.findall(rf"subgraph ({_DOT_STRING})", text)
    assert len(names) == len(set(names)) == 4
    clusters = _dot_clusters(text)
    assert clusters["cluster_qa"][0] == "qa"
    assert {"leds", "keys"} <= clusters["cluster_qa_"][1] <= clusters["cluster_qa"][1]


def test_one_scrap_edge_per_station_and_rework_fail_edges_kept() -> None:
    """Stages in a lane share its one fail edge into scrapped; a fail edge into rework stays the stage's."""
    drawn = drawing(station_flow())
    assert [(e.source, e.target) for e in drawn.lane_fails] == [("bench", SCRAPPED), ("rf", SCRAPPED), ("qa", SCRAPPED)]
    assert not [e for e in drawn.edges if e.kind == "fail" and e.target == SCRAPPED]
    assert ("measure", "fix", "fail") in triples(list(drawn.edges))
    assert ("fix", SCRAPPED, "exhausted") in triples(list(drawn.edges))
    labels = {e.source: e.label for e in drawn.lane_fails}
    assert labels["bench"] == "fail (any stage)" and "without on_fail" in labels["rf"]


def test_scrap_edges_per_station_in_both_formats() -> None:
    """Mermaid draws one transition from each station's composite, DOT one edge from each cluster."""
    flow = station_flow()
    mermaid = to_mermaid(flow)
    assert re.findall(rf"^    (\S+) --> {SCRAPPED} : fail", mermaid, re.M) == [
        "station_bench",
        "station_rf",
        "station_qa",
    ]
    assert re.search(r"^    measure --> fix : fail$", mermaid, re.M)
    _, found = _dot_structure(to_dot(flow))
    into_scrap = [line for line in to_dot(flow).splitlines() if f'-> "{SCRAPPED}"' in line]
    tails = [re.search(rf"ltail=({_DOT_STRING})", line) for line in into_scrap]
    assert sorted(_unquote(t.group(1)) for t in tails if t) == ["cluster_bench", "cluster_qa", "cluster_rf"]
    assert len(into_scrap) == 4, "the lanes' three, and fix past max_visits"
    assert ("measure", "fix") in found


def test_stages_without_a_station_keep_their_own_scrap_edges() -> None:
    """With no stations there are no lanes: each stage that scraps keeps its own fail edge."""
    drawn = drawing(mini_flow())
    assert drawn.lanes == {} and drawn.lane_fails == ()
    assert triples(list(drawn.edges), "fail") == triples(edges(mini_flow()), "fail")
    assert 'subgraph "cluster_g"' in to_dot(mini_flow())


@pytest.mark.parametrize(
    "sampled, expected",
    [
        (("inspect",), {("measure", "tune")}),
        (("inspect", "tune"), {("measure", "tune"), ("measure", "checks"), ("inspect", "checks")}),
        (("lock",), {("checks_done", SHIPPED)}),
        (("connect",), {("start", "measure")}),
        (("keys",), {("checks", "checks_done")}),
        ((), set()),
    ],
)
def test_not_sampled_edges_go_past_sampled_stages(sampled: tuple[str, ...], expected: set[tuple[str, str]]) -> None:
    """Units not sampled skip a sampled stage: an edge goes from the node before it to the node after."""
    skips = [e for e in drawing(station_flow(sampled=sampled)).edges if e.kind == "skip"]
    assert {(e.source, e.target) for e in skips} == expected
    assert all(e.label.endswith(NOT_SAMPLED) for e in skips)
    assert not [e for e in edges(station_flow(sampled=sampled)) if e.kind == "skip"], "the machine has no such move"


def test_not_sampled_edge_and_sampling_drawn_in_both_formats() -> None:
    """The skip edge is labelled "not sampled" in Mermaid and DOT; the sampled stage's box says its rate."""
    flow = station_flow()
    mermaid, dot = to_mermaid(flow), to_dot(flow)
    assert re.search(rf"^    measure --> tune : {NOT_SAMPLED}$", mermaid, re.M)
    assert re.search(rf'^    "measure" -> "tune" \[label="{NOT_SAMPLED}", .*style=dashed', dot, re.M)
    assert "inspect : inspect<br/>sample.inspect<br/>sampled 10%" in mermaid
    assert _mermaid_lexical_problems(mermaid) == []
    _dot_structure(dot)


needs_graphviz = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def _graphviz_problems(text: str) -> str:
    """What Graphviz's dot says of DOT text it lays out: empty when it reads it cleanly."""
    result = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "<svg" in result.stdout, result.stderr
    return result.stderr


@needs_graphviz
def test_graphviz_reads_the_examples_without_a_warning(example: Flow) -> None:
    """Graphviz's dot lays out an example's DOT text, lanes and lane edges included, and warns of nothing."""
    assert _graphviz_problems(to_dot(example)) == ""


@needs_graphviz
@pytest.mark.parametrize("build", [station_flow, mini_flow], ids=["stations", "no-stations"])
def test_graphviz_reads_the_hand_built_flows_without_a_warning(build: Callable[[], Flow]) -> None:
    """Graphviz's dot reads the DOT text of a flow with stations and of one without, and warns of nothing."""
    assert _graphviz_problems(to_dot(build())) == ""


# -- floorflow graph ------------------------------------------------------------------------------


def floorflow(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed console script (or ``python -m engine.cli``) in a fresh process."""
    script = Path(sys.executable).parent / "floorflow"
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "engine.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, check=False, timeout=60)


@pytest.mark.parametrize("fmt, first_line", [("dot", 'digraph "sphere-thermostat" {'), ("mermaid", "stateDiagram-v2")])
def test_cli_graph_prints_the_diagram(fmt: str, first_line: str) -> None:
    """`floorflow graph RECIPE --format FMT` exits 0 and prints that diagram on stdout."""
    proc = floorflow("graph", str(WORKFLOWS / "sphere-thermostat.yaml"), "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == first_line
    assert "finalize" in proc.stdout


BAD_RECIPES = {
    "yaml": ("recipe: bad\nversion: 1\nstages: [\n", 4),
    "schema": ("recipe: bad\nversion: 1\nstages:\n  - {id: a, step: device.connect}\ncolour: red\n", 5),
    "step": ("recipe: bad\nversion: 1\nstages:\n  - id: a\n    step: device.conect\n", 5),
}


@pytest.mark.parametrize("kind", sorted(BAD_RECIPES))
def test_cli_graph_of_a_bad_recipe_fails_cleanly(tmp_path: Path, kind: str) -> None:
    """`floorflow graph` on a broken recipe exits 1, says file:line on stderr, prints no diagram."""
    text, line = BAD_RECIPES[kind]
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    proc = floorflow("graph", str(recipe), "--format", "dot")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert re.search(rf"^{re.escape(str(recipe))}:{line}:\d+: error: ", proc.stderr, re.M), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_cli_graph_prints_the_same_bytes_twice(fmt: str) -> None:
    """Two runs of `floorflow graph` on one recipe print the same text; Mermaid's has no literal \\n."""
    first = floorflow("graph", str(WORKFLOWS / "phone-wim.yaml"), "--format", fmt)
    second = floorflow("graph", str(WORKFLOWS / "phone-wim.yaml"), "--format", fmt)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert NOT_SAMPLED in first.stdout
    if fmt == "mermaid":
        assert "\\n" not in first.stdout and "<br/>" in first.stdout
