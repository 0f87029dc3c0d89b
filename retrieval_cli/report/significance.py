"""Paired significance tests between systems, per query, and multiple-comparison corrections.

What a test is (paired t, randomization, Wilcoxon signed-rank over the same queries) is kept
apart from how it is computed: scipy computes every p-value; only Holm's and Bonferroni's
adjustments, which scipy does not offer, are written here (a few lines each, checked against hand
computations in the tests).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval_cli.errors import InputError

TESTS = ("t", "randomization", "wilcoxon")
CORRECTIONS = ("holm", "bonferroni", "none")


def check(test: str, correction: str) -> None:
    if test not in TESTS:
        raise InputError(f"test must be one of {', '.join(TESTS)}, got {test!r}", field="test")
    if correction not in CORRECTIONS:
        raise InputError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}", field="correction")


def paired_p(system: Sequence[float], baseline: Sequence[float], test: str = "t", *, seed: int = 13, resamples: int = 10_000) -> float:
    """Two-sided p-value that ``system`` and ``baseline`` (same queries, same order) differ in mean.

    Identical score lists give p = 1 (no test has anything to reject).
    """
    from scipy import stats

    check(test, "none")
    x = np.asarray(system, dtype=np.float64)
    y = np.asarray(baseline, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("paired tests need two score lists over the same queries")
    if len(x) < 2 or np.allclose(x, y, rtol=0.0, atol=1e-12):
        return 1.0
    if test == "t":
        return float(stats.ttest_rel(x, y).pvalue)
    if test == "wilcoxon":
        return float(stats.wilcoxon(x, y).pvalue)
    # Randomization: flip the sign of each query's difference (swap the two systems' scores).
    result = stats.permutation_test(
        (x, y), lambda a, b: np.mean(a - b), permutation_type="samples", n_resamples=resamples,
        alternative="two-sided", random_state=seed,
    )
    return float(result.pvalue)


def adjust(pvalues: Sequence[float], correction: str = "holm") -> list[float]:
    """Family-wise adjusted p-values (Holm step-down, Bonferroni, or unchanged)."""
    check("t", correction)
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if correction == "none" or m == 0:
        return p.tolist()
    if correction == "bonferroni":
        return np.minimum(1.0, p * m).tolist()
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        # Holm: the k-th smallest p times (m - k), never below an earlier adjusted value.
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()
