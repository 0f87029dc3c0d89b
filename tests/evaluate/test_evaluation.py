from __future__ import annotations

import math
from pathlib import Path

import pytest

from retrieval_cli import data as datasets
from retrieval_cli import evaluate as evaluation
from retrieval_cli.errors import InputError
from retrieval_cli.evaluate import runs
from retrieval_cli.store import Workspace

QRELS = {"q1": {"d1": 2, "d3": 1}, "q2": {"d2": 1}}


def test_ndcg_and_recall_match_hand_computation() -> None:
    run = {"q1": [("d3", 3.0), ("d2", 2.0), ("d1", 1.0)], "q2": [("d2", 5.0), ("d1", 1.0)]}
    measures = evaluation.resolve_measures(["nDCG@10", "R@100"], relevance_level=1)
    aggregate, per_query = evaluation.score_run(run, QRELS, measures)
    # q1: DCG = 1/log2(2) + 2/log2(4) = 2; IDCG = 2/log2(2) + 1/log2(3)
    q1 = 2 / (2 + 1 / math.log2(3))
    assert aggregate["nDCG@10"] == pytest.approx((q1 + 1.0) / 2, abs=1e-6)
    assert aggregate["R@100"] == pytest.approx(1.0)
    assert ("q1", "nDCG@10", pytest.approx(q1, abs=1e-6)) in per_query
    assert aggregate["Judged@10"] == pytest.approx((2 / 3 + 1 / 2) / 2)  # Judged@10 always reported


def test_relevance_level_applies_to_binary_measures_only() -> None:
    run = {"q1": [("d3", 3.0), ("d2", 2.0)]}  # d1 (grade 2) not retrieved
    level1 = evaluation.resolve_measures(["R@100", "nDCG@10"], relevance_level=1)
    level2 = evaluation.resolve_measures(["R@100", "nDCG@10"], relevance_level=2)
    assert str(level2["R@100"]) == "R(rel=2)@100" and str(level2["nDCG@10"]) == "nDCG@10"
    qrels = {"q1": QRELS["q1"]}
    assert evaluation.score_run(run, qrels, level1)[0]["R@100"] == pytest.approx(0.5)
    assert evaluation.score_run(run, qrels, level2)[0]["R@100"] == pytest.approx(0.0)
    explicit = evaluation.resolve_measures(["R(rel=1)@100"], relevance_level=2)
    assert evaluation.score_run(run, qrels, explicit)[0]["R(rel=1)@100"] == pytest.approx(0.5)


def test_unknown_measure_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown measure 'nDGC@10'"):
        evaluation.resolve_measures(["nDGC@10"], 1)


@pytest.mark.parametrize("typed, meant", [
    ("ndcg@10", "nDCG@10"), ("nDCG@ten", "nDCG@10"), ("recal@100", "Recall@100"), ("rr@10", "RR@10"), ("r@1000", "R@1000"),
])
def test_a_mistyped_measure_gets_a_suggestion_that_parses(typed: str, meant: str) -> None:
    with pytest.raises(InputError, match=f"unknown measure '{typed}'; did you mean {meant}\\?"):
        evaluation.resolve_measures([typed], 1)
    assert evaluation.resolve_measures([meant], 1)  # the suggestion itself is a measure


def test_run_file_round_trip_and_errors(tmp_path: Path) -> None:
    run = {"q1": [("d1", 2.5), ("d2", 1.25)], "q2": [("d9", -0.5)]}
    path = tmp_path / "a.run"
    runs.write_trec(run, path, "tag")
    assert path.read_text().splitlines()[0] == "q1 Q0 d1 1 2.500000 tag"
    assert runs.read_trec(path) == run
    cases = [
        ("q1 Q0 d1 1 2.5\n", "bad.run:1: expected 6 columns"),
        ("q1 Q0 d1 1 2.5 t\nq1 Q0 d2 x 1 t\n", "bad.run:2 field 'rank': rank 'x' is not an integer"),
        ("q1 Q0 d1 1 NaN t\n", "bad.run:1 field 'score': score 'NaN' is not finite"),
        ("q1 Q0 d1 1 1 t\nq1 Q0 d1 2 0.5 t\n", "bad.run:2: document 'd1' appears twice for query 'q1'"),
        ("", "bad.run: empty run file"),
    ]
    for content, expected in cases:
        (tmp_path / "bad.run").write_text(content)
        with pytest.raises(InputError) as info:
            runs.read_trec(tmp_path / "bad.run")
        assert expected in str(info.value)


def test_self_hits_dropped() -> None:
    assert runs.drop_self_hits({"q1": [("q1", 9.0), ("d1", 1.0)]}) == {"q1": [("d1", 1.0)]}


def test_self_hit_policy() -> None:
    def make(qrels):  # noqa: ANN001, ANN202
        corpus = {i: {"title": "", "text": i} for i in ("1", "2", "3")}
        return datasets.Dataset(corpus, {"1": "a", "2": "b"}, {"test": qrels})

    # ArguAna/Quora: queries are corpus documents, never judged relevant to themselves
    assert datasets.drop_self_hits(make({"1": {"2": 1}, "2": {"3": 1}}), "auto")
    # Cranfield: ids merely coincide, and query 2 is judged relevant to document 2
    assert not datasets.drop_self_hits(make({"1": {"3": 1}, "2": {"2": 1}}), "auto")
    assert datasets.drop_self_hits(make({"2": {"2": 1}}), "drop")
    assert not datasets.drop_self_hits(make({"1": {"2": 1}}), "keep")
    disjoint = datasets.Dataset({"d": {"title": "", "text": "x"}}, {"q": "x"}, {"test": {"q": {"d": 1}}})
    assert not datasets.drop_self_hits(disjoint, "auto")


