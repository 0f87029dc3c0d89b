"""TAS-Balanced's dual-teacher loss: Margin-MSE on the pairwise teacher's margins plus an in-batch
term taught by a frozen bi-encoder (Hofstätter et al. 2021; ``training.losses``)."""

from __future__ import annotations

from typing import Any

from retrieval_cli.training.objectives.registry import Objective, register


def _build(model: Any, config: Any, similarity: str, guide: Any) -> Any:
    from retrieval_cli import models
    from retrieval_cli.training.losses import TASBalancedLoss

    return TASBalancedLoss(model, guide, config.inbatch_weight, config.scale, similarity, models.similarity(guide, config.guide))


TAS_B = register(Objective(
    name="tas-b", summary="Margin-MSE from the pairwise teacher plus an in-batch term from a frozen bi-encoder (TAS-B)",
    rows="n-tuple-scores", build=_build, uses=frozenset({"scale", "guide", "inbatch_weight"}), in_batch=True, teacher=True,
))
