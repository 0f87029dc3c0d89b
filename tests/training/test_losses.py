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

    # Dot-product student and teacher (TAS-B's own models): scores are the raw dot products.
    loss = losses.TASBalancedLoss(Frozen(), Frozen(), inbatch_weight=0.5, similarity="dot", teacher_similarity="dot")
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
    without = losses.TASBalancedLoss(Frozen(), Frozen(), inbatch_weight=0.0, similarity="dot", teacher_similarity="dot")
    assert without.compute_loss_from_embeddings([q, p, n], [tq, tp, tn], labels).item() == pytest.approx(pairwise, rel=1e-5)


def test_margin_losses_score_a_cosine_student_at_scale_times_cosine_and_a_dot_student_raw() -> None:
    """Issue 19: cross-encoder logit margins (about +-20) were regressed onto bare cosine margins
    ([-2, 2]) for a cosine model. Pinned: cosine students score scale x cosine, dot students raw."""
    from sentence_transformers.sentence_transformer import losses as st_losses

    q = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    p = torch.tensor([[4.0, 3.0], [2.0, 2.0]])
    n = torch.tensor([[0.0, 5.0], [0.0, 3.0]])
    labels = torch.tensor([[6.0], [9.0]])  # teacher margins, cross-encoder scale

    def cos(a, b):  # noqa: ANN001, ANN202
        x, y = a.tolist(), b.tolist()
        return sum(i * j for i, j in zip(x, y)) / (sum(i * i for i in x) ** 0.5 * sum(j * j for j in y) ** 0.5)

    cosine_margins = [20 * (cos(q[i], p[i]) - cos(q[i], n[i])) for i in range(2)]  # [2.4, 14.142...]
    expected = sum((m - t) ** 2 for m, t in zip(cosine_margins, [6.0, 9.0])) / 2
    assert losses.PairScore("cosine", 20.0)(q, p).tolist() == pytest.approx([20 * cos(q[i], p[i]) for i in range(2)], rel=1e-6)
    assert losses.PairScore("dot", 20.0)(q, p).tolist() == pytest.approx([24.0, 2.0])

    class Frozen(torch.nn.Module):
        tokenizer = type("T", (), {"get_vocab": staticmethod(lambda: {})})()

    tas = losses.TASBalancedLoss(Frozen(), Frozen(), inbatch_weight=0.0)  # the defaults: cosine, scale 20
    assert tas.compute_loss_from_embeddings([q, p, n], [q, p, n], labels).item() == pytest.approx(expected, rel=1e-5)
    # sentence-transformers' MarginMSELoss with the score function training passes it: the same number.
    mse = st_losses.MarginMSELoss(Frozen(), similarity_fct=losses.PairScore("cosine", 20.0))
    assert mse.compute_loss_from_embeddings([q, p, n], labels[:, 0]).item() == pytest.approx(expected, rel=1e-5)
    dot_margins = [24.0 - 20.0, 2.0 - 0.0]
    dot = losses.TASBalancedLoss(Frozen(), Frozen(), inbatch_weight=0.0, similarity="dot")
    assert dot.compute_loss_from_embeddings([q, p, n], [q, p, n], labels).item() == pytest.approx(
        ((dot_margins[0] - 6) ** 2 + (dot_margins[1] - 9) ** 2) / 2, rel=1e-5)


