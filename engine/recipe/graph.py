"""Draw a compiled Flow as a Mermaid ``stateDiagram-v2`` or as Graphviz DOT text.

Both are text; neither needs Graphviz installed. The drawing shows what the engine runs: pass
edges along the route, retry loops, fail edges into rework or scrap, rework resumption, and the
irreversible stages marked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.flow import SCRAP, SCRAPPED, SHIPPED, START, Flow, Group, Stage

FORMATS = ("mermaid", "dot")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str
    """pass, fail, retry, resume, exhausted (rework past max_visits), and for any_order groups:
    any (fork into a member) and again (join back to the fork while members remain)."""
    label: str


def join_of(group: Group) -> str:
    """The node where an any_order group's members meet again."""
    return f"{group.id}_done"


def edges(flow: Flow) -> list[Edge]:
    """Every transition of the flow's state machine, in route order."""
    out: list[Edge] = []
    heads: list[str] = [START]
    for entry in flow.route:
        if isinstance(entry, Group):
            out.extend(Edge(h, entry.id, "pass", "pass") for h in heads)
            out.extend(Edge(entry.id, m, "any", "any order") for m in entry.members)
            out.extend(Edge(m, join_of(entry), "pass", "pass") for m in entry.members)
            out.append(Edge(join_of(entry), entry.id, "again", "next member"))
            heads = [join_of(entry)]
        else:
            out.extend(Edge(h, entry, "pass", "pass") for h in heads)
            heads = [entry]
    out.extend(Edge(h, SHIPPED, "pass", "pass") for h in heads)
    for stage in flow.stages.values():
        if stage.retry_max:
            out.append(Edge(stage.id, stage.id, "retry", f"fail, retry ≤{stage.retry_max}"))
        target = SCRAPPED if stage.on_fail == SCRAP else stage.on_fail
        out.append(Edge(stage.id, target, "fail", "fail"))
        if stage.rework:
            if stage.then:
                bound = f" (≤{stage.max_visits} times)" if stage.max_visits else ""
                out.append(Edge(stage.id, stage.then, "resume", f"pass{bound}"))
            if stage.max_visits:
                out.append(Edge(stage.id, SCRAPPED, "exhausted", f"visits > {stage.max_visits}"))
    return out


def _mermaid_ids(flow: Flow) -> dict[str, str]:
    """Mermaid state ids: stage and group ids with what Mermaid's lexer refuses ('-') replaced."""
    names = [*flow.stages, *(g.id for g in flow.route if isinstance(g, Group))]
    names += [join_of(g) for g in flow.route if isinstance(g, Group)]
    ids: dict[str, str] = {START: "[*]", SHIPPED: SHIPPED, SCRAPPED: SCRAPPED}
    taken = set(ids.values())
    for name in names:
        candidate = re.sub(r"[^A-Za-z0-9_]", "_", name)
        while candidate in taken:
            candidate += "_"
        ids[name] = candidate
        taken.add(candidate)
    return ids


def _describe(stage: Stage) -> str:
    text = stage.step
    if stage.irreversible:
        text += " ⚠ irreversible"
    if stage.station:
        text += f" @ {stage.station}"
    return text


def to_mermaid(flow: Flow) -> str:
    ids = _mermaid_ids(flow)
    lines = ["stateDiagram-v2", f"    %% {flow.recipe} v{flow.version} ({flow.source})"]
    for entry in flow.route:
        if isinstance(entry, Group):
            lines.append(f"    state {ids[entry.id]} <<fork>>")
            lines.append(f"    state {ids[join_of(entry)]} <<join>>")
    for stage in flow.stages.values():
        lines.append(f"    {ids[stage.id]} : {stage.id}\\n{_describe(stage)}")
    for edge in edges(flow):
        lines.append(f"    {ids[edge.source]} --> {ids[edge.target]} : {edge.label}")
    lines.append(f"    {SHIPPED} --> [*]")
    lines.append(f"    {SCRAPPED} --> [*]")
    lines.append("    classDef irreversible fill:#fde0dc,stroke:#c62828,stroke-width:3px")
    lines.append("    classDef rework fill:#fff3cd,stroke:#b7791f")
    irreversible = [ids[s.id] for s in flow.stages.values() if s.irreversible]
    if irreversible:
        lines.append(f"    class {','.join(irreversible)} irreversible")
    if flow.rework_ids:
        lines.append(f"    class {','.join(ids[r] for r in flow.rework_ids)} rework")
    return "\n".join(lines) + "\n"


def _dot_id(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'


def _dot_node(stage: Stage, indent: str) -> str:
    label = f"{stage.id}\\n{_describe(stage)}"
    style = ', style="filled,bold", fillcolor="#fde0dc", color="#c62828", penwidth=2' if stage.irreversible else ""
    if stage.rework:
        style = ', style=filled, fillcolor="#fff3cd"'
    return f"{indent}{_dot_id(stage.id)} [shape=box, label={_dot_id(label)}{style}];"


def to_dot(flow: Flow) -> str:
    lines = [
        f"digraph {_dot_id(flow.recipe)} {{",
        "    rankdir=TB;",
        '    node [fontname="Helvetica"];',
        '    start [shape=circle, label="", style=filled, fillcolor=black, width=0.2];',
        f'    {SHIPPED} [shape=doublecircle, label="shipped"];',
        f'    {SCRAPPED} [shape=doublecircle, label="scrapped", color="#c62828"];',
    ]
    for entry in flow.route:
        if isinstance(entry, Group):
            lines.append(f"    subgraph {_dot_id('cluster_' + entry.id)} {{")
            lines.append(f"        label={_dot_id('any order: ' + entry.id)}; style=dashed;")
            lines.append(f'        {_dot_id(entry.id)} [shape=point, label=""];')
            lines.extend(_dot_node(flow.stages[m], "        ") for m in entry.members)
            lines.append(f'        {_dot_id(join_of(entry))} [shape=point, label=""];')
            lines.append("    }")
        else:
            lines.append(_dot_node(flow.stages[entry], "    "))
    lines.extend(_dot_node(flow.stages[r], "    ") for r in flow.rework_ids)
    colours = {
        "pass": "black",
        "fail": "#c62828",
        "retry": "#ef6c00",
        "resume": "#1565c0",
        "any": "gray40",
        "again": "gray40",
        "exhausted": "#c62828",
    }
    for edge in edges(flow):
        lines.append(
            f"    {_dot_id(edge.source)} -> {_dot_id(edge.target)} "
            f'[label={_dot_id(edge.label)}, color="{colours[edge.kind]}"];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(flow: Flow, fmt: str) -> str:
    return to_mermaid(flow) if fmt == "mermaid" else to_dot(flow)
