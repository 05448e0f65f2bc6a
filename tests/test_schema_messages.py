"""Schema problems read as a person would put them, at the right place."""

from __future__ import annotations

from engine.schema import validate_document
from engine.yamlload import load_text

HEAD = "recipe: t\nversion: 1\nstages:\n"


def _problems(stages: str) -> list[tuple[int, int, str]]:
    data = load_text(HEAD + stages, "r.yaml")
    return [(d.pos.line, d.pos.col, d.message) for d in validate_document(data)]


def test_wrong_item_in_a_list_is_named_not_the_other_branch() -> None:
    """A list parameter with one bad item points at that item, not at 'not a ${params} string'."""
    found = _problems("  - {id: m, step: rf.measure, with: {band: x, channels: [1, '2']}}\n")
    assert found == [(4, 61, "stages[0].with.channels[1]: '2' is not of type 'integer'")]


def test_sampling_without_rate_or_aql_says_to_give_one() -> None:
    """sampling with neither rate nor aql asks for exactly one of them, in one line."""
    found = _problems("  - {id: s, step: sample.inspect, with: {tests: [a]}, sampling: {lot_size: 5}}\n")
    assert len(found) == 1
    assert found[0][2] == "stages[0].sampling: give exactly one of aql, rate"
