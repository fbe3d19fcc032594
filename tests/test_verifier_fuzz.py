"""Adversarial model outputs through the verifier pool: 350 of the strings the fuzz drill
(`bench/drills/verifier_fuzz.py`, 10,000 of them) uses, every category represented. Each
gets a verdict, none hangs past the timeout, no payload runs, and no attack on its own is
ever judged correct."""

import time
from collections import Counter

from rewards.verifier import BatchVerifier, VerifierConfig
from tests.adversarial import CATEGORIES, ORDINARY, adversarial_pairs

TIMEOUT_S = 3.0


def test_adversarial_outputs_get_verdicts_quickly_and_run_nothing(tmp_path):
    marker = tmp_path / "INJECTED"
    pairs = list(adversarial_pairs(50 * len(CATEGORIES), seed=7, marker=marker))
    assert Counter(category for category, _, _ in pairs) == {c: 50 for c in CATEGORIES}
    with BatchVerifier(VerifierConfig(num_workers=2, timeout_s=TIMEOUT_S)) as verifier:
        start = time.perf_counter()
        verdicts = verifier.check([r for _, r, _ in pairs], [g for _, _, g in pairs])
        seconds = time.perf_counter() - start
    assert len(verdicts) == len(pairs)
    timeouts = sum(v.status == "timeout" for v in verdicts)
    assert seconds < (timeouts / 2 + 1) * (TIMEOUT_S + 1) + 60  # timeouts spread over 2 workers, no hang
    assert all(v.status in ("ok", "timeout", "error") for v in verdicts)
    assert all(v.score == 0.0 and not v.correct for v in verdicts if v.status != "ok")
    assert not marker.exists()
    for (category, response, gold), verdict in zip(pairs, verdicts):
        if verdict.correct:  # only when an ordinary answer or the gold itself is in the response
            assert gold in response or any(o in response for o in ORDINARY), (category, response[:80], gold)
