"""CachedMultipleNegativesRankingLoss: MNRL with GradCache, so a large batch fits in memory; the
gradients are those of MNRL whatever the mini-batch size (sentence-transformers)."""

from __future__ import annotations

from typing import Any

from retrieval_cli.training.objectives.registry import Objective, contrast, register


def _build(model: Any, config: Any, similarity: str, guide: Any) -> Any:  # noqa: ARG001 - the registry's signature
    from sentence_transformers.sentence_transformer import losses

    return losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch_size, **contrast(config, similarity))


CACHED_MNRL = register(Objective(
    name="cached-mnrl", summary="MNRL with GradCache: large batches in small memory, the same gradients",
    rows="n-tuple", build=_build, uses=frozenset({"scale", "mini_batch_size"}), in_batch=True,
))
