"""The Mann-Whitney (AUC) loss: every positive above every candidate of the batch, by a smooth
pairwise surrogate (``training.losses``)."""

from __future__ import annotations

from typing import Any

from retrieval_cli.training.objectives.registry import Objective, register


def _build(model: Any, config: Any, similarity: str, guide: Any) -> Any:  # noqa: ARG001 - the registry's signature
    from retrieval_cli.training.losses import MannWhitneyLoss

    return MannWhitneyLoss(model, scale=config.scale, similarity=similarity)


MANN_WHITNEY = register(Objective(
    name="mw", summary="Mann-Whitney / AUC over the batch: each positive above every other candidate",
    rows="n-tuple", build=_build, uses=frozenset({"scale"}), in_batch=True,
))
