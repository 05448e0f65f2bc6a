"""Recipe inheritance (``extends:``), as docs/recipes.md *Inheritance* describes it.

Each test writes a small abstract base and a child that extends it into ``tmp_path`` and loads the
child with ``engine.recipe.load.load_recipe`` (the merged data) or ``engine.recipe.check.check_recipe`` (the
compiled Flow and the diagnostics).
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from engine.diagnostics import Diagnostic, RecipeError
from engine.flow import Flow
from engine.recipe.check import check_recipe, load_flow
from engine.recipe.load import LoadedRecipe, load_recipe
from engine.registry import Registry

ROOT = Path(__file__).resolve().parent.parent

BASE = """\
recipe: base
version: 1
abstract: true
product: {name: Probe, sku: P-1}
lifecycle: [Blank, Done]
params:
  market: EU
  operator: Northwind
  spare: 1
images:
  golden: {file: golden.ffu, kind: ffu, type: retail}
  old_test: {file: old.wim, kind: wim, type: test, temporary: true}
stages:
  - id: connect
    step: device.connect
    with: {interface: ftdi, timeout_s: 30}
    timeout_s: 60
  - any_order:
      id: checks
      stages:
        - {id: keys, step: manual.checklist, with: {checks: [power_key]}}
        - {id: audio, step: manual.checklist, with: {checks: [speaker]}}
  - id: customize
    step: device.customize
    with: {market: "${params.market}", operator: "${params.operator}"}
  - id: label
    step: label.print
    with: {template: unit, fields: [serial]}
"""


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.discover()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def child_of(tmp_path: Path, body: str, base: str = BASE) -> Path:
    """A child recipe at tmp_path/child.yaml extending tmp_path/base/base.yaml."""
    write(tmp_path / "base" / "base.yaml", base)
    header = "recipe: child\nversion: 1\nextends: base/base.yaml\n"
    return write(tmp_path / "child.yaml", header + textwrap.dedent(body))


def stage_ids(entries: list[Any]) -> list[Any]:
    """Ids of route entries; a group as (group id, [member ids])."""
    out: list[Any] = []
    for entry in entries:
        group = entry.get("any_order")
        out.append((group["id"], stage_ids(group["stages"])) if group else entry["id"])
    return out


def stage(recipe: LoadedRecipe, sid: str) -> dict[str, Any]:
    for entry in recipe.data["stages"]:
        members = entry["any_order"]["stages"] if "any_order" in entry else [entry]
        for member in members:
            if member["id"] == sid:
                return dict(member)
    raise KeyError(sid)


def errors(exc: RecipeError | list[Diagnostic]) -> list[Diagnostic]:
    diags = exc.diagnostics if isinstance(exc, RecipeError) else exc
    return [d for d in diags if d.severity == "error"]


def line_of(path: Path, needle: str) -> int:
    """1-based number of the first line of ``path`` containing ``needle``."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


# -- stages ---------------------------------------------------------------------------------------


def test_override_merges_stage_keys_and_with_one_level_deeper(tmp_path: Path) -> None:
    """An entry naming an inherited id keeps the keys it does not set and merges with: by key."""
    child = child_of(
        tmp_path,
        """\
        stages:
          - id: connect
            with: {timeout_s: 45}
            retry: {max: 1}
    """,
    )
    connect = stage(load_recipe(child), "connect")
    assert connect["step"] == "device.connect"
    assert connect["timeout_s"] == 60
    assert connect["retry"] == {"max": 1}
    assert connect["with"] == {"interface": "ftdi", "timeout_s": 45}


def test_override_replaces_values_below_the_merged_level(tmp_path: Path) -> None:
    """Inside with:, a list given by the child replaces the base's list; it is not appended to."""
    child = child_of(
        tmp_path,
        """\
        stages:
          - id: label
            with: {fields: [serial, imei]}
    """,
    )
    label = stage(load_recipe(child), "label")
    assert label["with"] == {"template": "unit", "fields": ["serial", "imei"]}


