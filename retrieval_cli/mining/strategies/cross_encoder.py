"""Cross-encoder negatives (RocketQA's denoising): a first stage's candidates (``candidates``)
re-scored by a cross-encoder and ranked by its score (ties by first-stage rank); the filters
compare cross-encoder scores, and each negative keeps its first-stage rank."""

from __future__ import annotations

import random

from typing import Any

from retrieval_cli.errors import InputError
from retrieval_cli.mining.candidate import Candidate
from retrieval_cli.mining.strategies.registry import CANDIDATES, Offer, Pool, Strategy, register


def rescored_pool(offer: Offer, ranking: str | None, count: int, rng: random.Random) -> Pool:
    assert ranking is not None
    qid, ce = offer.query_id, offer.cross_scores
    ranked = offer.hits[ranking][qid]
    rescored = sorted(((d, s, r) for r, (d, s) in enumerate(ranked, start=1)), key=lambda item: (-ce[(qid, item[0])], item[2]))
    candidates = [Candidate(d, rank, ce[(qid, d)], s, first_rank) for rank, (d, s, first_rank) in enumerate(rescored, start=1)]
    return Pool(candidates, min(ce[(qid, p)] for p in offer.positives), estimated=True)


def check(config: Any) -> None:
    if not config.cross_encoder:
        raise InputError(
            "strategy cross-encoder needs --cross-encoder MODEL (a hub id such as "
            "cross-encoder/ms-marco-MiniLM-L6-v2, or a model trained with 'retrieval-cli train --kind cross-encoder')",
            field="cross_encoder",
        )


CROSS_ENCODER = register(Strategy(
    "cross-encoder", "a first stage's candidates (--candidates) re-ranked by a cross-encoder (--cross-encoder)", rescored_pool,
    ranking=CANDIDATES, rescored=True, uses=frozenset({"candidates", "cross_encoder"}), check=check,
))