def test_kl_distill_is_the_kl_of_the_student_softmax_from_the_teachers_over_the_candidates() -> None:
    """The registered kl-distill objective: KL(teacher || student) over [positive, negatives] per
    query, averaged over the batch; the student scores as it compares (20 x cosine here)."""
    from retrieval_cli.training import BiEncoderTrainConfig

    q = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    p = torch.tensor([[4.0, 3.0], [2.0, 2.0]])
    n1 = torch.tensor([[0.0, 5.0], [0.0, 3.0]])
    n2 = torch.tensor([[1.0, 1.0], [-1.0, 0.0]])
    teacher = torch.tensor([[9.0, 3.0, 1.0], [2.0, 2.5, -1.0]])  # scores, positive first

    def cos(a: list[float], b: list[float]) -> float:
        return sum(i * j for i, j in zip(a, b)) / (math.hypot(*a) * math.hypot(*b))

    def softmax(xs: list[float]) -> list[float]:
        top = max(xs)
        e = [math.exp(x - top) for x in xs]
        return [v / sum(e) for v in e]

    expected = 0.0
    for i in range(2):
        student = softmax([20 * cos(q[i].tolist(), c[i].tolist()) for c in (p, n1, n2)])
        target = softmax(teacher[i].tolist())
        expected += sum(t * (math.log(t) - math.log(s)) for t, s in zip(target, student)) / 2

    class Frozen(torch.nn.Module):
        tokenizer = type("T", (), {"get_vocab": staticmethod(lambda: {})})()

    config = BiEncoderTrainConfig(loss="kl-distill")
    loss = config.objective.build(Frozen(), config, "cosine", None)
    assert loss.compute_loss_from_embeddings([q, p, n1, n2], teacher).item() == pytest.approx(expected, rel=1e-5)


def test_plackett_luce_is_the_negative_log_likelihood_of_the_teachers_order_by_hand() -> None:
    """pl-distill (issue 36 item 4): -log P(teacher's order | student scores) under Plackett-Luce,
    computed by hand for a three-candidate row, the student scoring 20 x cosine."""
    from retrieval_cli.training import BiEncoderTrainConfig

    student = torch.tensor([[2.0, 1.0, 0.5], [0.0, 3.0, 1.0]])
    teacher = torch.tensor([[1.0, 5.0, 3.0], [9.0, 1.0, 4.0]])  # row 0 ranks 1, 2, 0; row 1 ranks 0, 2, 1

    def nll(s: list[float], order: list[int]) -> float:
        return sum(math.log(sum(math.exp(s[j]) for j in order[i:])) - s[order[i]] for i in range(len(order)))

    expected = (nll([2.0, 1.0, 0.5], [1, 2, 0]) + nll([0.0, 3.0, 1.0], [0, 2, 1])) / 2
    assert losses.plackett_luce(student, teacher).item() == pytest.approx(expected, rel=1e-6)
    # The teacher's own order is the likeliest: scores in that order give the lowest loss.
    assert losses.plackett_luce(teacher, teacher) < losses.plackett_luce(-teacher, teacher)

    q = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    p = torch.tensor([[4.0, 3.0], [2.0, 2.0]])
    n1 = torch.tensor([[0.0, 5.0], [0.0, 3.0]])

    def cos(a: list[float], b: list[float]) -> float:
        return sum(i * j for i, j in zip(a, b)) / (math.hypot(*a) * math.hypot(*b))

    scored = [[20 * cos(q[i].tolist(), c[i].tolist()) for c in (p, n1)] for i in range(2)]
    labels = torch.tensor([[2.0, 7.0], [5.0, 1.0]])  # row 0: the negative first; row 1: the positive first
    expected = (nll(scored[0], [1, 0]) + nll(scored[1], [0, 1])) / 2

    class Frozen(torch.nn.Module):
        tokenizer = type("T", (), {"get_vocab": staticmethod(lambda: {})})()

    config = BiEncoderTrainConfig(loss="pl-distill")
    loss = config.objective.build(Frozen(), config, "cosine", None)
    assert loss.compute_loss_from_embeddings([q, p, n1], labels).item() == pytest.approx(expected, rel=1e-5)