def test_override_reaches_a_group_member(tmp_path: Path) -> None:
    """A member of an any_order group is overridden by naming its id at the top level."""
    child = child_of(
        tmp_path,
        """\
        stages:
          - id: audio
            with: {checks: [speaker, microphone]}
    """,
    )
    recipe = load_recipe(child)
    assert stage(recipe, "audio")["with"] == {"checks": ["speaker", "microphone"]}
    assert stage_ids(recipe.data["stages"])[1] == ("checks", ["keys", "audio"])


def test_remove_deletes_inherited_stages(tmp_path: Path) -> None:
    """remove: true deletes a top-level stage and a group member of the base."""
    child = child_of(
        tmp_path,
        """\
        stages:
          - {id: label, remove: true}
          - {id: keys, remove: true}
    """,
    )
    assert stage_ids(load_recipe(child).data["stages"]) == ["connect", ("checks", ["audio"]), "customize"]


def test_remove_of_an_unknown_id_is_an_error(tmp_path: Path) -> None:
    """remove: true naming no inherited stage is an error with a did-you-mean."""
    child = child_of(
        tmp_path,
        """\
        stages:
          - {id: lable, remove: true}
    """,
    )
    with pytest.raises(RecipeError) as caught:
        load_recipe(child)
    (diag,) = errors(caught.value)
    assert "did you mean 'label'?" in diag.message
    assert (diag.pos.file, diag.pos.line) == (str(child), line_of(child, "lable"))


def test_after_and_before_insert_at_the_named_stage(tmp_path: Path) -> None:
    """New stages land right after/before the stage or group they name, members included."""
    child = child_of(
        tmp_path,
        """\
        stages:
          - {id: flash, before: connect, step: flash.gang, with: {image: golden}}
          - {id: vibration, after: keys, step: manual.checklist, with: {checks: [motor]}}
          - {id: camera, before: keys, step: manual.checklist, with: {checks: [lens]}}
          - {id: sensors, after: checks, step: manual.checklist, with: {checks: [als]}}
          - {id: reboot, before: label, step: boot.wait}
    """,
    )
    assert stage_ids(load_recipe(child).data["stages"]) == [
        "flash",
        "connect",
        ("checks", ["camera", "keys", "vibration", "audio"]),
        "sensors",
        "customize",
        "reboot",
        "label",
    ]


def test_a_new_stage_without_after_or_before_is_appended(tmp_path: Path) -> None:
    """A new stage that names no anchor goes to the end of the route."""
    child = child_of(
        tmp_path,
        """\
        stages:
          - {id: pack, step: manual.checklist, with: {checks: [box]}}
    """,
    )
    assert stage_ids(load_recipe(child).data["stages"])[-2:] == ["label", "pack"]


def test_directives_do_not_leak_into_the_merged_stage(tmp_path: Path) -> None:
    """after:/before: place a stage and are gone from the merged data (the compiler never sees them)."""
    child = child_of(
        tmp_path,
        """\
        stages:
          - {id: pack, after: customize, step: manual.checklist, with: {checks: [box]}}
    """,
    )
    assert "after" not in stage(load_recipe(child), "pack")


@pytest.mark.parametrize("directive", ["after", "before"])
def test_anchor_naming_an_unknown_id_points_at_the_child(tmp_path: Path, directive: str) -> None:
    """after:/before: naming no inherited stage: an error at the child's line, with did-you-mean."""
    child = child_of(
        tmp_path,
        f"""\
        stages:
          - id: pack
            step: manual.checklist
            with: {{checks: [box]}}
            {directive}: custmize
    """,
    )
    with pytest.raises(RecipeError) as caught:
        load_recipe(child)
    (diag,) = errors(caught.value)
    assert diag.code == "extends-unknown-id"
    assert "did you mean 'customize'?" in diag.message
    assert (diag.pos.file, diag.pos.line) == (str(child), line_of(child, "custmize"))


def test_after_on_an_inherited_stage_is_not_silently_ignored(tmp_path: Path, registry: Registry) -> None:
    """`{id: label, before: connect}` either moves the inherited stage or is reported."""
    child = child_of(
        tmp_path,
        """\
        stages:
          - {id: label, before: connect}
    """,
    )
    flow, problems = check_recipe(child, registry)
    moved = flow is not None and flow.route_ids[0] == "label"
    reported = any("before" in d.message for d in problems)
    assert moved or reported


