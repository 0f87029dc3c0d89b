"""Bi-encoder losses that sentence-transformers lacks, as ``torch.nn.Module`` losses its trainer takes.

- ``MannWhitneyLoss`` ("Optimizing What Matters: AUC-Driven Learning for Robust Neural
  Retrieval", Sheikholeslami et al. 2025): the Mann-Whitney U statistic is the AUC, and the loss
  is binary cross-entropy over ``s(pos) - s(neg)`` for *every* (positive pair, negative pair) of
  the batch's score matrix, across queries too, so scores separate globally (thresholdable),
  not only within each query as InfoNCE does.
- ``TASBalancedLoss`` (TAS-Balanced's dual-teacher supervision, Hofstätter et al. 2021):
  pairwise Margin-MSE against the mined teacher margins (cross-encoder scores in the negatives
  artifact) plus, weighted, Margin-MSE over in-batch negatives against a frozen bi-encoder
  teacher that scores every (query, in-batch passage) pair cheaply (ColBERT's role in the paper).

- ``FocalInfoNCELoss`` (KaLM-Embedding's focal reweighting): InfoNCE over the batch whose
  per-query loss is weighted by (1 - p_positive)^gamma, so queries the model already ranks
  right weigh little and the hard ones drive training (Lin et al.'s focal loss; gamma 0 is MNRL).
- ``PlackettLuceLoss`` (listwise distillation by Plackett-Luce, as ListMLE): the negative
  log-likelihood of the teacher's ranking of [positive, negatives] under a Plackett-Luce model
  of the student's scores, so the student learns the teacher's whole order, not only its softmax.

The score arithmetic lives in plain functions over tensors (``mann_whitney``, ``margin_mse``,
``in_batch_margins``, ``plackett_luce``, ``scores``) so tests check them against hand
computations without a model.

Scales. A bi-encoder's score is what its ``similarity_fn_name`` says, on one scale for every loss:
a cosine model scores ``scale x cosine`` (20 by default, MultipleNegativesRankingLoss's
temperature), a dot-product model the raw dot product. Margin losses regress cross-encoder logit
margins (teacher(pos) - teacher(neg), about +-20 for an MS MARCO cross-encoder) onto student
margins on that scale; a bare cosine margin lies in [-2, 2] and could never reach them. TAS-B's
in-batch teacher scores on its own model's scale the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def mann_whitney(scores: Tensor, positive: Tensor) -> Tensor:
    """Mean of -log σ(p - n) over every positive score p and negative score n of ``scores``.

    ``positive`` is a boolean mask the shape of ``scores``; every other entry is a negative.
    """
    pos = scores[positive]
    neg = scores[~positive]
    if pos.numel() == 0 or neg.numel() == 0:
        return scores.sum() * 0.0
    differences = pos.unsqueeze(1) - neg.unsqueeze(0)
    # softplus(-x) = -log σ(x) = BCE-with-logits(x, target 1), computed stably.
    return F.softplus(-differences).mean()


def margin_mse(student_margins: Tensor, teacher_margins: Tensor) -> Tensor:
    """Mean squared error between student and teacher score margins (Margin-MSE)."""
    return F.mse_loss(student_margins, teacher_margins.to(student_margins.dtype))


def in_batch_margins(scores: Tensor) -> tuple[Tensor, Tensor]:
    """Margins s(q_i, d_i) - s(q_i, d_j) for every in-batch passage d_j, j != i.

    ``scores`` is queries x passages where passage i is query i's positive and passages past the
    batch size are hard negatives of some query. Returns (margins, mask of the entries used): the
    row's own hard negatives are left to the pairwise term, as in TAS-B's in-batch teacher.
    """
    batch = scores.shape[0]
    columns = scores.shape[1]
    own = torch.zeros_like(scores, dtype=torch.bool)
    own[torch.arange(batch), torch.arange(batch)] = True
    # Hard-negative columns are laid out negative column by column: index batch*(k+1) + i is
    # query i's k-th negative.
    for start in range(batch, columns, batch):
        width = min(batch, columns - start)
        own[torch.arange(width), start + torch.arange(width)] = True
    positives = scores[torch.arange(batch), torch.arange(batch)].unsqueeze(1)
    return positives - scores, ~own


def focal_info_nce(scores: Tensor, gamma: float) -> Tensor:
    """Mean over rows of -(1 - p)^gamma log p, p the softmax probability of row i's positive,
    candidate i of the score matrix (InfoNCE's cross-entropy at gamma 0)."""
    rows = torch.arange(scores.shape[0], device=scores.device)
    log_p = scores.log_softmax(dim=1)[rows, rows]
    return (-(1 - log_p.exp()).pow(gamma) * log_p).mean()


def mixed_negatives(anchors: Tensor, candidates: Tensor, count: int, hardest: int = 8, generator: torch.Generator | None = None) -> Tensor:
    """MoCHi-style synthetic negatives (Kalantidis et al. 2020), ``count`` per anchor: convex
    mixes, with uniform weights, of two of its ``hardest`` negatives among the batch's candidates
    (candidate i is anchor i's positive), normalised, and detached as MoCHi's are: they sharpen
    the softmax without a gradient of their own. Shape: anchors x count x dim."""
    raw = anchors @ candidates.T
    rows = torch.arange(anchors.shape[0], device=anchors.device)
    raw[rows, rows] = float("-inf")  # never the positive
    top = raw.topk(min(hardest, candidates.shape[0] - 1), dim=1).indices  # anchors x hardest
    pick = torch.randint(0, top.shape[1], (anchors.shape[0], count, 2), device=anchors.device, generator=generator)
    first, second = candidates[top.gather(1, pick[..., 0])], candidates[top.gather(1, pick[..., 1])]
    weight = torch.rand(anchors.shape[0], count, 1, device=anchors.device, generator=generator)
    return F.normalize(weight * first + (1 - weight) * second, dim=-1).detach()


def plackett_luce(student: Tensor, teacher: Tensor) -> Tensor:
    """The mean over rows of -log P(the teacher's order | the student's scores) under Plackett-Luce:
    sum over ranks i of logsumexp(student scores of the items ranked i and below) - student score
    of the item ranked i, the items ordered by the teacher (ties: candidate order)."""
    order = torch.sort(teacher, dim=1, descending=True, stable=True).indices
    ranked = student.gather(1, order)
    below = torch.logcumsumexp(ranked.flip(1), dim=1).flip(1)
    return (below - ranked).sum(dim=1).mean()


def scores(a: Tensor, b: Tensor, similarity: str, scale: float) -> Tensor:
    """The a x b score matrix of a bi-encoder (sentence-transformers' own similarity functions):
    ``scale`` x cosine for a cosine model, the raw dot product for a dot-product one."""
    from sentence_transformers import util

    return util.dot_score(a, b) if similarity == "dot" else scale * util.cos_sim(a, b)


def pair_scores(a: Tensor, b: Tensor, similarity: str, scale: float) -> Tensor:
    """Row-wise scores s(a_i, b_i), on ``scores``' scale."""
    from sentence_transformers import util

    return util.pairwise_dot_score(a, b) if similarity == "dot" else scale * util.pairwise_cos_sim(a, b)


class PairScore:
    """``pair_scores`` as a similarity function (sentence-transformers' MarginMSELoss takes one)."""

    def __init__(self, similarity: str, scale: float) -> None:
        self.similarity, self.scale = similarity, scale

    def __call__(self, a: Tensor, b: Tensor) -> Tensor:
        return pair_scores(a, b, self.similarity, self.scale)


def _embed(model: nn.Module, features: Iterable[dict[str, Tensor]]) -> list[Tensor]:
    from sentence_transformers.base.losses.merged_forward import embed_columns

    return embed_columns(model, features)


class MannWhitneyLoss(nn.Module):
    """AUC loss over the batch's (anchor x all candidates) similarity matrix.

    Inputs: (anchor, positive) pairs or (anchor, positive, negative_1, ..., negative_n) tuples.
    Row i's positive is candidate i; every other candidate (other rows' positives, every hard
    negative) is a negative for anchor i. Scores are on the module's scale (``scores``: ``scale``
    x cosine, as in MultipleNegativesRankingLoss, or a dot model's raw dot product), so
    differences are in a range where σ is not flat.
    """

    def __init__(self, model: nn.Module, scale: float = 20.0, similarity: str = "cosine") -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.similarity = similarity

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        embeddings = _embed(self.model, sentence_features)
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        anchors = embeddings[0]
        candidates = torch.cat(embeddings[1:])
        matrix = scores(anchors, candidates, self.similarity, self.scale)
        positive = torch.zeros_like(matrix, dtype=torch.bool)
        rows = torch.arange(anchors.shape[0], device=matrix.device)
        positive[rows, rows] = True
        return mann_whitney(matrix, positive)

    def get_config_dict(self) -> dict[str, Any]:
        return {"scale": self.scale}


class TASBalancedLoss(nn.Module):
    """TAS-B dual supervision: pairwise Margin-MSE + ``inbatch_weight`` x in-batch Margin-MSE.

    Inputs: (anchor, positive, negative_1..n) with ``label`` = the n teacher margins
    teacher(pos) - teacher(neg_k) from the negatives artifact. ``teacher`` is a frozen bi-encoder
    that scores all in-batch (query, passage) pairs. Student and teacher each score by their own
    similarity on the module's one scale (``scores``): TAS-B's own dot-product models compare raw
    dot products, a cosine model ``scale`` x cosine, so the cross-encoder margins are reachable.
    """

    def __init__(
        self, model: nn.Module, teacher: nn.Module, inbatch_weight: float = 0.75, scale: float = 20.0,
        similarity: str = "cosine", teacher_similarity: str = "cosine",
    ) -> None:
        super().__init__()
        self.model = model
        self.teacher = teacher
        self.inbatch_weight = inbatch_weight
        self.scale = scale
        self.similarity = similarity
        self.teacher_similarity = teacher_similarity
        self.teacher.eval()
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)
        self.retokenize = model.tokenizer.get_vocab() != teacher.tokenizer.get_vocab()

    def _teacher_features(self, features: list[dict[str, Tensor]]) -> list[dict[str, Tensor]]:
        from sentence_transformers.util import batch_to_device

        if not self.retokenize:
            return [dict(f) for f in features]
        texts = [self.model.tokenizer.batch_decode(f["input_ids"], skip_special_tokens=True) for f in features]
        return [batch_to_device(self.teacher.preprocess(t), self.teacher.device) for t in texts]

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        features = list(sentence_features)
        student = _embed(self.model, features)
        with torch.no_grad():
            teacher = _embed(self.teacher, self._teacher_features(features))
        return self.compute_loss_from_embeddings(student, teacher, labels)

    def compute_loss_from_embeddings(self, student: list[Tensor], teacher: list[Tensor], labels: Tensor) -> Tensor:
        queries, positives, negatives = student[0], student[1], student[2:]
        if labels.dim() == 1:
            labels = labels.unsqueeze(1)
        own = pair_scores(queries, positives, self.similarity, self.scale)
        pairwise_student = torch.stack([own - pair_scores(queries, n, self.similarity, self.scale) for n in negatives], dim=1)
        loss = margin_mse(pairwise_student, labels.detach())
        if self.inbatch_weight and queries.shape[0] > 1:
            student_margins, used = in_batch_margins(scores(queries, torch.cat(student[1:]), self.similarity, self.scale))
            teacher_margins, _ = in_batch_margins(scores(teacher[0], torch.cat(teacher[1:]), self.teacher_similarity, self.scale))
            loss = loss + self.inbatch_weight * margin_mse(student_margins[used], teacher_margins[used].detach())
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        return {"inbatch_weight": self.inbatch_weight, "scale": self.scale, "similarity": self.similarity}


