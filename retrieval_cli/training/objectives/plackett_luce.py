"""Plackett-Luce distillation (PLD; the listwise likelihood of ListMLE, Xia et al. 2008, with a
cross-encoder teacher's ranking as the target): the student learns the teacher's whole order of
[positive, negatives], not only the softmax ``kl-distill`` matches; scored as the student compares."""

from __future__ import annotations

from typing import Any

from retrieval_cli.training.objectives.registry import Objective, register


def _build(model: Any, config: Any, similarity: str, guide: Any) -> Any:  # noqa: ARG001 - the registry's signature
    from retrieval_cli.training.losses import PlackettLuceLoss

    return PlackettLuceLoss(model, scale=config.scale, similarity=similarity)


PLACKETT_LUCE = register(Objective(
    name="pl-distill", summary="the teacher's ranking of the positive and its negatives, by Plackett-Luce likelihood",
    rows="n-tuple-teacher", build=_build, uses=frozenset({"scale"}), teacher=True,
))