def test_an_id_the_base_repeats_is_found_first_in_route_order(tmp_path: Path) -> None:
    """With an id twice in the base (compiling reports it), the child's entries reach the one met first
    walking the route (a group before its members): remove takes it, the next anchors at the other."""
    base = BASE.replace("{id: audio,", "{id: label,")
    child = child_of(
        tmp_path,
        """\
        stages:
          - {id: label, remove: true}
          - {id: pack, after: label, step: manual.checklist, with: {checks: [box]}}
    """,
        base=base,
    )
    assert stage_ids(load_recipe(child).data["stages"]) == [
        "connect",
        ("checks", ["keys"]),
        "customize",
        "label",
        "pack",
    ]


def test_merging_finds_each_entry_by_id_not_by_searching_the_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child of 2,000 after:/before: entries over a base of 2,000 stages looks at each entry's id a
    few times, not once per entry per stage (a search of the route for each would be 8 million)."""
    from engine.recipe import merge as routemerge

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from bigrecipe import extends_recipes
    finally:
        sys.path.remove(str(ROOT / "bench"))

    looked_at = 0
    real_entry_id = routemerge.entry_id

    def counted(entry: Any) -> str | None:
        nonlocal looked_at
        looked_at += 1
        return real_entry_id(entry)

    base, child = extends_recipes(2000, "base.yaml")
    write(tmp_path / "base.yaml", base)
    monkeypatch.setattr(routemerge, "entry_id", counted)
    recipe = load_recipe(write(tmp_path / "child.yaml", child))
    ids = [member for entry in stage_ids(recipe.data["stages"]) for member in _flat(entry)]
    assert ids.index("x0") + 1 == ids.index("s0") and ids.index("s1") + 1 == ids.index("x1")
    assert ids.index("s6") + 1 == ids.index("s5")
    assert len(ids) == len(set(ids))
    assert {f"s{n}" for n in range(2000)} <= set(ids)
    assert sum(sid.startswith("x") for sid in ids) == child.count("{id: x")
    assert looked_at < 20 * 4000


def _flat(entry: Any) -> list[str]:
    return [entry[0], *entry[1]] if isinstance(entry, tuple) else [entry]


# -- the extends chain ----------------------------------------------------------------------------


def test_extends_cycle_is_an_error_not_a_recursion(tmp_path: Path) -> None:
    """a extends b extends a: one extends-cycle error, no RecursionError."""
    write(tmp_path / "a.yaml", "recipe: a\nversion: 1\nextends: b.yaml\nstages: []\n")
    write(tmp_path / "b.yaml", "recipe: b\nversion: 1\nextends: a.yaml\nstages: []\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(tmp_path / "a.yaml")
    assert [d.code for d in errors(caught.value)] == ["extends-cycle"]


def test_a_recipe_extending_itself_is_an_error(tmp_path: Path) -> None:
    """A recipe that extends its own file is an extends-cycle error at its extends: line."""
    path = write(tmp_path / "self.yaml", "recipe: s\nversion: 1\nextends: ./self.yaml\nstages: []\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    (diag,) = errors(caught.value)
    assert (diag.code, diag.pos.line) == ("extends-cycle", 3)


def test_missing_extended_file_is_named(tmp_path: Path) -> None:
    """extends: naming a file that does not exist is an error naming that file."""
    path = write(tmp_path / "child.yaml", "recipe: c\nversion: 1\nextends: nowhere/base.yaml\nstages: []\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    (diag,) = errors(caught.value)
    assert diag.code == "extends-missing"
    assert "nowhere/base.yaml" in diag.message
    assert (diag.pos.file, diag.pos.line) == (str(path), 3)


def test_schema_errors_in_the_base_point_at_the_base(tmp_path: Path, registry: Registry) -> None:
    """A schema error inside the extended recipe is reported at the base file's own line."""
    broken = BASE.replace("    timeout_s: 60\n", "    timeout_s: 60\n    retry: {maxx: 1}\n")
    child = child_of(tmp_path, "stages: []\n", base=broken)
    base = tmp_path / "base" / "base.yaml"
    _, problems = check_recipe(child, registry)
    assert errors(problems)
    for diag in errors(problems):
        assert (diag.pos.file, diag.pos.line) == (str(base), line_of(base, "maxx")), diag


