"""Draw a compiled Flow as a Mermaid ``stateDiagram-v2`` or as Graphviz DOT text.

Both are text; neither needs Graphviz installed. ``edges`` are the flow's moves, exactly the
transitions the engine's machine has. The drawing shows them as a process engineer reads a line:
each station a lane holding its stages, pass edges along the route, retry loops, one fail edge from
each lane into scrapped for its stages that scrap (a stage failing into a rework stage keeps its own
edge), rework resumption, the way past a sampled stage that units not sampled take, and the
irreversible stages marked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from engine.flow import SCRAP, SCRAPPED, SHIPPED, START, Flow, Group, Sampling, Stage

FORMATS = ("mermaid", "dot")
NOT_SAMPLED = "not sampled"
Entry = str | Group
"""A route entry as drawn: a stage id or an any_order group."""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str
    """pass, fail, retry, resume, exhausted (rework past max_visits), and for any_order groups:
    any (fork into a member) and again (join back to the fork while members remain); in a drawing
    only, skip (the way past a sampled stage)."""
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


# -- what a drawing shows: lanes, one scrap edge per lane, the way past sampled stages ------------


@dataclass(frozen=True)
class Drawing:
    """A flow as drawn: where each entry is placed and the edges between them, in writing order."""

    lanes: Mapping[str, tuple[Entry, ...]]
    """Each station's lane, in the order stations first appear: its stages, and the any_order groups
    whose members all run there, in flow order (route, then rework)."""
    loose: tuple[Entry, ...]
    """What no lane holds: stages without a station, and groups whose members are not all at one
    station (a group drawn here holds only its members without a station)."""
    edges: tuple[Edge, ...]
    """The flow's edges, less the fail edges into scrapped of stages in a lane, plus the skip edges."""
    lane_fails: tuple[Edge, ...]
    """One fail edge into scrapped per lane holding a stage that scraps; its source is the station."""


def lane_of(flow: Flow, entry: Entry) -> str | None:
    """The station whose lane holds an entry: a stage's, or a group's when all its members share one."""
    if isinstance(entry, Group):
        stations = {flow.stages[m].station for m in entry.members}
        return stations.pop() if len(stations) == 1 else None
    return flow.stages[entry].station


def _placement(flow: Flow) -> tuple[dict[str, list[Entry]], list[Entry]]:
    lanes: dict[str, list[Entry]] = {}
    loose: list[Entry] = []

    def place(entry: Entry) -> None:
        station = lane_of(flow, entry)
        (lanes.setdefault(station, []) if station else loose).append(entry)

    for entry in (*flow.route, *flow.rework_ids):
        place(entry)
        if isinstance(entry, Group) and lane_of(flow, entry) is None:
            for member in entry.members:
                if flow.stages[member].station:
                    place(member)
    return lanes, loose


def stages_in(entries: Iterable[Entry]) -> list[str]:
    """The stage ids among entries, a group's members in its place."""
    return [s for e in entries for s in (e.members if isinstance(e, Group) else (e,))]


def _lane_fail(flow: Flow, station: str, entries: Iterable[Entry]) -> Edge | None:
    stage_ids = stages_in(entries)
    scrapping = [s for s in stage_ids if flow.stages[s].on_fail == SCRAP]
    if not scrapping:
        return None
    label = "fail (any stage)" if len(scrapping) == len(stage_ids) else "fail (any stage without on_fail)"
    return Edge(station, SCRAPPED, "fail", label)


def not_sampled_edges(flow: Flow) -> list[Edge]:
    """The ways past sampled stages: from each node before a run of sampled route stages to the node
    after each of them; inside an any_order group, from the group's fork to its join."""
    out: list[Edge] = []
    skipping: list[str] = []
    before = START
    for entry in flow.route:
        first, last = (entry.id, join_of(entry)) if isinstance(entry, Group) else (entry, entry)
        out.extend(Edge(s, first, "skip", NOT_SAMPLED) for s in skipping)
        if isinstance(entry, Group):
            sampled = [m for m in entry.members if flow.stages[m].sampling is not None]
            out.extend(Edge(entry.id, last, "skip", f"{m} {NOT_SAMPLED}") for m in sampled)
            skipping = []
        else:
            skipping = [*skipping, before] if flow.stages[entry].sampling is not None else []
        before = last
    out.extend(Edge(s, SHIPPED, "skip", NOT_SAMPLED) for s in skipping)
    return out


