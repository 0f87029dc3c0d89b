"""Random negatives: uniform corpus draws (STAR keeps them beside hard ones); no ranking, so no
window, score filter or false-negative estimate applies."""

from __future__ import annotations

import random as random_module

from retrieval_cli.mining.candidate import random_candidates
from retrieval_cli.mining.strategies.registry import Offer, Pool, Strategy, register


def drawn_pool(offer: Offer, ranking: str | None, count: int, rng: random_module.Random) -> Pool:
    return Pool(list(random_candidates(offer.doc_ids, count, offer.avoid, rng)), None, estimated=False)


RANDOM = register(Strategy("random", "uniform corpus draws", drawn_pool))