def test_compile_errors_in_the_base_point_at_the_base(tmp_path: Path, registry: Registry) -> None:
    """An unknown step type inside the extended recipe is reported at the base file's line."""
    broken = BASE.replace("step: label.print", "step: label.prnt")
    child = child_of(tmp_path, "stages: []\n", base=broken)
    base = tmp_path / "base" / "base.yaml"
    _, problems = check_recipe(child, registry)
    (diag,) = errors(problems)
    assert "did you mean 'label.print'?" in diag.message
    assert (diag.pos.file, diag.pos.line) == (str(base), line_of(base, "label.prnt"))


def test_a_child_may_leave_out_stages(tmp_path: Path, registry: Registry) -> None:
    """A child that only changes params inherits the whole route without writing stages:."""
    child = child_of(tmp_path, "params: {market: US}\n")
    flow = load_flow(child, registry)
    assert flow.route_ids[0] == "connect"


# -- keyed sections, abstract, identity -----------------------------------------------------------


def test_images_and_params_merge_key_by_key(tmp_path: Path) -> None:
    """images:/params: keep inherited keys, take the child's values, and drop keys set to null."""
    child = child_of(
        tmp_path,
        """\
        params: {market: US, spare: null, extra: 2}
        images:
          old_test: null
          new_test: {file: new.wim, kind: wim, type: test, temporary: true}
        stages: []
    """,
    )
    data = load_recipe(child).data
    assert data["params"] == {"market": "US", "operator": "Northwind", "extra": 2}
    assert set(data["images"]) == {"golden", "new_test"}
    assert data["images"]["golden"]["file"] == "golden.ffu"


def test_child_params_fill_inherited_stages(tmp_path: Path) -> None:
    """A ${params.NAME} in an inherited stage takes the value the child gives NAME."""
    child = child_of(tmp_path, "params: {market: US}\nstages: []\n")
    assert stage(load_recipe(child), "customize")["with"] == {"market": "US", "operator": "Northwind"}


def test_child_of_an_abstract_base_is_not_abstract(tmp_path: Path, registry: Registry) -> None:
    """abstract: true is not inherited: the child compiles to a runnable flow."""
    child = child_of(tmp_path, "stages: []\n")
    assert load_flow(child, registry).abstract is False


def _snapshot(recipe: LoadedRecipe) -> str:
    return json.dumps(recipe.data, sort_keys=True, default=str)


def test_loading_a_child_leaves_the_base_unchanged(tmp_path: Path) -> None:
    """Base loaded, child loaded (overrides, removals, inserts), base loaded again: same data."""
    child = child_of(
        tmp_path,
        """\
        params: {market: US}
        stages:
          - {id: connect, with: {timeout_s: 5}}
          - {id: keys, remove: true}
          - {id: camera, after: audio, step: manual.checklist, with: {checks: [lens]}}
    """,
    )
    base = tmp_path / "base" / "base.yaml"
    before_text = base.read_bytes()
    before = load_recipe(base)
    merged = load_recipe(child)
    after = load_recipe(base)
    assert _snapshot(merged) != _snapshot(before)
    assert _snapshot(after) == _snapshot(before)
    assert after.content_hash == before.content_hash
    assert base.read_bytes() == before_text


def test_content_hash_follows_the_base(tmp_path: Path) -> None:
    """The child's content hash changes with the base's content, not with its comments."""
    child = child_of(tmp_path, "stages: []\n")
    base = tmp_path / "base" / "base.yaml"
    first = load_recipe(child).content_hash
    base.write_text("# a comment only\n" + base.read_text())
    assert load_recipe(child).content_hash == first
    base.write_text(base.read_text().replace("[power_key]", "[power_key, volume_keys]"))
    assert load_recipe(child).content_hash != first


# -- the shipped phone workflows ------------------------------------------------------------------


@pytest.fixture(scope="module")
def phone_wim(registry: Registry) -> Flow:
    return load_flow(ROOT / "workflows" / "phone-wim.yaml", registry)


def test_phone_wim_flashes_golden_first(phone_wim: Flow) -> None:
    """phone-wim's before: assemble puts flash_golden at the very start of the route."""
    assert phone_wim.route_ids[0] == "flash_golden"
    assert phone_wim.route_ids[:3] == ("flash_golden", "assemble", "boot_mmos_wim")