def drawing(flow: Flow) -> Drawing:
    """What `floorflow graph` draws of a flow."""
    lanes, loose = _placement(flow)
    laned = {s for entries in lanes.values() for s in stages_in(entries)}
    kept = [e for e in edges(flow) if not (e.kind == "fail" and e.target == SCRAPPED and e.source in laned)]
    fails = [_lane_fail(flow, station, entries) for station, entries in lanes.items()]
    return Drawing(
        lanes={station: tuple(entries) for station, entries in lanes.items()},
        loose=tuple(loose),
        edges=(*kept, *not_sampled_edges(flow)),
        lane_fails=tuple(f for f in fails if f is not None),
    )


def _sampling_text(sampling: Sampling) -> str:
    if sampling.aql is not None:
        return f"sampled at AQL {sampling.aql:g}, level {sampling.level}"
    return f"sampled {(sampling.rate or 0) * 100:g}%"


def label_lines(stage: Stage, *, in_lane: bool) -> list[str]:
    """The lines of a stage's box: its id, its step type (and marks), its sampling; its station
    only when no lane says it."""
    described = stage.step + (" ⚠ irreversible" if stage.irreversible else "")
    if stage.station and not in_lane:
        described += f" @ {stage.station}"
    lines = [stage.id, described]
    if stage.sampling is not None:
        lines.append(_sampling_text(stage.sampling))
    return lines


