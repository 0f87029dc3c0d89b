"""SimANS negatives (Zhou et al., 2022, "SimANS: Simple Ambiguous Negatives Sampling for Dense
Text Retrieval"): a first stage's candidates (``candidates``) drawn with probability proportional
to exp(-a (z - b)^2), z being how far a candidate's score lies from the positive's. The draw favours
ambiguous negatives, scored near the positive, over the easy tail far below it and the likely
false negatives scored above it. The paper weighs raw score differences; here z is the difference
in units of the query's candidate-score spread (their standard deviation), so one ``simans_a``
serves BM25, cosine and dot-product scores. Candidates are drawn without replacement
(Efraimidis-Spirakis keys, from the query's seeded stream); the window and score filters then
apply as for any ranked strategy, and the first survivors of the draw are kept."""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

from retrieval_cli.errors import InputError
from retrieval_cli.mining.strategies.registry import CANDIDATES, Offer, Pool, Strategy, ranked_pool, register


def weights(scores: list[float], positive: float, a: float, b: float) -> list[float]:
    """Each candidate's SimANS weight: exp(-a (z - b)^2), z = (score - positive) / spread."""
    spread = statistics.pstdev(scores) if len(scores) > 1 else 0.0
    spread = spread or 1.0  # one candidate, or all alike: differences as they are
    return [math.exp(-a * ((s - positive) / spread - b) ** 2) for s in scores]


def draw_order(weights: list[float], rng: random.Random) -> list[int]:
    """Positions in the order a weighted draw without replacement takes them: each gets the key
    log(u) / w (Efraimidis and Spirakis, 2006), largest first; a weight of 0 comes last."""
    keys = [(math.log(1.0 - rng.random()) / w if w > 0 else -math.inf, i) for i, w in enumerate(weights)]
    return [i for _, i in sorted(keys, key=lambda k: (-k[0], k[1]))]


def simans_pool(offer: Offer, ranking: str | None, count: int, rng: random.Random) -> Pool:
    ranked = ranked_pool(offer, ranking, count, rng)
    config = offer.config
    scores = [c.score if c.score is not None else 0.0 for c in ranked.candidates]
    order = draw_order(weights(scores, ranked.positive_score or 0.0, config.simans_a, config.simans_b), rng)
    return Pool([ranked.candidates[i] for i in order], ranked.positive_score, estimated=True, drawn=True)


def check(config: Any) -> None:
    if not (math.isfinite(config.simans_a) and config.simans_a > 0):
        raise InputError(f"simans-a must be a number > 0, got {config.simans_a}", field="simans_a")
    if not math.isfinite(config.simans_b):
        raise InputError(f"simans-b must be a finite number, got {config.simans_b}", field="simans_b")


SIMANS = register(Strategy(
    "simans", "a first stage's candidates (--candidates) drawn near the positive's score (SimANS; --simans-a, --simans-b)",
    simans_pool, ranking=CANDIDATES, uses=frozenset({"candidates", "simans_a", "simans_b"}), check=check,
))