def test_phone_wim_reboots_to_golden_before_final_qa(phone_wim: Flow) -> None:
    """reboot_to_golden sits right before advance_provisioned, hence before final_qa."""
    ids = phone_wim.route_ids
    assert ids.index("reboot_to_golden") + 1 == ids.index("advance_provisioned")
    assert ids.index("reboot_to_golden") < ids.index("final_qa")


def test_phone_wim_rework_resumes_at_the_wim_boot(phone_wim: Flow) -> None:
    """The child's override of rf_rework changes then: and keeps the base's other keys."""
    rework = phone_wim.stages["rf_rework"]
    assert (rework.then, rework.max_visits, rework.step) == ("boot_mmos_wim", 2, "manual.checklist")


# -- what extends: may name -----------------------------------------------------------------------

SMALL_BASE = "recipe: base\nversion: 1\nabstract: true\nstages:\n  - {id: a, step: device.record_id}\n"


def refusal(child: Path, recipe_root: Path | None = None) -> Diagnostic:
    """The one error loading ``child`` gives; it must sit on the child's extends: line."""
    with pytest.raises(RecipeError) as caught:
        load_recipe(child, recipe_root=recipe_root)
    (diag,) = errors(caught.value)
    assert (diag.pos.file, diag.pos.line) == (str(child), 1), diag
    return diag


def extending(tree: Path, ref: str) -> Path:
    """tree/child.yaml whose first line is ``extends: ref`` (written as a YAML double-quoted string)."""
    return write(tree / "child.yaml", f"extends: {json.dumps(ref)}\nrecipe: c\nversion: 1\nstages: []\n")


@pytest.mark.parametrize(
    ("ref", "code"),
    [
        ("../outside/base.yaml", "extends-outside"),
        ("sub/../../outside/base.yaml", "extends-outside"),
        ("/etc/hostname", "extends-outside"),
        ("/dev/null", "extends-outside"),
        ("../" * 40 + "proc/self/environ", "extends-outside"),
        ("sub", "extends-not-file"),
        ("fifo.yaml", "extends-not-file"),
        ("a" * 300 + ".yaml", "extends-unreadable"),
        ("a\nb.yaml", "extends-bad-path"),
        ("a\x1b[31mb.yaml", "extends-bad-path"),
        ("a\x00b.yaml", "extends-bad-path"),
        ("nowhere.yaml", "extends-missing"),
    ],
)
def test_extends_names_only_a_regular_file_inside_the_recipe_tree(tmp_path: Path, ref: str, code: str) -> None:
    """Absolute paths, .. out of the tree, /proc, directories, FIFOs, over-long and control-character
    paths are each one error with its code at the extends: line, never opened and never an OSError."""
    tree = tmp_path / "tree"
    write(tmp_path / "outside" / "base.yaml", SMALL_BASE)
    (tree / "sub").mkdir(parents=True)
    os.mkfifo(tree / "fifo.yaml")
    diag = refusal(extending(tree, ref), None)
    assert diag.code == code
    assert "\n" not in str(diag) and "\x1b" not in str(diag) and "\x00" not in str(diag)


def test_a_link_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    """A symbolic link inside the tree that leads out of it is followed, and refused as extends-outside."""
    write(tmp_path / "outside" / "base.yaml", SMALL_BASE)
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "base.yaml").symlink_to(tmp_path / "outside" / "base.yaml")
    assert refusal(extending(tmp_path / "tree", "base.yaml")).code == "extends-outside"


def test_the_kernel_files_are_refused_even_below_the_root(tmp_path: Path) -> None:
    """With --recipe-root /, /proc is still no recipe: extends-outside naming the kernel."""
    diag = refusal(extending(tmp_path, "../" * 40 + "proc/self/environ"), Path("/"))
    assert (diag.code, "file of the kernel" in diag.message) == ("extends-outside", True)


