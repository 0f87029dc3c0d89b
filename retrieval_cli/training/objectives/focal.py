"""Focal InfoNCE (KaLM-Embedding's focal reweighting; Lin et al. 2017's focal loss): MNRL's
in-batch InfoNCE with each query's term weighted by (1 - p_positive)^gamma (``focal_gamma``), so
the queries the model already ranks right weigh little and the hard ones drive training; with
``mix_negatives`` N, each query also meets N synthetic negatives mixed from its hardest in the
batch (MoCHi, Kalantidis et al. 2020; KaLM's online hard-negative mixing)."""

from __future__ import annotations

from typing import Any

from retrieval_cli.training.objectives.registry import Objective, register


def _build(model: Any, config: Any, similarity: str, guide: Any) -> Any:  # noqa: ARG001 - the registry's signature
    from retrieval_cli.training.losses import FocalInfoNCELoss

    return FocalInfoNCELoss(model, scale=config.scale, similarity=similarity, gamma=config.focal_gamma, mix=config.mix_negatives)


FOCAL = register(Objective(
    name="focal", summary="InfoNCE over the batch with each query weighted by (1 - p_positive)^gamma (KaLM's focal reweighting)",
    rows="n-tuple", build=_build, uses=frozenset({"scale", "focal_gamma", "mix_negatives"}), in_batch=True,
))
