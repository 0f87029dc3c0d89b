"""Paired tests equal scipy's, and Holm / Bonferroni equal hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from retrieval_cli.errors import InputError
from retrieval_cli.report import significance

RNG = np.random.default_rng(4)
BASE = RNG.uniform(0, 1, 40)
BETTER = np.clip(BASE + RNG.normal(0.08, 0.1, 40), 0, 1)


def test_t_and_wilcoxon_equal_scipy() -> None:
    assert significance.paired_p(BETTER, BASE, "t") == pytest.approx(stats.ttest_rel(BETTER, BASE).pvalue, rel=1e-12)
    assert significance.paired_p(BETTER, BASE, "wilcoxon") == pytest.approx(stats.wilcoxon(BETTER, BASE).pvalue, rel=1e-12)


def test_randomization_is_seeded_and_agrees_with_the_t_test_on_a_clear_difference() -> None:
    a = significance.paired_p(BETTER, BASE, "randomization", seed=1)
    assert a == significance.paired_p(BETTER, BASE, "randomization", seed=1)
    assert a < 0.01 and stats.ttest_rel(BETTER, BASE).pvalue < 0.01
    # On an unclear difference (t-test p about 0.15) the exact-in-the-limit randomization p is close.
    unclear = BASE + np.random.default_rng(9).normal(0.02, 0.08, 40)
    t = stats.ttest_rel(unclear, BASE).pvalue
    assert 0.05 < t < 0.5
    assert significance.paired_p(unclear, BASE, "randomization", seed=1) == pytest.approx(t, abs=0.03)


def test_identical_systems_give_p_one() -> None:
    assert significance.paired_p(BASE, BASE.copy(), "t") == 1.0
    assert significance.paired_p(BASE, BASE.copy(), "wilcoxon") == 1.0


def test_holm_and_bonferroni_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.5]
    # Holm: sorted 0.01, 0.03, 0.04, 0.5 times 4, 3, 2, 1 = 0.04, 0.09, 0.08 -> 0.09 (monotone), 0.5.
    assert significance.adjust(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert significance.adjust(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 1.0])
    assert significance.adjust(p, "none") == p


def test_unknown_test_or_correction_is_an_input_error() -> None:
    with pytest.raises(InputError, match="test must be one of t, randomization, wilcoxon"):
        significance.paired_p([1, 2], [1, 3], "sign")
    with pytest.raises(InputError, match="correction must be one of"):
        significance.adjust([0.1], "bh")