def test_recipe_root_lets_a_chain_reach_a_shared_directory(tmp_path: Path) -> None:
    """--recipe-root names a wider tree: ../shared/base.yaml, and a link into it, are then accepted."""
    write(tmp_path / "shared" / "base.yaml", SMALL_BASE)
    line = tmp_path / "lines" / "a"
    line.mkdir(parents=True)
    child = extending(line, "../../shared/base.yaml")
    assert refusal(child).code == "extends-outside"
    assert stage_ids(load_recipe(child, recipe_root=tmp_path).data["stages"]) == ["a"]
    (line / "base.yaml").symlink_to(tmp_path / "shared" / "base.yaml")
    assert stage_ids(load_recipe(extending(line, "base.yaml"), recipe_root=tmp_path).data["stages"]) == ["a"]


def test_inside_the_tree_dot_dot_and_subdirectories_are_fine(tmp_path: Path) -> None:
    """A path that climbs back into the tree (sub/../base/base.yaml) is inside it."""
    write(tmp_path / "base" / "base.yaml", SMALL_BASE)
    (tmp_path / "sub").mkdir()
    assert stage_ids(load_recipe(extending(tmp_path, "sub/../base/base.yaml")).data["stages"]) == ["a"]


def test_a_base_extending_out_of_the_first_recipes_tree_is_refused(tmp_path: Path) -> None:
    """The tree is the first recipe's: a base in base/ may not extend ../../ beyond it."""
    write(tmp_path / "outside" / "top.yaml", SMALL_BASE)
    base = write(tmp_path / "tree" / "base" / "base.yaml", 'extends: "../../outside/top.yaml"\n' + SMALL_BASE)
    child = extending(tmp_path / "tree", "base/base.yaml")
    with pytest.raises(RecipeError) as caught:
        load_recipe(child)
    (diag,) = errors(caught.value)
    assert (diag.code, diag.pos.line, diag.pos.file.endswith("base/base.yaml")) == ("extends-outside", 1, True)
    assert base.is_file()


def test_validate_and_graph_take_recipe_root(tmp_path: Path) -> None:
    """`floorflow validate|graph --recipe-root DIR` accept a chain into DIR; a root that is no directory is exit 2."""
    from engine.cli import main

    write(tmp_path / "shared" / "base.yaml", SMALL_BASE)
    child = extending(tmp_path / "line", "../shared/base.yaml")
    assert main(["validate", str(child)]) == 1
    assert main(["validate", "--recipe-root", str(tmp_path), str(child)]) == 0
    assert main(["graph", "--recipe-root", str(tmp_path), str(child)]) == 0
    assert main(["validate", "--recipe-root", str(tmp_path / "none"), str(child)]) == 2


def test_shipped_workflows_extend_inside_their_tree(registry: Registry) -> None:
    """The example workflows' extends: base/phone.yaml stays inside workflows/ (and engine/workflows/ installed)."""
    for name in ("phone-wim.yaml", "phone-reflash.yaml"):
        flow, problems = check_recipe(ROOT / "workflows" / name, registry)
        assert flow is not None, problems


def test_run_simulate_and_release_take_recipe_root(tmp_path: Path) -> None:
    """run, simulate and recipe release take --recipe-root as validate does: the shipped phone line whose base
    lies beside its directory is refused without it and runs, simulates and releases with it."""
    from engine.cli import main

    write(tmp_path / "shared" / "phone.yaml", (ROOT / "workflows" / "base" / "phone.yaml").read_text())
    line = write(
        tmp_path / "line" / "phone-wim.yaml",
        (ROOT / "workflows" / "phone-wim.yaml").read_text().replace("base/phone.yaml", "../shared/phone.yaml"),
    )
    root = ["--recipe-root", str(tmp_path)]
    store = ["--store", f"sqlite:///{tmp_path / 'records.db'}"]
    assert main(["run", str(line), "--sim", "--unit", "SN1", *store]) == 1
    assert main(["run", str(line), *root, "--sim", "--unit", "SN1", *store]) == 0
    assert main(["simulate", str(line), "--units", "20"]) == 1
    assert main(["simulate", str(line), *root, "--units", "20", "--json"]) == 0
    assert main(["recipe", "release", str(line), "--by", "qa", *store]) == 1
    assert main(["recipe", "release", str(line), *root, "--by", "qa", *store]) == 0
    assert main(["run", str(line), "--recipe-root", str(tmp_path / "none"), "--sim", "--unit", "SN2", *store]) == 2
