from __future__ import annotations

import pytest

from retrieval_cli.errors import InputError
from retrieval_cli.index import fusion

# Three queries: q1 retrieved by both, q2 with one document shared, q3 by the first ranking only.
BM25 = {"q1": [("a", 9.0), ("b", 7.0), ("c", 1.0)], "q2": [("x", 3.0), ("y", 2.0)], "q3": [("m", 5.0)]}
DENSE = {"q1": [("c", 0.9), ("a", 0.8)], "q2": [("z", 0.7), ("y", 0.6), ("w", 0.1)]}


def test_rrf_equals_a_hand_computation() -> None:
    fused = fusion.fuse([BM25, DENSE], "rrf", rrf_k=60)
    # q1: a = 1/61 + 1/62, c = 1/63 + 1/61, b = 1/62.
    assert [d for d, _ in fused["q1"]] == ["a", "c", "b"]
    assert dict(fused["q1"]) == pytest.approx({"a": 1 / 61 + 1 / 62, "c": 1 / 63 + 1 / 61, "b": 1 / 62})
    # q2: y = 1/62 + 1/62 beats x = z = 1/61 (a tie: the smaller id first), then w = 1/63.
    assert fused["q2"] == [("y", pytest.approx(2 / 62)), ("x", pytest.approx(1 / 61)), ("z", pytest.approx(1 / 61)), ("w", pytest.approx(1 / 63))]
    assert fused["q3"] == [("m", pytest.approx(1 / 61))]  # only one ranking has it
    assert [d for d, _ in fusion.fuse([BM25, DENSE], "rrf", rrf_k=1)["q1"]] == ["a", "c", "b"]  # 1/2+1/3 vs 1/4+1/2
    assert len(fusion.fuse([BM25, DENSE], depth=2)["q2"]) == 2


def test_normalised_fusion_weighs_min_max_scaled_scores() -> None:
    fused = fusion.fuse([BM25, DENSE], "norm", weight=0.25)
    # q1 min-max: bm25 a 1, b 0.75, c 0; dense c 1, a 0. a = 0.25*1 + 0.75*0, c = 0.75, b = 0.25*0.75.
    assert dict(fused["q1"]) == pytest.approx({"a": 0.25, "c": 0.75, "b": 0.1875})
    assert fused["q1"][0][0] == "c"
    assert dict(fused["q3"]) == pytest.approx({"m": 0.25})  # one hit scales to 1 (Pyserini's convention)


def test_fusion_settings_are_checked() -> None:
    with pytest.raises(InputError, match="fusion must be one of rrf, norm"):
        fusion.fuse([BM25, DENSE], "max")
    with pytest.raises(InputError, match="norm fuses exactly two rankings, got 3"):
        fusion.fuse([BM25, DENSE, BM25], "norm")
    with pytest.raises(InputError, match="weight must be in"):
        fusion.fuse([BM25, DENSE], "norm", weight=1.5)
    with pytest.raises(InputError, match="hold no query"):
        fusion.fuse([{}, {"q1": []}])


def test_one_ranking_left_fuses_to_its_ranks_and_rrf_score_reads_ranks() -> None:
    alone = fusion.fuse([BM25, {"q1": []}], "rrf", rrf_k=60)
    assert alone["q1"] == [("a", pytest.approx(1 / 61)), ("b", pytest.approx(1 / 62)), ("c", pytest.approx(1 / 63))]
    assert fusion.rrf_score("c", [BM25["q1"], DENSE["q1"]]) == pytest.approx(1 / 63 + 1 / 61)
    assert fusion.rrf_score("zz", [BM25["q1"], DENSE["q1"]]) == 0.0
    assert fusion.rrf_score("c", [BM25["q1"], DENSE["q1"]]) == pytest.approx(dict(fusion.fuse([BM25, DENSE])["q1"])["c"])
