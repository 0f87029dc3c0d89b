"""What a strategy offers the filters: candidates (a document, the rank it is selected by, the
score the filters compare, and its first stage's own rank and score), and uniform random draws."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator, Sequence


@dataclass
class Candidate:
    """One candidate of one strategy: its rank in the order the strategy selects by."""

    doc_id: str
    rank: int | None
    score: float | None  # the score filters compare (cross-encoder score when there is one)
    first_stage_score: float | None = None
    first_stage_rank: int | None = None


def random_candidates(doc_ids: Sequence[str], count: int, avoid: set[str], rng: random.Random) -> Iterator[Candidate]:
    """Uniform corpus samples without replacement, skipping ``avoid`` (a few draws beyond ``count``)."""
    wanted = min(len(doc_ids), count + len(avoid))
    for i in rng.sample(range(len(doc_ids)), wanted):
        yield Candidate(doc_ids[i], None, None)
