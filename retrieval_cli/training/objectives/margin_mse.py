"""MarginMSELoss: regress the student's positive-minus-negative score margins onto a teacher's
(Hofstätter et al. 2020; sentence-transformers), scored as the student compares."""

from __future__ import annotations

from typing import Any

from retrieval_cli.training.objectives.registry import Objective, register


def _build(model: Any, config: Any, similarity: str, guide: Any) -> Any:  # noqa: ARG001 - the registry's signature
    from sentence_transformers.sentence_transformer import losses

    from retrieval_cli.training.losses import PairScore

    return losses.MarginMSELoss(model, similarity_fct=PairScore(similarity, config.scale))


MARGIN_MSE = register(Objective(
    name="margin-mse", summary="the teacher's positive-minus-negative margins, regressed (Margin-MSE)",
    rows="n-tuple-scores", build=_build, uses=frozenset({"scale"}), teacher=True,
))
