"""SimANS, added through the strategy registry: its weights by hand, its draw's frequencies
against them, and a mining run whose negatives come from its window in its draw's order."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from conftest import mine
from retrieval_cli import mining
from retrieval_cli.errors import InputError
from retrieval_cli.mining import records, strategies
from retrieval_cli.mining.strategies import simans
from retrieval_cli.store import Workspace


def test_weights_peak_at_the_positive_score_in_units_of_the_spread() -> None:
    scores, positive = [0.9, 0.7, 0.5, 0.3], 0.7
    spread = statistics.pstdev(scores)
    got = simans.weights(scores, positive, a=0.5, b=0.0)
    assert got == pytest.approx([math.exp(-0.5 * ((s - positive) / spread) ** 2) for s in scores])
    assert got[1] == 1.0 and got[0] == pytest.approx(got[2])  # symmetric about the positive
    assert simans.weights(scores, positive, a=0.5, b=-1.0)[2] > simans.weights(scores, positive, a=0.5, b=0.0)[2]  # b < 0 favours lower scores


def test_the_draw_picks_first_with_the_weights_probabilities() -> None:
    weights = [4.0, 2.0, 1.0, 1.0]
    firsts = [simans.draw_order(weights, random.Random(i))[0] for i in range(20_000)]
    for position, weight in enumerate(weights):
        assert firsts.count(position) / len(firsts) == pytest.approx(weight / sum(weights), abs=0.015)
    assert simans.draw_order([1.0, 0.0, 1.0], random.Random(3))[-1] == 1  # weight 0 comes last


def test_simans_mines_from_its_window_in_draw_order_and_is_versioned_by_its_fields(session_ws: Workspace, tiny) -> None:  # noqa: ANN001
    config = mining.MiningConfig(strategy="simans", range_min=2, range_max=30, num_negatives=3)
    result = mine(session_ws, tiny, config)
    rows = list(records.read(result.artifact))
    assert rows and all(n["strategy"] == "simans" and 2 < n["rank"] <= 30 for r in rows for n in r["negatives"])
    tops = sum(1 for r in rows if sorted(n["rank"] for n in r["negatives"]) == [3, 4, 5])
    assert tops < len(rows) / 2  # drawn near the positive's score, not the window's top three
    assert result.artifact.config["simans_a"] == 0.5 and result.artifact.config["candidates"] == "bm25"
    sharper = mine(session_ws, tiny, mining.MiningConfig(strategy="simans", range_min=2, range_max=30, num_negatives=3, simans_a=4.0))
    assert sharper.artifact.version != result.artifact.version
    assert "simans_a" not in mining.MiningConfig(strategy="bm25").versioned()  # other strategies' ids stand


def test_registry_refuses_bad_values_and_names_close_matches() -> None:
    with pytest.raises(InputError, match="simans-a must be a number > 0"):
        mining.MiningConfig(strategy="simans", simans_a=0.0).check()
    with pytest.raises(InputError, match="unknown strategy 'simas'.*did you mean simans"):
        mining.MiningConfig(strategy="simas")
    assert strategies.get("simans").ranking_of("dense") == "dense" and strategies.get("bm25").ranking_of("dense") == "bm25"