def _unique(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


# -- Mermaid --------------------------------------------------------------------------------------


def _mermaid_ids(flow: Flow, stations: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Mermaid state ids of stages, forks and joins, and of station lanes (``station_<name>``): what
    Mermaid's lexer refuses ('-') replaced, each id unique."""
    names = [*flow.stages, *(g.id for g in flow.route if isinstance(g, Group))]
    names += [join_of(g) for g in flow.route if isinstance(g, Group)]
    ids: dict[str, str] = {START: "[*]", SHIPPED: SHIPPED, SCRAPPED: SCRAPPED}
    taken = set(ids.values())
    for name in names:
        ids[name] = _unique(re.sub(r"[^A-Za-z0-9_]", "_", name), taken)
    lanes = {s: _unique("station_" + re.sub(r"[^A-Za-z0-9_]", "_", s), taken) for s in stations}
    return ids, lanes


def _mermaid_entries(
    flow: Flow, entries: Iterable[Entry], ids: Mapping[str, str], indent: str, *, in_lane: bool
) -> list[str]:
    """The state lines of entries: a group's fork and join with the members drawn with it."""
    lines: list[str] = []
    for entry in entries:
        if isinstance(entry, Group):
            lines.append(f"{indent}state {ids[entry.id]} <<fork>>")
            lines.append(f"{indent}state {ids[join_of(entry)]} <<join>>")
            members = entry.members if in_lane else [m for m in entry.members if not flow.stages[m].station]
            lines.extend(_mermaid_entries(flow, members, ids, indent, in_lane=in_lane))
        else:
            stage = flow.stages[entry]
            lines.append(f"{indent}{ids[entry]} : {'<br/>'.join(label_lines(stage, in_lane=in_lane))}")
    return lines


def to_mermaid(flow: Flow) -> str:
    drawn = drawing(flow)
    ids, lane_ids = _mermaid_ids(flow, drawn.lanes)
    lines = ["stateDiagram-v2", f"    %% {flow.recipe} v{flow.version} ({flow.source})"]
    for station, entries in drawn.lanes.items():
        lines.append(f'    state "{station}" as {lane_ids[station]} {{')
        lines.extend(_mermaid_entries(flow, entries, ids, "        ", in_lane=True))
        lines.append("    }")
    lines.extend(_mermaid_entries(flow, drawn.loose, ids, "    ", in_lane=False))
    for edge in drawn.edges:
        lines.append(f"    {ids[edge.source]} --> {ids[edge.target]} : {edge.label}")
    for edge in drawn.lane_fails:
        lines.append(f"    {lane_ids[edge.source]} --> {SCRAPPED} : {edge.label}")
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


# -- Graphviz DOT ---------------------------------------------------------------------------------

_DOT_EDGE_STYLE = {
    "pass": 'color="black"',
    "fail": 'color="#c62828"',
    "retry": 'color="#ef6c00"',
    "resume": 'color="#1565c0", constraint=false',
    "any": 'color="gray40"',
    "again": 'color="gray40", constraint=false',
    "exhausted": 'color="#c62828"',
    "skip": 'color="gray40", style=dashed',
}


def _dot_id(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'


def _dot_node(stage: Stage, indent: str, *, in_lane: bool) -> str:
    label = "\\n".join(label_lines(stage, in_lane=in_lane))
    style = ', style="filled,bold", fillcolor="#fde0dc", color="#c62828", penwidth=2' if stage.irreversible else ""
    if stage.rework:
        style = ', style=filled, fillcolor="#fff3cd"'
    return f"{indent}{_dot_id(stage.id)} [shape=box, label={_dot_id(label)}{style}];"


def _dot_point(name: str, indent: str) -> str:
    return f'{indent}{_dot_id(name)} [shape=point, label=""];'


def _dot_group(flow: Flow, group: Group, indent: str, *, in_lane: bool, cluster: str) -> list[str]:
    """A group's fork and join, and the members drawn with them, in a dashed cluster if it holds any."""
    members = group.members if in_lane else tuple(m for m in group.members if not flow.stages[m].station)
    if not members:
        return [_dot_point(group.id, indent), _dot_point(join_of(group), indent)]
    inner = indent + "    "
    return [
        f"{indent}subgraph {_dot_id(cluster)} {{",
        f"{inner}label={_dot_id('any order: ' + group.id)}; style=dashed;",
        _dot_point(group.id, inner),
        *(_dot_node(flow.stages[m], inner, in_lane=in_lane) for m in members),
        _dot_point(join_of(group), inner),
        f"{indent}}}",
    ]


def _dot_entries(
    flow: Flow, entries: Iterable[Entry], indent: str, clusters: Mapping[str, str], *, in_lane: bool
) -> list[str]:
    lines: list[str] = []
    for entry in entries:
        if isinstance(entry, Group):
            lines.extend(_dot_group(flow, entry, indent, in_lane=in_lane, cluster=clusters[entry.id]))
        else:
            lines.append(_dot_node(flow.stages[entry], indent, in_lane=in_lane))
    return lines


def _dot_clusters(flow: Flow, stations: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Cluster names of station lanes (``cluster_<station>``) and of groups, each unique."""
    taken: set[str] = set()
    lanes = {s: _unique(f"cluster_{s}", taken) for s in stations}
    groups = {g.id: _unique(f"cluster_{g.id}", taken) for g in flow.route if isinstance(g, Group)}
    return lanes, groups


def to_dot(flow: Flow) -> str:
    drawn = drawing(flow)
    lane_clusters, group_clusters = _dot_clusters(flow, drawn.lanes)
    lines = [
        f"digraph {_dot_id(flow.recipe)} {{",
        "    rankdir=TB;",
        "    compound=true;",
        "    newrank=true;",
        '    node [fontname="Helvetica"];',
        '    start [shape=circle, label="", style=filled, fillcolor=black, width=0.2];',
        f'    {SHIPPED} [shape=doublecircle, label="shipped"];',
        f'    {SCRAPPED} [shape=doublecircle, label="scrapped", color="#c62828"];',
    ]
    for station, entries in drawn.lanes.items():
        lines.append(f"    subgraph {_dot_id(lane_clusters[station])} {{")
        lines.append(f'        label={_dot_id(station)}; style=rounded; color="gray50";')
        lines.extend(_dot_entries(flow, entries, "        ", group_clusters, in_lane=True))
        lines.append("    }")
    lines.extend(_dot_entries(flow, drawn.loose, "    ", group_clusters, in_lane=False))
    for edge in drawn.edges:
        lines.append(
            f"    {_dot_id(edge.source)} -> {_dot_id(edge.target)} "
            f"[label={_dot_id(edge.label)}, {_DOT_EDGE_STYLE[edge.kind]}];"
        )
    for edge in drawn.lane_fails:
        tail = stages_in(drawn.lanes[edge.source])[-1]
        lines.append(
            f"    {_dot_id(tail)} -> {_dot_id(SCRAPPED)} [label={_dot_id(edge.label)}, "
            f"{_DOT_EDGE_STYLE['fail']}, ltail={_dot_id(lane_clusters[edge.source])}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(flow: Flow, fmt: str) -> str:
    return to_mermaid(flow) if fmt == "mermaid" else to_dot(flow)
