"""The filters, in their fixed order, and the choice among the candidates that survive them.

Each dropped candidate is counted once, under the first filter that drops it (``FILTERS``):
positive, window, max_score, absolute_margin, relative_margin, adaptive_margin, judged_relevant, self,
duplicate (and ``judge``, which ``mining.judge`` applies to what selection kept).
Candidates that pass the first five are *eligible*; the false-negative estimate is read off them.
Random streams are seeded per (seed, strategy, query), so results never depend on chunking or
query order.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from retrieval_cli.mining.candidate import Candidate, random_candidates
from retrieval_cli.mining.config import MiningConfig

__all__ = ["Candidate", "QueryContext", "Selection", "positives_of", "query_rng", "random_candidates", "relative_threshold", "select", "spread_of"]


@dataclass
class QueryContext:
    """What the filters need to know about one query."""

    query_id: str | None  # the query's own id where self hits are dropped, else None
    positives: set[str]
    judged_relevant: set[str]  # any positive grade in any split
    positive_score: float | None  # weakest positive's score in the strategy's scorer
    spread: float | None = None  # standard deviation of the strategy's candidate scores (adaptive margin)


@dataclass
class Selection:
    kept: list[Candidate]
    eligible: int  # candidates that passed filters 1-5
    eligible_judged_relevant: int
    # The same sampling without exclusion by judgment: how many it picks, and how many of those
    # the qrels judge relevant. Their ratio is the false-negative rate the exclusion prevented.
    unexcluded: int = 0
    unexcluded_relevant: int = 0


def relative_threshold(positive: float, margin: float) -> float:
    """The score at and above which a candidate is dropped: the positive moved down by margin·|positive|.

    ``pos * (1 - r)`` would move a negative positive score *up*, letting through candidates that
    outscore the positive; subtracting ``r * |pos|`` keeps the threshold below it in both cases.
    """
    return positive - margin * abs(positive)


def select(
    candidates: Iterable[Candidate],
    context: QueryContext,
    config: MiningConfig,
    count: int,
    taken: set[str],
    rng: random.Random,
    dropped: Counter,
    sampling: str | None = None,
) -> Selection:
    """Apply the filters in the module's order and pick ``count`` negatives (top or random:
    ``config.sampling``, unless ``sampling`` says otherwise for a strategy that draws its own order)."""
    sampling = sampling or config.sampling
    pool: list[Candidate] = []
    shadow: list[Candidate] = []  # the pool as it would be without exclusion by judgment
    eligible = eligible_relevant = 0
    pos = context.positive_score
    for cand in candidates:
        score = cand.score
        if cand.doc_id in context.positives:
            reason = "positive"
        elif cand.rank is not None and not config.range_min < cand.rank <= config.range_max:
            reason = "window"
        elif config.max_score is not None and score is not None and score > config.max_score:
            reason = "max_score"
        elif config.absolute_margin is not None and score is not None and pos is not None and score >= pos - config.absolute_margin:
            reason = "absolute_margin"
        elif config.relative_margin is not None and score is not None and pos is not None and score >= relative_threshold(pos, config.relative_margin):
            reason = "relative_margin"
        elif (config.adaptive_margin is not None and score is not None and pos is not None and context.spread
              and score >= pos - config.adaptive_margin * context.spread):
            reason = "adaptive_margin"
        else:
            reason = ""
        if not reason:
            eligible += 1
            relevant = cand.doc_id in context.judged_relevant
            eligible_relevant += relevant
            if cand.doc_id != context.query_id and cand.doc_id not in taken:
                shadow.append(cand)  # what exclusion by judgment alone removes from the pool
            if relevant:
                reason = "judged_relevant"
            elif cand.doc_id == context.query_id:
                reason = "self"
            elif cand.doc_id in taken:
                reason = "duplicate"
        if reason:
            dropped[reason] += 1
        else:
            pool.append(cand)
    shadow_rng = random.Random()
    shadow_rng.setstate(rng.getstate())  # the same draw the real pool gets, without changing it
    kept = _sample(pool, count, sampling, rng)
    unexcluded = _sample(shadow, count, sampling, shadow_rng)
    unexcluded_relevant = sum(1 for c in unexcluded if c.doc_id in context.judged_relevant)
    return Selection(kept, eligible, eligible_relevant, len(unexcluded), unexcluded_relevant)


def _sample(pool: list[Candidate], count: int, sampling: str, rng: random.Random) -> list[Candidate]:
    """``count`` candidates: the first ones (top) or a uniform draw kept in rank order (random)."""
    if sampling == "random" and len(pool) > count:
        return [pool[i] for i in sorted(rng.sample(range(len(pool)), count))]
    return pool[:count]


def spread_of(candidates: list[Candidate]) -> float | None:
    """The standard deviation of the candidates' scores (None with fewer than two scored): the
    unit of a query's adaptive margin, so one K serves BM25, cosine and dot-product scores."""
    scored = [c.score for c in candidates if c.score is not None]
    return statistics.pstdev(scored) if len(scored) > 1 else None


def query_rng(seed: int, strategy: str, query_id: str) -> random.Random:
    # Seeded per (seed, strategy, query): results never depend on chunking or query order.
    return random.Random(f"{seed}/{strategy}/{query_id}")


def positives_of(qid: str, judged: dict[str, int], level: int, config: MiningConfig) -> list[str]:
    """The query's training positives: every document at or above the relevance level, or, with
    ``max_positives``, that many drawn (seeded) from the highest grades. The rest stay judged
    relevant, so they are excluded as negatives and show up in the false-negative estimate."""
    relevant = sorted(d for d, g in judged.items() if g >= level)
    if config.max_positives is None or len(relevant) <= config.max_positives:
        return relevant
    shuffled = relevant[:]
    query_rng(config.seed, "positives", qid).shuffle(shuffled)
    shuffled.sort(key=lambda d: -judged[d])  # stable: random order within a grade
    return sorted(shuffled[:config.max_positives])
