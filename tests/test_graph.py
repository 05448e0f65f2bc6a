"""The drawings of a compiled Flow: the edge list, Mermaid ``stateDiagram-v2`` and Graphviz DOT.

The edges are checked against what the Flow says (route order, any_order groups, retries, on_fail,
rework ``then``), for two example workflows and for a small Flow built by hand. Neither Graphviz
nor Mermaid is needed: the DOT text is checked by hand for structure, and the Mermaid text against
the lexical rules of Mermaid's state-diagram grammar (``stateDiagram.jison``).
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.flow import SCRAP, SCRAPPED, SHIPPED, Flow, Group, Stage
from engine.recipe.check import load_flow
from engine.recipe.graph import Edge, edges, join_of, to_dot, to_mermaid
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


def _mermaid_lexical_problems(text: str) -> list[str]:
    problems = []
    for line in text.splitlines()[1:]:
        if "-->" in line:
            ok = _MERMAID_TRANSITION.match(line) is not None
        elif re.match(r"^\s*(%%|state |classDef |class )", line):
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
    assert len(found) == len(edges(example))
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
