"""`floorflow validate` answers mutated recipes with one-line diagnostics, never a traceback; the fuzzer judges right.

The sample runs a few hundred inputs of bench/fuzz.py's generator (tests/fuzzkit.py) in this
process through the real CLI entry point; bench/fuzz.py runs 10,000 and more.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from fuzzkit import make_input, prepare_dir, write_input
from fuzzrun import Outcome, judge, run_in_process

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SEED = 12
SAMPLE_INPUTS = 300


def test_mutated_recipes_get_diagnostics_never_tracebacks(tmp_path: Path) -> None:
    """Every input of the seeded sample ends with exit 0, 1 or 2, no traceback, and only well-formed lines."""
    prepare_dir(tmp_path)
    kinds: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for index in range(SAMPLE_INPUTS):
        fuzz = make_input(SAMPLE_SEED, index)
        written = write_input(tmp_path, fuzz)
        verdict = judge(run_in_process(tmp_path, fuzz.args), tmp_path, written, fuzz.after, fuzz.json_output)
        for path in written:
            path.unlink()
        output = (verdict.traceback or "") + "\n".join(verdict.bad_lines)
        for kind in verdict.kinds():
            kinds[kind] += 1
            examples.setdefault(kind, f"{fuzz.describe()}\n  exit {verdict.outcome.exit}\n  {output[:600]}")
    report = "\n".join(f"{count} x {kind}\n  e.g. {examples[kind]}" for kind, count in kinds.most_common())
    assert not kinds, f"failures of {SAMPLE_INPUTS} inputs, by kind:\n{report}"


def test_an_input_is_the_same_from_the_same_seed_and_index() -> None:
    """(seed, index) rebuilds the same files; another seed gives other inputs."""
    for index in range(40):
        assert make_input(5, index).files == make_input(5, index).files
    assert [make_input(5, i).files for i in range(10)] != [make_input(6, i).files for i in range(10)]


def _outcome(stdout: str = "", stderr: str = "", exit: str = "1") -> Outcome:
    return Outcome(exit, stdout, stderr, 0.0, "in-process")


@pytest.fixture
def recipe_dir(tmp_path: Path) -> Path:
    (tmp_path / "r.yaml").write_text("recipe: x\nversion: 1\n", encoding="utf-8")
    return tmp_path


def test_judge_accepts_placed_diagnostics_and_the_summary(recipe_dir: Path) -> None:
    """A diagnostic inside the file and the summary line are not failures."""
    ok = judge(_outcome("r.yaml:2:10: error: wrong [schema-type]\n", exit="1"), recipe_dir)
    assert not ok.failed
    placed = "r.yaml:1:1: error: character U+0072 ('r') is not allowed [yaml-character]\n"
    assert not judge(_outcome(placed, exit="1"), recipe_dir).failed
    (recipe_dir / "b.yaml").write_bytes(b"recipe: x\rversion: \xc3\xa9\xff\n")
    byte = "b.yaml:2:11: error: file is not UTF-8 text (invalid start byte) [yaml-encoding]\n"
    assert not judge(_outcome(byte, exit="1"), recipe_dir).failed
    valid = judge(_outcome(stderr="r.yaml:1:1: warning: odd [w-x]\n1 recipe valid\n", exit="0"), recipe_dir)
    assert not valid.failed


@pytest.mark.parametrize(
    ("stdout", "stderr", "exit"),
    [
        ('r.yaml:1:1: error: first half\n  in "<unicode string>", position 3 [yaml-syntax]\n', "", "1"),
        ("r.yaml:9:1: error: past the last line [yaml-syntax]\n", "", "1"),
        ("r.yaml:1:40: error: past the end of the line [yaml-syntax]\n", "", "1"),
        ("r.yaml:1:2: error: character U+0072 ('r') is not allowed [yaml-character]\n", "", "1"),
        ("r.yaml:2:1: error: file is not UTF-8 text [yaml-encoding]\n", "", "1"),
        ("/etc/hostname:1:1: error: outside the recipe's directory [x]\n", "", "1"),
        ("r.yaml:1:1: error: escape \x1b[31m reaches the terminal [x]\n", "", "1"),
        ("", "floorflow: error: [Errno 5] Input/output error\n", "2"),
        ("", "", "1"),
        ("", "r.yaml:1:1: error: an error yet valid [x]\n1 recipe valid\n", "0"),
        ("", "r.yaml:1:1: error: fine [x]\n", "3"),
    ],
    ids=[
        "two-lines",
        "line",
        "column",
        "character-elsewhere",
        "byte-elsewhere",
        "outside",
        "escape",
        "no-position",
        "silent",
        "error-exit-0",
        "exit-3",
    ],
)
def test_judge_flags_what_is_not_a_placed_one_line_diagnostic(
    recipe_dir: Path, stdout: str, stderr: str, exit: str
) -> None:
    """Split lines, positions outside the file or the directory, escapes, bare errors and odd exits fail."""
    assert judge(_outcome(stdout, stderr, exit), recipe_dir).failed


def test_judge_fails_a_recipe_with_a_nonfinite_number_that_passes(recipe_dir: Path) -> None:
    """Exit 0 for a recipe holding .nan is a failure; for a finite recipe it is not."""
    passed = _outcome(stderr="1 recipe valid\n", exit="0")
    assert not judge(passed, recipe_dir, [recipe_dir / "r.yaml"]).failed
    (recipe_dir / "n.yaml").write_text("recipe: x\nparams: {p: {min: .nan, max: 1.0}}\n", encoding="utf-8")
    assert judge(passed, recipe_dir, [recipe_dir / "n.yaml"]).failed


def test_judge_fails_a_validate_that_stops_before_a_later_file(recipe_dir: Path) -> None:
    """A later file whose error goes unreported means validate stopped early; named, it is fine."""
    (recipe_dir / "s.yaml").write_text('recipe: s\nversion: "one"\n', encoding="utf-8")
    first_only = _outcome("r.yaml:1:1: error: bad [x]\n", exit="1")
    assert judge(first_only, recipe_dir, must_report=["s.yaml"]).failed
    both = _outcome("r.yaml:1:1: error: bad [x]\ns.yaml:2:10: error: not an integer [schema-type]\n", exit="1")
    assert not judge(both, recipe_dir, must_report=["s.yaml"]).failed


def test_judge_reads_json_output_as_the_same_diagnostics(recipe_dir: Path) -> None:
    """--format json: placed entries pass; an entry outside the file, or stdout not JSON, fails."""
    entry = {"file": "r.yaml", "line": 2, "column": 10, "severity": "error", "code": "x", "message": "m"}
    assert not judge(_outcome(json.dumps([entry])), recipe_dir, json_output=True).failed
    assert not judge(_outcome("[]\n", exit="0"), recipe_dir, json_output=True).failed
    outside = json.dumps([{**entry, "line": 9}])
    assert judge(_outcome(outside), recipe_dir, json_output=True).failed
    assert judge(_outcome("r.yaml:2:10: error: m [x]\n"), recipe_dir, json_output=True).failed


def test_judge_finds_a_traceback_in_the_output(recipe_dir: Path) -> None:
    """A traceback printed by the process is a traceback, named by its exception and innermost project frame."""
    text = f'Traceback (most recent call last):\n  File "{ROOT}/engine/yamlload.py", line 102, in build\nKeyError: x\n'
    verdict = judge(_outcome(stderr=text), recipe_dir)
    assert verdict.traceback is not None
    assert verdict.kinds() == ["traceback KeyError at engine/yamlload.py:102"]


def test_an_exception_escaping_main_is_caught_and_kept(recipe_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run_in_process keeps an escaping exception as a traceback, and SystemExit as its exit code."""
    import engine.cli

    def boom(argv: list[str]) -> int:
        raise KeyError("maybe")

    monkeypatch.setattr(engine.cli, "main", boom)
    outcome = run_in_process(recipe_dir, ["r.yaml"])
    assert outcome.escaped is not None and "KeyError" in outcome.escaped
    assert judge(outcome, recipe_dir).traceback is not None

    def leave(argv: list[str]) -> int:
        raise SystemExit(7)

    monkeypatch.setattr(engine.cli, "main", leave)
    assert run_in_process(recipe_dir, ["r.yaml"]).exit == "7"


def test_the_benchmark_prints_its_figures_last(tmp_path: Path) -> None:
    """bench/fuzz.py ends with one JSON object of the five figures; --dump writes a failing input out."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--inputs", "12", "--workers", "2", "--sample-every", "6",
         "--dump", str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    figures = json.loads(proc.stdout.strip().split("\n")[-1])
    assert set(figures) == {"inputs", "tracebacks", "bad_lines", "exit_codes", "max_s"}
    assert figures["inputs"] == 12 and sum(figures["exit_codes"].values()) == 12
    assert (proc.returncode == 1) == any(tmp_path.iterdir())