class PlackettLuceLoss(nn.Module):
    """Listwise distillation of a teacher's ranking: rows (anchor, positive, negative_1, ...) with
    the teacher's scores of [positive, negatives] as labels; the student's scores, on its scale
    (``scores``), are fitted to the teacher's order by ``plackett_luce``."""

    def __init__(self, model: nn.Module, scale: float = 20.0, similarity: str = "cosine") -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.similarity = similarity

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        return self.compute_loss_from_embeddings(_embed(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        anchors = embeddings[0]
        student = torch.stack([pair_scores(anchors, candidates, self.similarity, self.scale) for candidates in embeddings[1:]], dim=1)
        return plackett_luce(student, labels.to(student.dtype))

    def get_config_dict(self) -> dict[str, Any]:
        return {"scale": self.scale}


class FocalInfoNCELoss(nn.Module):
    """InfoNCE over (anchor, positive, negative_1, ...) rows like MultipleNegativesRankingLoss
    (every row's positive and negatives are candidates for every anchor), each anchor's loss
    weighted by (1 - p_positive)^gamma (``focal_info_nce``)."""

    def __init__(self, model: nn.Module, scale: float = 20.0, similarity: str = "cosine", gamma: float = 2.0, mix: int = 0) -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.similarity = similarity
        self.gamma = gamma
        self.mix = mix  # synthetic negatives per anchor (mixed_negatives); 0 none

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        return self.compute_loss_from_embeddings(_embed(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        anchors, candidates = embeddings[0], torch.cat(embeddings[1:])
        matrix = scores(anchors, candidates, self.similarity, self.scale)
        if self.mix:
            unit = self.similarity != "dot"  # a cosine model's vectors are compared normalised
            a, c = (F.normalize(anchors, dim=-1), F.normalize(candidates, dim=-1)) if unit else (anchors, candidates)
            synthetic = mixed_negatives(a.detach(), c.detach(), self.mix)
            extra = torch.einsum("nd,nkd->nk", a, synthetic) * (self.scale if unit else 1.0)
            matrix = torch.cat([matrix, extra], dim=1)  # appended: the positive stays candidate i
        return focal_info_nce(matrix, self.gamma)

    def get_config_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "gamma": self.gamma, "mix": self.mix}
