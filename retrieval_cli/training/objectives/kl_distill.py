"""Listwise distillation: the KL divergence between the teacher's and the student's softmax over
[positive, negatives] (sentence-transformers' DistillKLDivLoss; RocketQAv2, Lin et al. 2020), the
student scoring as it compares (``scale`` x cosine for a cosine model)."""

from __future__ import annotations

from typing import Any

from retrieval_cli.training.objectives.registry import Objective, register


def _build(model: Any, config: Any, similarity: str, guide: Any) -> Any:  # noqa: ARG001 - the registry's signature
    from sentence_transformers.sentence_transformer import losses

    from retrieval_cli.training.losses import PairScore

    return losses.DistillKLDivLoss(model, similarity_fct=PairScore(similarity, config.scale))


KL_DISTILL = register(Objective(
    name="kl-distill", summary="KL between the teacher's and the student's softmax over the positive and its negatives",
    rows="n-tuple-teacher", build=_build, uses=frozenset({"scale"}), teacher=True,
))
