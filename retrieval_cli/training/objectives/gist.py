"""GISTEmbedLoss: in-batch contrast whose candidates a frozen guide model ranks above the positive
are left out as likely false negatives (sentence-transformers)."""

from __future__ import annotations

from typing import Any

from retrieval_cli.training.objectives.registry import Objective, register


def _build(model: Any, config: Any, similarity: str, guide: Any) -> Any:  # noqa: ARG001 - the registry's signature
    from sentence_transformers.sentence_transformer import losses

    return losses.GISTEmbedLoss(model, guide)


GIST = register(Objective(
    name="gist", summary="in-batch contrast that drops candidates a frozen guide model ranks above the positive",
    rows="triplet", build=_build, uses=frozenset({"guide"}), in_batch=True,  # one hard negative per row
))
