"""The losses sentence-transformers lacks, checked against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from retrieval_cli.training import losses


def _bce(x: float) -> float:
    """-log sigmoid(x), written out."""
    return math.log(1.0 + math.exp(-x))


def test_mann_whitney_is_mean_bce_over_every_positive_negative_pair() -> None:
    scores = torch.tensor([[3.0, 1.0, 2.0], [0.5, 2.5, -1.0]])
    positive = torch.tensor([[True, False, False], [False, True, False]])
    pos, neg = [3.0, 2.5], [1.0, 2.0, 0.5, -1.0]
    expected = sum(_bce(p - n) for p in pos for n in neg) / 8
    assert losses.mann_whitney(scores, positive).item() == pytest.approx(expected, rel=1e-6)


def test_mann_whitney_loss_compares_across_queries_not_only_within() -> None:
    # Anchors and candidates as unit vectors: cosine similarities are the dot products below.
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    positives = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    negatives = torch.tensor([[0.8, 0.6], [0.0, 1.0]])  # one hard negative per row
    loss = losses.MannWhitneyLoss(model=None, scale=2.0)  # type: ignore[arg-type]
    value = loss.compute_loss_from_embeddings([anchors, positives, negatives]).item()
    # Scores (x2): row 1 vs [p1, p2, n1, n2] = [1, .6, .8, 0]; row 2 = [0, .8, .6, 1].
    pos = [2 * 1.0, 2 * 0.8]
    neg = [2 * 0.6, 2 * 0.8, 2 * 0.0, 2 * 0.0, 2 * 0.6, 2 * 1.0]
    expected = sum(_bce(p - n) for p in pos for n in neg) / 12
    assert value == pytest.approx(expected, rel=1e-5)
    # Global, not per query: moving query 2's negative from (0, 1) to (1, 0) swaps which query
    # it beats, leaving the pooled scores (and so the loss) the same, where a per-query loss
    # (row 2 no longer beaten by its own negative) would drop.
    swapped = loss.compute_loss_from_embeddings([anchors, positives, torch.tensor([[0.8, 0.6], [1.0, 0.0]])]).item()
    assert swapped == pytest.approx(value, rel=1e-6)
    per_query_before = sum(_bce(2 * 0.8 - 2 * n) for n in (0.0, 0.6, 1.0))
    per_query_after = sum(_bce(2 * 0.8 - 2 * n) for n in (0.0, 0.6, 0.0))
    assert per_query_after < per_query_before - 0.1


def test_mann_whitney_gradients_flow_to_embeddings() -> None:
    anchors = torch.nn.functional.normalize(torch.randn(3, 4), dim=1).requires_grad_()
    candidates = torch.nn.functional.normalize(torch.randn(3, 4), dim=1)
    losses.MannWhitneyLoss(model=None).compute_loss_from_embeddings([anchors, candidates]).backward()  # type: ignore[arg-type]
    assert anchors.grad is not None and anchors.grad.abs().sum() > 0


def test_in_batch_margins_leave_each_rows_own_documents_out() -> None:
    # Two queries; columns: p1, p2, n1 (query 1's negative), n2 (query 2's).
    scores = torch.tensor([[5.0, 1.0, 4.0, 2.0], [3.0, 6.0, 0.5, 5.5]])
    margins, used = losses.in_batch_margins(scores)
    assert used.tolist() == [[False, True, False, True], [True, False, True, False]]
    assert margins[used].tolist() == [5.0 - 1.0, 5.0 - 2.0, 6.0 - 3.0, 6.0 - 0.5]


def test_tas_b_loss_adds_weighted_in_batch_margin_mse_to_pairwise_margin_mse() -> None:
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    n = torch.tensor([[0.5, 0.5], [0.3, 0.1]])
    tq, tp, tn = q, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    labels = torch.tensor([[0.3], [0.5]])

    class Frozen(torch.nn.Module):
        tokenizer = type("T", (), {"get_vocab": staticmethod(lambda: {})})()

    loss = losses.TASBalancedLoss(Frozen(), Frozen(), inbatch_weight=0.5)
    value = loss.compute_loss_from_embeddings([q, p, n], [tq, tp, tn], labels).item()

    def dot(a, b):  # noqa: ANN001, ANN202
        return sum(x * y for x, y in zip(a.tolist(), b.tolist()))

    pairwise = ((dot(q[0], p[0]) - dot(q[0], n[0]) - 0.3) ** 2 + (dot(q[1], p[1]) - dot(q[1], n[1]) - 0.5) ** 2) / 2
    # In-batch: query 1 against p2 and n2, query 2 against p1 and n1; margins from the positive.
    student = [dot(q[0], p[0]) - dot(q[0], p[1]), dot(q[0], p[0]) - dot(q[0], n[1]),
               dot(q[1], p[1]) - dot(q[1], p[0]), dot(q[1], p[1]) - dot(q[1], n[0])]
    teacher = [dot(tq[0], tp[0]) - dot(tq[0], tp[1]), dot(tq[0], tp[0]) - dot(tq[0], tn[1]),
               dot(tq[1], tp[1]) - dot(tq[1], tp[0]), dot(tq[1], tp[1]) - dot(tq[1], tn[0])]
    inbatch = sum((s - t) ** 2 for s, t in zip(student, teacher)) / 4
    assert value == pytest.approx(pairwise + 0.5 * inbatch, rel=1e-5)
    without = losses.TASBalancedLoss(Frozen(), Frozen(), inbatch_weight=0.0)
    assert without.compute_loss_from_embeddings([q, p, n], [tq, tp, tn], labels).item() == pytest.approx(pairwise, rel=1e-5)
