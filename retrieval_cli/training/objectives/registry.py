"""The registry of bi-encoder objectives: what a loss is, apart from how it is computed
(sentence-transformers' losses where it has them, ``training.losses`` where it does not).

An objective names itself, says which rows it trains on, which optional config fields it reads
(the others stay out of the trained model's version), whether it contrasts in-batch examples or
needs a teacher's scores, and builds its loss module. The config, the CLI's choices and help,
recipe checks and the trainer all read this registry, so a new loss is one module that calls
``register``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from retrieval_cli.registry import Registry

# Config fields only some objectives read; an objective's ``uses`` names those it does.
OPTIONAL_FIELDS = frozenset({"scale", "guide", "inbatch_weight", "mini_batch_size", "focal_gamma", "mix_negatives"})


@dataclass(frozen=True)
class Objective:
    """One bi-encoder loss and what it needs."""

    name: str
    summary: str  # one line: what it optimises and where it comes from (the CLI's help, README)
    rows: str  # the training rows it takes (a ``mining.records`` format)
    # (model, training config, similarity, guide) -> loss module; the config is training.config's
    # BiEncoderTrainConfig, which reads this registry (so it is not imported here).
    build: Callable[[Any, Any, str, Any], Any]
    uses: frozenset[str] = frozenset()  # optional config fields it reads
    in_batch: bool = False  # contrasts in-batch examples: needs batch-size >= 2
    teacher: bool = False  # needs a teacher's score on every negative

    @property
    def guided(self) -> bool:
        """Takes a second, frozen bi-encoder (``config.guide``)."""
        return "guide" in self.uses


REGISTRY: Registry[Objective] = Registry(
    "objective", OPTIONAL_FIELDS, lambda name, known: f"bi-encoder loss must be one of {known}, got {name!r}", field="loss",
)
register, get = REGISTRY.register, REGISTRY.get


def names() -> tuple[str, ...]:
    """Every registered objective's name, sorted."""
    return tuple(sorted(REGISTRY.names()))


def contrast(config: Any, similarity: str) -> dict[str, Any]:
    """How a contrastive loss scores: a cosine model ``scale`` x cosine, a dot-product model the
    raw dot product (sentence-transformers' MNRL takes ``dot_score`` at scale 1 for those)."""
    from sentence_transformers import util

    return {"scale": config.scale} if similarity == "cosine" else {"scale": 1.0, "similarity_fct": util.dot_score}