class _FakeCrossEncoder:
    """Scores a pair by the length of the document text: a known, checkable order."""

    def predict(self, pairs, batch_size, show_progress_bar):  # noqa: ANN001
        return [float(len(doc)) for _, doc in pairs]


def test_rerank_reorders_only_the_head() -> None:
    data = datasets.Dataset(
        corpus={f"d{i}": {"title": "", "text": "x" * (i + 1)} for i in range(5)},
        queries={"q": "x"}, qrels={"test": {"q": {"d0": 1}}},
    )
    run = {"q": [("d0", 5.0), ("d1", 4.0), ("d2", 3.0), ("d3", 2.0), ("d4", 1.0)]}
    out = evaluation.rerank(run, data.queries, data, _FakeCrossEncoder(), depth=3, batch_size=2)
    assert [d for d, _ in out["q"]] == ["d2", "d1", "d0", "d3", "d4"]
    scores = [s for _, s in out["q"]]
    assert scores == sorted(scores, reverse=True)


def test_evaluate_run_file(ws: Workspace, beir_folder: Path, tmp_path: Path) -> None:
    dataset = datasets.import_beir(ws, beir_folder, "toy").artifact
    path = tmp_path / "mine.run"
    path.write_text("q1 Q0 d3 1 3 t\nq1 Q0 d2 2 2 t\nq1 Q0 d1 3 1 t\nq2 Q0 q2 1 9 t\nq2 Q0 d2 2 5 t\nqX Q0 d1 1 1 t\n")
    art = evaluation.evaluate(ws, dataset=dataset, run_file=path, config=evaluation.EvaluateConfig(self_hits="drop")).artifact
    metrics = evaluation.metrics(art)
    q1 = 2 / (2 + 1 / math.log2(3))
    assert metrics["aggregate"]["nDCG@10"] == pytest.approx((q1 + 1) / 2, abs=1e-6)  # self hit q2 dropped
    assert "q2 Q0 q2" not in art.file("run.trec").read_text()
    kept = evaluation.evaluate(ws, dataset=dataset, run_file=path, config=evaluation.EvaluateConfig(self_hits="keep")).artifact
    assert evaluation.metrics(kept)["aggregate"]["nDCG@10"] < metrics["aggregate"]["nDCG@10"]
    assert set(evaluation.per_query(art)["nDCG@10"]) == {"q1", "q2"}
    with pytest.raises(InputError, match="give exactly one"):
        evaluation.evaluate(ws, dataset=dataset)


def test_two_labels_for_one_measure_both_get_its_value() -> None:
    run = {"q1": [("d3", 3.0), ("d2", 2.0)]}
    measures = evaluation.resolve_measures(["R@100", "R(rel=1)@100"], relevance_level=1)
    aggregate, per_query = evaluation.score_run(run, {"q1": QRELS["q1"]}, measures)
    assert aggregate["R@100"] == aggregate["R(rel=1)@100"] == pytest.approx(0.5)
    assert ("q1", "R(rel=1)@100", pytest.approx(0.5)) in per_query and ("q1", "R@100", pytest.approx(0.5)) in per_query


def test_new_measures_score_the_stored_ranking_without_retrieving(ws: Workspace, tiny, monkeypatch) -> None:  # noqa: ANN001
    """A second evaluate of the same index and split with other measures opens no searcher, and
    its numbers equal a fresh retrieval's (the stored ranking keeps full-precision scores)."""
    from retrieval_cli import index as indexing
    from retrieval_cli.evaluate import evaluation as module

    own = datasets.save(ws, datasets.load(tiny), "tiny", dict(tiny.config)).artifact
    bm25 = indexing.build_bm25(ws, own, indexing.BM25Config()).artifact
    first = evaluation.evaluate(ws, index=bm25, config=evaluation.EvaluateConfig(measures=["nDCG@10"])).artifact
    assert first.summary["ranking"] == "retrieved"

    def no_search(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("retrieved again")

    monkeypatch.setattr(module, "open_searcher", no_search)
    again = evaluation.evaluate(ws, index=bm25, config=evaluation.EvaluateConfig(measures=["RR@10", "P@5", "nDCG@10"])).artifact
    assert again.summary["ranking"] == "stored" and again.version != first.version
    assert again.summary["metrics"]["nDCG@10"] == first.summary["metrics"]["nDCG@10"]
    assert again.file("run.trec").read_bytes() == first.file("run.trec").read_bytes()
    monkeypatch.undo()
    fresh = Workspace(ws.root.parent / "fresh")  # a workspace with no stored ranking retrieves
    index = indexing.build_bm25(fresh, datasets.save(fresh, datasets.load(tiny), "tiny", dict(tiny.config)).artifact, indexing.BM25Config()).artifact
    direct = evaluation.evaluate(fresh, index=index, config=evaluation.EvaluateConfig(measures=["RR@10", "P@5"])).artifact
    assert direct.summary["ranking"] == "retrieved"
    assert direct.summary["metrics"] == {k: again.summary["metrics"][k] for k in direct.summary["metrics"]}
