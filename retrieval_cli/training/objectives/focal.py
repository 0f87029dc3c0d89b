"""Focal InfoNCE (KaLM-Embedding's focal reweighting; Lin et al. 2017's focal loss): MNRL's
in-batch InfoNCE with each query's term weighted by (1 - p_positive)^gamma (``focal_gamma``), so
the queries the model already ranks right weigh little and the hard ones drive training."""

from __future__ import annotations

from typing import Any

from retrieval_cli.training.objectives.registry import Objective, register


def _build(model: Any, config: Any, similarity: str, guide: Any) -> Any:  # noqa: ARG001 - the registry's signature
    from retrieval_cli.training.losses import FocalInfoNCELoss

    return FocalInfoNCELoss(model, scale=config.scale, similarity=similarity, gamma=config.focal_gamma)


FOCAL = register(Objective(
    name="focal", summary="InfoNCE over the batch with each query weighted by (1 - p_positive)^gamma (KaLM's focal reweighting)",
    rows="n-tuple", build=_build, uses=frozenset({"scale", "focal_gamma"}), in_batch=True,
))
