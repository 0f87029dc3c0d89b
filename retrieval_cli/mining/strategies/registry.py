"""The registry of mining strategies: what a strategy is, apart from the run that executes it.

A strategy names itself, says in one line what it mines, which first-stage ranking it reads (BM25,
dense, their fusion, or none), whether a cross-encoder re-scores its candidates, whether it
writes its own negatives (an LLM), which optional config fields it reads (the others stay out of
the negatives' version), and how it draws one query's candidates for the filters. The config, the
CLI's choices and help, the run, the records' export and the pipeline's cost estimate read this
registry, so a new strategy is one module that calls ``register``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from retrieval_cli.mining.candidate import Candidate
from retrieval_cli.registry import Registry

# Config fields only some strategies read; a strategy's ``uses`` names those it does.
OPTIONAL_FIELDS = frozenset({"candidates", "cross_encoder", "llm", "api_key_env", "llm_prompt", "llm_sampling", "llm_max_words",
                             "llm_min_words", "max_failures", "concurrency", "simans_a", "simans_b"})
CANDIDATES = "candidates"  # a strategy's ranking: the first stage the config's ``candidates`` names


@dataclass(frozen=True)
class Offer:
    """What one query offers a strategy: its first stages' hits and positives' scores, the
    cross-encoder's scores, the corpus ids, and what it must avoid."""

    query_id: str
    positives: list[str]
    hits: dict[str, dict[str, list[tuple[str, float]]]]  # ranking -> query id -> ranked (doc id, score)
    positive_scores: dict[str, dict[str, dict[str, float]]]  # ranking -> query id -> positive -> score
    cross_scores: dict[tuple[str, str], float]  # (query id, doc id) -> cross-encoder score
    doc_ids: Sequence[str]
    avoid: set[str]  # positives, judged relevant, already taken, the query's own id
    config: Any = None  # the MiningConfig: a strategy's own fields (SimANS's a and b)


@dataclass(frozen=True)
class Pool:
    """A strategy's candidates for one query, and the weakest positive's score in its scorer
    (None: nothing to compare, as for random draws). ``estimated``: its eligible candidates
    count toward the false-negative estimate (ranked strategies)."""

    candidates: list[Candidate]
    positive_score: float | None
    estimated: bool
    drawn: bool = False  # already in the order the strategy draws them: the first survivors are kept, whatever ``sampling`` says


@dataclass(frozen=True)
class Strategy:
    """One mining strategy and what it needs."""

    name: str
    summary: str  # one line: what it mines and where it comes from (the CLI's help, README)
    # (offer, ranking it reads, count, rng) -> Pool; None for a strategy that writes its negatives
    pool: Callable[[Offer, str | None, int, random.Random], Pool] | None
    # The first-stage ranking it reads: bm25, dense, hybrid, "candidates" (the one the config's
    # ``candidates`` names), or None (no ranking: random draws, generated texts).
    ranking: str | None = None
    rescored: bool = False  # a cross-encoder re-scores its ranking: its score is the one filters compare
    generated: bool = False  # writes its own negatives (an LLM): they bypass the filters
    uses: frozenset[str] = frozenset()  # optional config fields it reads
    check: Callable[[Any], None] = lambda config: None  # its fields in range (a MiningConfig), before any work

    @property
    def ranked(self) -> bool:
        """Its negatives have ranks (a window and best-first sampling apply)."""
        return self.ranking is not None

    def ranking_of(self, candidates: str | None) -> str | None:
        """The ranking it reads, given the config's ``candidates``."""
        return candidates if self.ranking == CANDIDATES else self.ranking


REGISTRY: Registry[Strategy] = Registry(
    "strategy", OPTIONAL_FIELDS, lambda name, known: f"unknown strategy {name!r}: use {known} or a mixture like bm25:3,random:1",
    field="strategy",
    check=lambda s: None if (s.pool is None) == s.generated else "a strategy draws a pool unless it writes its own negatives",
)
register, get = REGISTRY.register, REGISTRY.get


def names() -> tuple[str, ...]:
    """Every registered strategy's name, in registration order (the CLI lists them so)."""
    return REGISTRY.names()


def ranked_pool(offer: Offer, ranking: str | None, count: int, rng: random.Random) -> Pool:
    """A first stage's ranking as it is: rank, score, and the weakest positive's score by it."""
    assert ranking is not None
    ranked = offer.hits[ranking][offer.query_id]
    candidates = [Candidate(d, r, s, s, r) for r, (d, s) in enumerate(ranked, start=1)]
    return Pool(candidates, min(offer.positive_scores[ranking][offer.query_id][p] for p in offer.positives), estimated=True)


def help_text() -> str:
    """The CLI's --strategy help: every strategy's line, and mixtures."""
    return "; ".join(f"{s.name}: {s.summary}" for s in REGISTRY) + "; or a mixture with per-query counts such as bm25:3,random:1"
