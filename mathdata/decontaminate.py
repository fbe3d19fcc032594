"""Decontamination: drop training problems that overlap an evaluation set.

Two rules, after the Qwen2.5-Math recipe, compare problem statements (not solutions):

* ``ngram``: the training problem shares an n-gram of `DecontaminationConfig.ngram` (13)
  consecutive tokens with an evaluation problem.
* ``lcs``: the LCS ratio of the two token sequences reaches `DecontaminationConfig.lcs_ratio`
  (0.6), where

      ratio(a, b) = 2 * LCS(a, b) / (len(a) + len(b))

  and LCS is the length of the longest common subsequence of the token lists. This is
  difflib's ``SequenceMatcher.ratio`` formula, with the exact LCS in place of difflib's greedy
  matching blocks (so it is symmetric and has no junk heuristics). Two sequences with no
  tokens at all have ratio 0.

Where this departs from the recipe: the Qwen2-Math write-up, which Qwen2.5-Math follows,
describes 13-gram deduplication "with a condition" on the LCS ratio, i.e. a problem goes when
both hold; here either rule alone removes it, a superset (a long training problem that embeds
an evaluation problem verbatim shares 13-grams with it but can have a low ratio, and is still
contamination).

Tokenization (`tokenize`), the same for both rules:

1. Unicode NFKC, then lowercase; thousands separators go ("1,000" -> "1000").
2. Tokens are words (runs of letters), numbers (digits with an optional decimal part), LaTeX
   commands (``\\frac``, ``\\sqrt``, ``\\pi``) and the operators ``+ - * / = < > ^ | ! %``.
   In a math problem the formula is content, often most of it: without commands and operators
   ``$\\sqrt{x}$`` would equal ``$x$``, and short problems that share only their wording
   ("If ..., what is the value of ...?") would look alike. (Measured on MATH-500 against
   itself: dropping commands and operators, 36 pairs of different problems reach a ratio of
   0.6; keeping them, 23.) Spelling variants are merged (``\\dfrac``/``\\tfrac`` -> ``\\frac``,
   ``\\le`` -> ``\\leq``, ...) and layout-only commands (``\\left``, ``\\displaystyle``,
   ``\\text``, ...) are dropped, their arguments kept.
3. Everything else (punctuation, brackets, braces, ``$``) is dropped, so re-punctuating or
   re-typesetting a problem does not hide it: "$f(3x+5)$." is ``f 3 x + 5``.

The ratio is computed on these word-level tokens, not on characters: unrelated problems share
so many letters that their character-level ratio is already 0.3-0.5 (median 0.41 over random
GSM8K test pairs, 99th percentile 0.49), too close to 0.6 to separate rewordings from
strangers; their word-level ratio has median 0.1 and 99th percentile 0.24 (0.36 on MATH-500).
Words are also what the n-gram rule counts, and sequences 5x shorter.

Short problems (fewer than `ngram` tokens) cannot share an n-gram; the ``lcs`` rule still
applies to them. At that length one changed token moves the ratio a lot: a 5-token problem
that differs from an evaluation problem in one token (ratio 0.8) is removed, which is the
intent ("Compute 9 choose 4" is "Compute 8 choose 4" with a number changed). The recipe's
threshold is aggressive in the same way for problems built on a common template: 23 of the
124,750 pairs of (distinct) MATH-500 problems reach 0.6, e.g. "Let $a,$ $b,$ $c$ be positive
real numbers such that ... Find the minimum value of ...", so a training set of templated
problems loses the siblings of every templated evaluation problem, not only copies of it.

Which evaluation problem a removal names, so results are deterministic: for ``ngram``, the
first n-gram of the training problem (in reading order) that any evaluation problem has,
with the lowest evaluation index that has it; for ``lcs``, the evaluation problem with the
highest ratio (lowest index on ties). The ``ngram`` rule is checked first.

How it is fast (10k x 1k problems is 10M pairs; an LCS in Python costs ~1 ms each):

* ``ngram``: one dict from every evaluation n-gram to its first evaluation problem; each
  training n-gram is one lookup.
* ``lcs``: a common subsequence uses each token at most as often as either side has it, so
  LCS(a, b) <= overlap(a, b) = sum_t min(count_a(t), count_b(t)) and
  ratio <= 2 * overlap / (len(a) + len(b)). The overlaps of all pairs come from a dense
  (evaluation vocabulary x training problems) count matrix, one gather-min-sum per evaluation
  problem. Only pairs whose bound reaches the threshold get an exact LCS, bit-parallel over
  Python integers (Allison-Dix / Hyyro: four integer operations per token of the training
  problem, on integers with one bit per token of the evaluation problem), best bound first,
  stopping once the bound falls below the best ratio found.

`reference_decontaminate` is the definition run pair by pair (plain LCS dynamic programming);
the tests and ``bench/decontamination.py`` check that both make the same decisions.

Command line::

    python -m mathdata.decontaminate TRAIN.jsonl EVAL.jsonl [EVAL2.jsonl ...] -o CLEAN.jsonl [ngram=13 lcs_ratio=0.6]

reads the files with `mathdata.loading.load_problems` (rows with ``problem`` or ``question``
and ``answer``; JSONL or Parquet), writes the kept training problems as `Problem.to_dict` rows
(which that loader reads back), and prints a summary and every removal with its reason to
stderr.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mathdata.loading import load_problems
from mathdata.problems import Problem
from mathrl.config import load_config, require

Rule = Literal["ngram", "lcs"]


@dataclass(frozen=True)
class DecontaminationConfig:
    """`ngram`: tokens in a shared n-gram that removes a training problem.
    `lcs_ratio`: the LCS ratio 2*LCS/(len_a+len_b) from which a training problem is removed."""

    ngram: int = 13
    lcs_ratio: float = 0.6

    def __post_init__(self) -> None:
        require(
            isinstance(self.ngram, int) and not isinstance(self.ngram, bool) and self.ngram >= 1,
            "ngram",
            f"must be an integer >= 1 (13 in the recipe), got {self.ngram!r}",
        )
        require(
            isinstance(self.lcs_ratio, (int, float)) and 0.0 < self.lcs_ratio <= 1.0,
            "lcs_ratio",
            f"must be in (0, 1] (0.6 in the recipe; 0 would remove everything), got {self.lcs_ratio!r}",
        )


@dataclass(frozen=True)
class Removal:
    """One removed training problem and why: the evaluation problem it matches, the rule, and
    `detail` (the shared n-gram, or the ratio with the LCS and both lengths)."""

    train_index: int
    eval_index: int
    rule: Rule
    detail: str


@dataclass(frozen=True)
class DecontaminationResult:
    """What `decontaminate` decided; indices refer to its `train` and `evaluation` arguments."""

    kept: tuple[int, ...]  # training indices kept, ascending
    removals: tuple[Removal, ...]  # one per removed training problem, by train_index
    lcs_pairs: int = 0  # (train, eval) pairs whose LCS was computed exactly

    def summary(self) -> str:
        total = len(self.kept) + len(self.removals)
        by_rule = {rule: sum(r.rule == rule for r in self.removals) for rule in ("ngram", "lcs")}
        return (
            f"kept {len(self.kept)} of {total} training problems; removed {len(self.removals)} "
            f"(ngram {by_rule['ngram']}, lcs {by_rule['lcs']})"
        )


# --- tokenization --------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"\\[^\W\d_]+|[^\W\d_]+|\d+(?:\.\d+)?|[-+*/=<>^|!%]")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_LATEX_ALIASES = {
    "\\dfrac": "\\frac",
    "\\tfrac": "\\frac",
    "\\dbinom": "\\binom",
    "\\tbinom": "\\binom",
    "\\le": "\\leq",
    "\\ge": "\\geq",
    "\\ne": "\\neq",
    "\\leqslant": "\\leq",
    "\\geqslant": "\\geq",
}
_LATEX_LAYOUT = frozenset(
    "\\left \\right \\big \\bigg \\displaystyle \\textstyle \\text \\textbf \\textit \\mathrm "
    "\\mbox \\quad \\qquad \\hspace \\limits".split()
)


def tokenize(text: str) -> list[str]:
    """The token sequence both rules compare (see the module docstring)."""
    text = _THOUSANDS_RE.sub("", unicodedata.normalize("NFKC", text).lower())
    tokens = (_LATEX_ALIASES.get(tok, tok) for tok in _TOKEN_RE.findall(text))
    return [tok for tok in tokens if tok not in _LATEX_LAYOUT]


def lcs_ratio(lcs: int, len_a: int, len_b: int) -> float:
    """2*LCS/(len_a+len_b); 0 for two empty sequences."""
    return 2 * lcs / (len_a + len_b) if len_a + len_b else 0.0


def _ngrams(tokens: Sequence[Any], n: int) -> Iterator[tuple[Any, ...]]:
    return zip(*(tokens[k:] for k in range(n)))


def _ngram_removal(train_index: int, eval_index: int, gram: Sequence[str]) -> Removal:
    return Removal(train_index, eval_index, "ngram", f'shares {len(gram)}-gram "{" ".join(gram)}"')


def _lcs_removal(train_index: int, eval_index: int, lcs: int, len_a: int, len_b: int, cfg: DecontaminationConfig) -> Removal:
    ratio = lcs_ratio(lcs, len_a, len_b)
    detail = f"LCS ratio {ratio:.3f} >= {cfg.lcs_ratio} (LCS {lcs} tokens; train {len_a}, eval {len_b} tokens)"
    return Removal(train_index, eval_index, "lcs", detail)


# --- LCS -----------------------------------------------------------------------------------


def lcs_length_dp(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Longest common subsequence length by the textbook O(len_a*len_b) dynamic program."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for k, y in enumerate(b):
            cur.append(prev[k] + 1 if x == y else max(prev[k + 1], cur[k]))
        prev = cur
    return prev[-1]


def _match_masks(b: Sequence[Any]) -> dict[Any, int]:
    """For each token, the bit set of its positions in `b`."""
    masks: dict[Any, int] = {}
    for pos, tok in enumerate(b):
        masks[tok] = masks.get(tok, 0) | (1 << pos)
    return masks


def _lcs_bitparallel(a: Sequence[Any], masks: dict[Any, int], len_b: int) -> int:
    # V holds one bit per position of b. After reading a prefix of a, bit pos is 0 exactly when
    # LCS(prefix, b[:pos+1]) = LCS(prefix, b[:pos]) + 1, so LCS(a, b) = len_b - popcount(V).
    full = (1 << len_b) - 1
    v = full
    for tok in a:
        m = masks.get(tok)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return len_b - v.bit_count()


def lcs_length(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Longest common subsequence length, bit-parallel (equal to `lcs_length_dp`)."""
    return _lcs_bitparallel(a, _match_masks(b), len(b))


