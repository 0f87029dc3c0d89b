"""The adaptive margin (issue 36 item 3): a per-query margin, K x the spread of the query's own
candidate scores, counted like the other filters."""

from __future__ import annotations

import random
import statistics
from collections import Counter

import pytest

from conftest import mine
from retrieval_cli import mining
from retrieval_cli.errors import InputError
from retrieval_cli.mining.filters import Candidate, QueryContext, select, spread_of
from retrieval_cli.store import Workspace


def test_candidates_within_k_spreads_of_the_positive_are_dropped_by_hand() -> None:
    scores = [9.0, 8.0, 7.0, 5.0, 3.0, 1.0]
    candidates = [Candidate(f"d{i}", i + 1, s, s, i + 1) for i, s in enumerate(scores)]
    spread = statistics.pstdev(scores)
    assert spread_of(candidates) == pytest.approx(spread)
    positive = 8.5
    config = mining.MiningConfig(strategy="bm25", range_min=0, range_max=100, sampling="top", num_negatives=6, adaptive_margin=0.5)
    context = QueryContext(None, set(), set(), positive, spread)
    dropped: Counter = Counter()
    kept = select(candidates, context, config, 6, set(), random.Random(0), dropped).kept
    threshold = positive - 0.5 * spread  # 8.5 - 0.5 x 2.87 = 7.07
    assert [c.doc_id for c in kept] == [f"d{i}" for i, s in enumerate(scores) if s < threshold]
    assert dropped == Counter({"adaptive_margin": sum(1 for s in scores if s >= threshold)})


def test_the_adaptive_margin_versions_only_when_set_and_is_checked(session_ws: Workspace, tiny) -> None:  # noqa: ANN001
    assert "adaptive_margin" not in mining.MiningConfig().versioned()
    with pytest.raises(InputError, match="adaptive-margin must be >= 0"):
        mining.MiningConfig(adaptive_margin=-1.0).check()
    plain = mine(session_ws, tiny, mining.MiningConfig(strategy="bm25", range_min=0, range_max=30, num_negatives=3))
    margined = mine(session_ws, tiny, mining.MiningConfig(strategy="bm25", range_min=0, range_max=30, num_negatives=3, adaptive_margin=0.5))
    assert margined.artifact.version != plain.artifact.version
    assert margined.artifact.summary["dropped"]["adaptive_margin"] > 0 and plain.artifact.summary["dropped"]["adaptive_margin"] == 0
