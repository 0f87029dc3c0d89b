"""MultipleNegativesRankingLoss (InfoNCE): each query against its positive, its hard negatives and
every other row's candidates in the batch (sentence-transformers)."""

from __future__ import annotations

from typing import Any

from retrieval_cli.training.objectives.registry import Objective, contrast, register


def _build(model: Any, config: Any, similarity: str, guide: Any) -> Any:  # noqa: ARG001 - the registry's signature
    from sentence_transformers.sentence_transformer import losses

    return losses.MultipleNegativesRankingLoss(model, **contrast(config, similarity))


MNRL = register(Objective(
    name="mnrl", summary="InfoNCE over the positive, the hard negatives and the batch's other candidates",
    rows="n-tuple", build=_build, uses=frozenset({"scale"}), in_batch=True,
))