# --- the fast path -------------------------------------------------------------------------

_TRAIN_BLOCK = 2048  # training problems per block of the count matrix: bounds its memory


def decontaminate(
    train: Sequence[str], evaluation: Sequence[str], cfg: DecontaminationConfig = DecontaminationConfig()
) -> DecontaminationResult:
    """Which training texts to keep, and why each of the others goes (see the module docstring)."""
    train_tokens = [tokenize(t) for t in train]
    eval_tokens = [tokenize(t) for t in evaluation]
    # Ids cover the evaluation vocabulary only; a training token no evaluation problem has can
    # never match, so all of those share the id -1.
    vocab: dict[str, int] = {}
    eval_ids = [[vocab.setdefault(tok, len(vocab)) for tok in toks] for toks in eval_tokens]
    train_ids = [[vocab.get(tok, -1) for tok in toks] for toks in train_tokens]

    removals = _ngram_removals(train_ids, eval_ids, train_tokens, cfg.ngram)
    pending = [i for i in range(len(train)) if i not in removals]
    lcs_removals, lcs_pairs = _lcs_removals(pending, train_ids, eval_ids, len(vocab), cfg)
    removals.update(lcs_removals)

    kept = tuple(i for i in range(len(train)) if i not in removals)
    return DecontaminationResult(kept, tuple(removals[i] for i in sorted(removals)), lcs_pairs)