def test_focal_info_nce_weights_each_querys_term_by_hand_and_is_mnrl_at_gamma_0() -> None:
    """focal (issue 36 item 5, its first half): mean over queries of -(1 - p)^gamma log p, p the
    softmax probability of the query's positive among the batch's candidates."""
    import torch.nn.functional as F

    from retrieval_cli.training import BiEncoderTrainConfig

    matrix = torch.tensor([[3.0, 1.0, 0.0, 2.0], [0.5, 2.5, 1.0, 0.0]])  # 2 queries x (2 positives + 2 negatives)
    expected = 0.0
    for i, row in enumerate(matrix.tolist()):
        p = math.exp(row[i]) / sum(math.exp(v) for v in row)
        expected += -((1 - p) ** 2) * math.log(p) / 2
    assert losses.focal_info_nce(matrix, 2.0).item() == pytest.approx(expected, rel=1e-6)
    assert losses.focal_info_nce(matrix, 0.0).item() == pytest.approx(F.cross_entropy(matrix, torch.arange(2)).item(), rel=1e-6)

    class Frozen(torch.nn.Module):
        tokenizer = type("T", (), {"get_vocab": staticmethod(lambda: {})})()

    q, p, n = torch.tensor([[3.0, 4.0], [1.0, 0.0]]), torch.tensor([[4.0, 3.0], [2.0, 2.0]]), torch.tensor([[0.0, 5.0], [0.0, 3.0]])
    config = BiEncoderTrainConfig(loss="focal", focal_gamma=1.5, scale=10.0)
    loss = config.objective.build(Frozen(), config, "cosine", None)
    direct = losses.focal_info_nce(losses.scores(q, torch.cat([p, n]), "cosine", 10.0), 1.5)
    assert loss.compute_loss_from_embeddings([q, p, n]).item() == pytest.approx(direct.item(), rel=1e-6)
    assert "focal_gamma" in config.versioned() and "focal_gamma" not in BiEncoderTrainConfig(loss="mnrl").versioned()


def test_mixed_negatives_come_from_the_hardest_and_only_add_to_the_loss() -> None:
    """MoCHi-style mixing (issue 36 item 5, second half): each synthetic negative is a normalised
    convex mix of two of the anchor's hardest non-positive candidates, detached; adding them to
    the softmax can only raise the InfoNCE loss (gamma 0), and a mix of one vector with itself is it."""
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    anchors = F.normalize(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), dim=-1)
    candidates = F.normalize(torch.tensor([[1.0, 0.1, 0.0], [0.0, 1.0, 0.2], [0.9, 0.3, 0.1], [0.2, 0.9, 0.0], [0.0, 0.0, 1.0]]), dim=-1)
    mixed = losses.mixed_negatives(anchors, candidates, count=4, hardest=2, generator=gen)
    assert mixed.shape == (2, 4, 3) and not mixed.requires_grad
    assert torch.allclose(mixed.norm(dim=-1), torch.ones(2, 4))
    hardest = {0: [2, 3], 1: [3, 2]}  # by dot product, positives (0 for anchor 0, 1 for anchor 1) excluded
    for i in range(2):
        a, b = candidates[hardest[i][0]], candidates[hardest[i][1]]
        for v in mixed[i]:  # on the arc between the two hardest (or one of them): in their span, with non-negative weights
            w = torch.linalg.lstsq(torch.stack([a, b], dim=1), v[:, None]).solution.squeeze()
            assert torch.allclose(w[0] * a + w[1] * b, v, atol=1e-5) and (w >= -1e-5).all()
    same = losses.mixed_negatives(anchors, candidates[[0, 1, 2, 2, 2]], count=3, hardest=1)
    assert torch.allclose(same[0], candidates[2].expand(3, 3), atol=1e-6)

    class Frozen(torch.nn.Module):
        tokenizer = type("T", (), {"get_vocab": staticmethod(lambda: {})})()

    plain = losses.FocalInfoNCELoss(Frozen(), scale=20.0, gamma=0.0)
    mixing = losses.FocalInfoNCELoss(Frozen(), scale=20.0, gamma=0.0, mix=3)
    q, p, n = anchors, candidates[:2], candidates[2:4]
    assert mixing.compute_loss_from_embeddings([q, p, n]).item() > plain.compute_loss_from_embeddings([q, p, n]).item()
