"""Seeds derived from labels: the same in every process, and a problem's sampling seed depends
on nothing but the run's seed and the problem's id."""

import subprocess
import sys
from types import SimpleNamespace

from mathrl.seeding import derive_seed, problem_seed, problem_seeds


def test_derived_seeds_are_the_same_in_another_process():
    # str hashes are randomised per process; these seeds must not be
    code = "from mathrl.seeding import derive_seed, problem_seed; print(derive_seed('rm', 3), problem_seed(7, 'p-12'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert [int(x) for x in out] == [derive_seed("rm", 3), problem_seed(7, "p-12")]


def test_derived_seeds_separate_their_labels():
    assert derive_seed("a", "bc") != derive_seed("ab", "c")
    assert 0 <= derive_seed("x") < 2**64


def test_problem_seeds_follow_the_problems_not_their_order_or_batch():
    problems = [SimpleNamespace(id=f"p-{i}") for i in range(10)]
    seeds = problem_seeds(3, problems)
    assert seeds == [problem_seed(3, p.id) for p in problems]
    assert problem_seeds(3, problems[::-1]) == seeds[::-1]
    assert problem_seeds(3, problems[:4]) + problem_seeds(3, problems[4:]) == seeds
    assert len(set(seeds)) == len(seeds)
    assert problem_seeds(4, problems) != seeds  # the run's seed changes every problem's samples
    assert all(0 <= s < 2**32 for s in seeds)  # what vLLM's SamplingParams.seed takes