def _ngram_removals(
    train_ids: Sequence[Sequence[int]], eval_ids: Sequence[Sequence[int]], train_tokens: Sequence[Sequence[str]], n: int
) -> dict[int, Removal]:
    first_eval: dict[tuple[int, ...], int] = {}  # n-gram -> lowest evaluation index that has it
    for j, ids in enumerate(eval_ids):
        for gram in _ngrams(ids, n):
            first_eval.setdefault(gram, j)
    removals = {}
    for i, ids in enumerate(train_ids):
        for pos, gram in enumerate(_ngrams(ids, n)):
            j = first_eval.get(gram)
            if j is not None:
                removals[i] = _ngram_removal(i, j, train_tokens[i][pos : pos + n])
                break
    return removals


def _lcs_removals(
    pending: Sequence[int],
    train_ids: Sequence[Sequence[int]],
    eval_ids: Sequence[Sequence[int]],
    vocab_size: int,
    cfg: DecontaminationConfig,
) -> tuple[dict[int, Removal], int]:
    """The ``lcs`` removals among the `pending` training indices, and how many exact LCS it took."""
    cand_pos, cand_eval, cand_bound = _lcs_candidates([train_ids[i] for i in pending], eval_ids, vocab_size, cfg.lcs_ratio)
    cand_train = np.asarray(pending, dtype=np.int64)[cand_pos]
    # By training problem, then best bound first (lowest evaluation index on equal bounds).
    order = np.lexsort((cand_eval, -cand_bound, cand_train))
    cand_train, cand_eval, cand_bound = cand_train[order], cand_eval[order].tolist(), cand_bound[order].tolist()
    masks: dict[int, dict[int, int]] = {}  # per evaluation problem, built on first use
    removals: dict[int, Removal] = {}
    lcs_pairs = 0
    for i, group in _groups(cand_train):
        a = train_ids[i]
        best: tuple[float, int, int] | None = None  # (ratio, eval index, LCS)
        for j, bound in zip(cand_eval[group], cand_bound[group]):
            if best is not None and bound < best[0]:
                break  # sorted by bound: nothing further can beat (or tie) the best
            if j not in masks:
                masks[j] = _match_masks(eval_ids[j])
            lcs = _lcs_bitparallel(a, masks[j], len(eval_ids[j]))
            lcs_pairs += 1
            ratio = lcs_ratio(lcs, len(a), len(eval_ids[j]))
            if ratio >= cfg.lcs_ratio and (best is None or ratio > best[0] or (ratio == best[0] and j < best[1])):
                best = (ratio, j, lcs)
        if best is not None:
            removals[i] = _lcs_removal(i, best[1], best[2], len(a), len(eval_ids[best[1]]), cfg)
    return removals, lcs_pairs


