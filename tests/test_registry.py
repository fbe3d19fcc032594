"""Verifier registry: every spec form resolves, unknown ones fail helpfully; the built-ins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewards import builtin_verifiers, registry
from rewards.math_equivalence import math_verifier
from rewards.registry import AnswerVerifier, register_verifier, resolve_verifier
from tests import verifier_fixtures

FIXTURES = Path(verifier_fixtures.__file__).resolve()


# --- spec forms -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "verifier"), [
    ("math", builtin_verifiers.math),
    ("multiple_choice", builtin_verifiers.multiple_choice),
    ("integer", builtin_verifiers.integer),
])
def test_builtin_names(name: str, verifier: AnswerVerifier) -> None:
    assert resolve_verifier(name) is verifier
    assert resolve_verifier(f"  {name} ") is verifier  # YAML values may carry spaces


def test_module_and_dotted_attribute_specs() -> None:
    assert resolve_verifier("tests.verifier_fixtures:exact") is verifier_fixtures.exact
    assert resolve_verifier("tests.verifier_fixtures:counted_last_word.extract") is verifier_fixtures._last_word


def test_file_path_spec_loads_the_file_once(tmp_path: Path) -> None:
    module = tmp_path / "my_checks.py"
    module.write_text("LOADS = []\nLOADS.append(1)\ndef strict(response, gold):\n    return response == gold\n")
    first = resolve_verifier(f"{module}:strict")
    assert first("a", "a") and not first("a", "b")
    assert resolve_verifier(f"{module}:strict") is first
    assert first.__globals__["LOADS"] == [1]


def test_file_path_spec_of_an_importable_module_reuses_its_registration() -> None:
    # tests/verifier_fixtures.py registers "fixture_exact"; loading it again by path re-runs
    # that registration, which must not count as a clash.
    assert resolve_verifier(f"{FIXTURES}:exact")("x", "x")
    assert resolve_verifier("fixture_exact")("x", "x")


def test_register_verifier_decorator() -> None:
    @register_verifier("test_registry_always_right")
    def always_right(response: str, gold: str) -> bool:
        return True

    assert resolve_verifier("test_registry_always_right") is always_right
    assert registry.registering_module("test_registry_always_right") == __name__
    with pytest.raises(ValueError, match="already taken"):
        register_verifier("test_registry_always_right")(lambda response, gold: False)
    with pytest.raises(ValueError, match="already taken"):
        register_verifier("math")(lambda response, gold: False)
    with pytest.raises(ValueError, match="contain no ':'"):
        register_verifier("a:b")


def test_entry_point_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A minimal installed distribution declaring one verifier in the entry-point group.
    dist = tmp_path / "my_verifiers-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-verifiers\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[mathrl.verifiers]\nplugin_exact = tests.verifier_fixtures:exact\nbroken = tests.verifier_fixtures:nope\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve_verifier("plugin_exact") is verifier_fixtures.exact
    with pytest.raises(ValueError, match="'broken'.*failed to load"):
        resolve_verifier("broken")


def test_unknown_name_lists_builtins_and_forms() -> None:
    with pytest.raises(ValueError) as info:
        resolve_verifier("maths")
    message = str(info.value)
    for expected in ("unknown verifier 'maths'", "math", "multiple_choice", "integer",
                     "module.path:function", "/path/to/file.py:function", "mathrl.verifiers"):
        assert expected in message


@pytest.mark.parametrize(("spec", "match"), [
    ("", "non-empty"),
    ("no_such_module_xyz:check", "cannot import module 'no_such_module_xyz'"),
    ("tests.verifier_fixtures:nope", "no attribute 'nope'; callables there: .*exact"),
    ("tests.verifier_fixtures:_ACTIONS", "not a function"),
    ("/no/such/file.py:check", "no such file"),
    (":check", "must look like"),
    ("tests.verifier_fixtures:", "must look like"),
])
def test_bad_specs_say_what_is_wrong(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        resolve_verifier(spec)


def test_file_that_fails_to_load(tmp_path: Path) -> None:
    module = tmp_path / "broken.py"
    module.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ValueError, match="loading .*broken.py.*RuntimeError: boom"):
        resolve_verifier(f"{module}:check")


# --- built-in verifiers -----------------------------------------------------------------


@pytest.mark.parametrize(("response", "letter"), [
    ("(B)", "B"),
    ("B.", "B"),
    ("\\text{(B)}", "B"),
    ("The answer is B", "B"),
    ("The answer is (C).", "C"),
    ("so the answer is $\\boxed{\\text{(D)}}$", "D"),
    ("Answer: **E**", "E"),
    ("the correct answer is option A because 2 > 1", "A"),
    ("Checking each option...\n(B) 42", "B"),
    ("<think>maybe A</think>The answer is (C)", "C"),
    ("the answer is a prime number", None),  # lower-case "a" is a word, not a choice
    ("I am not sure.", None),
])
def test_multiple_choice_extraction(response: str, letter: str | None) -> None:
    assert builtin_verifiers.extract_choice(response) == letter


def test_multiple_choice_verdicts() -> None:
    mc = builtin_verifiers.multiple_choice
    assert mc("The answer is (B).", "B")
    assert mc("The answer is (B).", "(B)")
    assert not mc("The answer is (B).", "C")
    assert not mc("no idea", "B")
    assert mc.compare("\\text{(B)}", "B")  # an already-extracted answer
    assert mc("... \\boxed{D}", "Solution: ... so it is \\boxed{D}")  # gold as a reference solution


@pytest.mark.parametrize(("response", "gold", "correct"), [
    ("She pays 2,125 dollars in total.", "2,125", True),
    ("The answer is 2125.", "2,125", True),
    ("so \\boxed{2{,}125}", "2125", True),
    ("The answer is $18.", "18", True),
    ("The answer is 18 dollars.", "18", True),
    ("He has 18.00 left", "18", True),
    ("Total: \\boxed{\\$1,000}", "1000", True),
    ("It is 17, not 18... final: 17", "18", False),  # the last number counts
    ("The answer is 18.5", "18", False),
    ("The answer is 3/4", "4", False),  # a fraction is not the integer 4
    ("The answer is -7", "-7", True),
    ("nothing here", "7", False),
    ("Step 1 ... #### 72", "72", True),
    ("so 72", "Natalia sold 48/2 = 24 ... 48+24 = 72\n#### 72", True),  # gold as a GSM8K solution
])
def test_integer_verifier(response: str, gold: str, correct: bool) -> None:
    assert builtin_verifiers.integer(response, gold) is correct


def test_integer_compare_takes_bare_answers() -> None:
    assert builtin_verifiers.integer.compare("$2,125", "2,125")
    assert not builtin_verifiers.integer.compare("2.5", "2")


def test_math_split_verifier_agrees_with_math_verifier(shared_data: Path) -> None:
    # The cache and `check_answers` rely on compare(extract(response), gold) being exactly
    # the "math" verdict: check it on MATH-500 reference solutions against right and wrong golds.
    rows = [json.loads(line) for line in (shared_data / "math500.jsonl").open()][:40]
    split = builtin_verifiers.math
    agree_right = [split(r["solution"], r["answer"]) == math_verifier(r["solution"], r["answer"]) for r in rows]
    wrong_golds = [rows[(i + 1) % len(rows)]["answer"] for i in range(len(rows))]
    agree_wrong = [split(r["solution"], g) == math_verifier(r["solution"], g) for r, g in zip(rows, wrong_golds)]
    assert all(agree_right) and all(agree_wrong)
    assert sum(split(r["solution"], r["answer"]) for r in rows) >= 36  # and they mostly verify