def _lcs_candidates(
    train_ids: Sequence[Sequence[int]], eval_ids: Sequence[Sequence[int]], vocab_size: int, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train position, eval index, ratio bound) of every pair whose bound 2*overlap/(len_a+len_b)
    reaches `threshold`; train positions index `train_ids`."""
    train_len = np.array([len(ids) for ids in train_ids], dtype=np.int64)
    eval_tok: list[np.ndarray] = []  # per evaluation problem: its distinct token ids ...
    eval_cnt: list[np.ndarray] = []  # ... and how often each occurs
    for ids in eval_ids:
        tok, cnt = np.unique(np.asarray(ids, dtype=np.int64), return_counts=True)
        eval_tok.append(tok)
        eval_cnt.append(cnt)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for start in range(0, len(train_ids), _TRAIN_BLOCK):
        block = train_ids[start : start + _TRAIN_BLOCK]
        counts = _count_matrix(block, vocab_size)  # [V_eval, block]
        block_len = train_len[start : start + len(block)]
        for j, (tok, cnt) in enumerate(zip(eval_tok, eval_cnt)):
            if tok.size == 0:
                continue
            overlap = np.minimum(counts[tok], cnt.astype(counts.dtype)[:, None]).sum(axis=0, dtype=np.int64)
            # Same float expression as lcs_ratio, so bound >= ratio holds after rounding too.
            bound = 2 * overlap / (block_len + len(eval_ids[j]))
            hits = np.flatnonzero(bound >= threshold)
            if hits.size:
                found.append((start + hits, np.full(hits.size, j, dtype=np.int64), bound[hits]))
    if not found:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.float64)
    return tuple(np.concatenate(parts) for parts in zip(*found))  # type: ignore[return-value]


def _count_matrix(block: Sequence[Sequence[int]], vocab_size: int) -> np.ndarray:
    """[vocab_size, len(block)] token counts; training tokens outside the vocabulary (-1) skipped.
    Token-major so that one evaluation problem's rows are a contiguous gather."""
    rows = np.fromiter((tok for ids in block for tok in ids), dtype=np.int64)
    cols = np.repeat(np.arange(len(block), dtype=np.int64), [len(ids) for ids in block])
    inside = rows >= 0
    cells, cnt = np.unique(rows[inside] * len(block) + cols[inside], return_counts=True)
    # Smallest integer type that holds the largest count: the matrix is read once per
    # evaluation problem, so its width is most of the cost.
    counts = np.zeros((vocab_size, len(block)), dtype=np.min_scalar_type(int(cnt.max(initial=0))))
    counts.flat[cells] = cnt
    return counts


def _groups(sorted_keys: np.ndarray) -> Iterator[tuple[int, slice]]:
    """(key, slice) for each run of equal keys in a sorted array."""
    if sorted_keys.size == 0:
        return
    starts = np.flatnonzero(np.diff(sorted_keys)) + 1
    bounds = [0, *starts.tolist(), sorted_keys.size]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        yield int(sorted_keys[lo]), slice(lo, hi)


# --- the definition, pair by pair ----------------------------------------------------------


def reference_decontaminate(
    train: Sequence[str], evaluation: Sequence[str], cfg: DecontaminationConfig = DecontaminationConfig()
) -> DecontaminationResult:
    """The same decisions as `decontaminate`, straight from the definition: every n-gram against
    every evaluation problem, then a dynamic-programming LCS for every pair. O(n_train * n_eval *
    len^2): for tests and the benchmark, not for use."""
    train_tokens = [tokenize(t) for t in train]
    eval_tokens = [tokenize(t) for t in evaluation]
    eval_grams = [set(_ngrams(toks, cfg.ngram)) for toks in eval_tokens]
    removals: list[Removal] = []
    for i, a in enumerate(train_tokens):
        removal = None
        for gram in _ngrams(a, cfg.ngram):
            holders = [j for j, grams in enumerate(eval_grams) if gram in grams]
            if holders:
                removal = _ngram_removal(i, holders[0], gram)
                break
        if removal is None:
            best: tuple[float, int, int] | None = None
            for j, b in enumerate(eval_tokens):
                lcs = lcs_length_dp(a, b)
                ratio = lcs_ratio(lcs, len(a), len(b))
                if ratio >= cfg.lcs_ratio and (best is None or ratio > best[0]):
                    best = (ratio, j, lcs)
            if best is not None:
                removal = _lcs_removal(i, best[1], best[2], len(a), len(eval_tokens[best[1]]), cfg)
        if removal is not None:
            removals.append(removal)
    removed = {r.train_index for r in removals}
    kept = tuple(i for i in range(len(train)) if i not in removed)
    return DecontaminationResult(kept, tuple(removals), lcs_pairs=len(train) * len(evaluation))


# --- problems and files --------------------------------------------------------------------


def decontaminate_problems(
    train: Sequence[Problem], evaluation: Sequence[Problem], cfg: DecontaminationConfig = DecontaminationConfig()
) -> tuple[list[Problem], list[Removal]]:
    """The kept training problems (in order) and the removals; indices refer to the inputs."""
    result = decontaminate([p.problem for p in train], [p.problem for p in evaluation], cfg)
    return [train[i] for i in result.kept], list(result.removals)


def _clip(text: str, width: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mathdata.decontaminate",
        description="Drop training problems that share a 13-gram with, or have an LCS ratio >= 0.6 to, "
        "an evaluation problem. Arguments of the form key=value set DecontaminationConfig fields "
        "(ngram=13 lcs_ratio=0.6).",
    )
    parser.add_argument("train", type=Path, metavar="TRAIN", help="training problems (.jsonl or .parquet)")
    parser.add_argument("evals", nargs="+", metavar="EVAL", help="evaluation problem sets, and any key=value overrides")
    parser.add_argument("-o", "--output", type=Path, required=True, help="where to write the kept training problems")
    args = parser.parse_args(argv)
    overrides = [item for item in args.evals if "=" in item]
    eval_paths = [Path(item) for item in args.evals if "=" not in item]
    if not eval_paths:
        parser.error("name at least one evaluation file")

    eval_where: list[str] = []  # "file[row] (id)" of each evaluation problem
    try:
        cfg = load_config(DecontaminationConfig, None, overrides)
        train = load_problems(args.train).problems
        evaluation: list[Problem] = []
        for path in eval_paths:
            problems = load_problems(path).problems
            evaluation += problems
            eval_where += [f"{path.name}[{k}] ({p.id})" for k, p in enumerate(problems)]
    except ValueError as err:  # ConfigError and DatasetError name the key or the file and line
        parser.error(str(err))

    result = decontaminate([p.problem for p in train], [p.problem for p in evaluation], cfg)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8") as f:
        for i in result.kept:
            f.write(json.dumps(train[i].to_dict(), ensure_ascii=False) + "\n")

    err = sys.stderr
    print(
        f"{args.train}: {result.summary()}, against {len(evaluation)} evaluation problems in "
        f"{', '.join(map(str, eval_paths))}; wrote {args.output}",
        file=err,
    )
    for r in result.removals:
        where = f"{args.train.name}[{r.train_index}] ({train[r.train_index].id})"
        print(f"{where} [{r.rule}] matches {eval_where[r.eval_index]}: {r.detail}", file=err)
        print(f"    train: {_clip(train[r.train_index].problem)}", file=err)
        print(f"    eval:  {_clip(evaluation[r.eval_index].problem)}", file=err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
