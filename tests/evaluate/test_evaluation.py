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


def test_a_dataset_loaded_for_one_split_holds_it_alone_and_decides_self_hits_over_every_split(ws: Workspace) -> None:
    corpus = {i: {"title": "", "text": f"document {i}"} for i in ("1", "2", "3")}
    queries = {"1": "a", "2": "b", "x": "c"}
    # Train judges query 2 relevant to its own id: ids coincide (Cranfield), so nothing is dropped,
    # though the test split alone (query 1 a corpus id, judged elsewhere) would say ArguAna.
    cranfield_like = datasets.save(ws, datasets.Dataset(corpus, queries, {"test": {"1": {"3": 1}}, "train": {"2": {"2": 1}}}),
                                   "ids-coincide", {"source": "test"}).artifact
    one = datasets.load(cranfield_like, lazy_corpus=True, splits=("test",))
    assert one.qrels == {"test": {"1": {"3": 1}}} and one.queries == {"1": "a"}
    assert one.split_queries("test") == datasets.load(cranfield_like).split_queries("test")
    assert datasets.drop_self_hits(one, "auto") is False and datasets.drop_self_hits(datasets.load(cranfield_like), "auto") is False
    # Only train's queries are corpus ids, none judged to itself: ArguAna, though test's query "x" is no document.
    arguana_like = datasets.save(ws, datasets.Dataset(corpus, queries, {"test": {"x": {"1": 1}}, "train": {"2": {"3": 1}}}),
                                 "queries-are-documents", {"source": "test"}).artifact
    one = datasets.load(arguana_like, splits=("test",))
    assert one.queries == {"x": "c"} and datasets.drop_self_hits(one, "auto") is True
    assert datasets.drop_self_hits(datasets.load(arguana_like), "auto") is True
    with pytest.raises(InputError, match=r"has no split 'dev' \(splits: test, train\)"):
        datasets.load(arguana_like, splits=("dev",))


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


def test_a_fused_evaluation_equals_ir_measures_on_the_fused_run(ws: Workspace, tmp_path: Path) -> None:
    import ir_measures

    from retrieval_cli.index import fusion
    from retrieval_cli.report.table import describe

    corpus = {f"d{i}": {"title": "", "text": f"document {i}"} for i in range(1, 7)}
    qrels = {"q1": {"d1": 1, "d4": 1}, "q2": {"d5": 1}}
    data = datasets.save(ws, datasets.Dataset(corpus, {"q1": "one", "q2": "two"}, {"test": qrels}), "six", {"s": 1}).artifact
    first = {"q1": [("d1", 9.0), ("d2", 8.0), ("d3", 7.0)], "q2": [("d6", 3.0), ("d5", 2.0), ("d2", 1.0)]}
    second = {"q1": [("d4", 0.9), ("d3", 0.8), ("d1", 0.7)], "q2": [("d5", 0.5), ("d1", 0.4)]}
    made = []
    for tag, run in (("sparse", first), ("dense", second)):
        runs.write_trec(run, tmp_path / f"{tag}.run", tag)
        made.append(evaluation.evaluate(ws, dataset=data, run_file=tmp_path / f"{tag}.run").artifact)
    config = evaluation.EvaluateConfig(measures=["nDCG@10", "RR@10"], fusion="rrf")
    fused = evaluation.evaluate(ws, fuse=made, config=config).artifact
    assert fused.name == "sparse-test_dense-test-rrf" and fused.summary["ranking"] == "fused"
    # The same numbers as ir-measures on the fused TREC file, and that file is the fusion's ranking.
    direct = fusion.fuse([first, second], "rrf")
    assert runs.read_trec(fused.file("run.trec")) == {q: [(d, round(s, 6)) for d, s in hits] for q, hits in direct.items()}
    qrel_rows = [ir_measures.Qrel(q, d, r) for q, judged in qrels.items() for d, r in judged.items()]
    expected = ir_measures.calc_aggregate([ir_measures.nDCG @ 10, ir_measures.RR @ 10], qrel_rows, list(ir_measures.read_trec_run(str(fused.file("run.trec")))))
    got = evaluation.metrics(fused)["aggregate"]
    assert got["nDCG@10"] == pytest.approx(expected[ir_measures.nDCG @ 10], abs=1e-9)
    assert got["RR@10"] == pytest.approx(expected[ir_measures.RR @ 10], abs=1e-9)
    # By hand: q1 fuses to d1 (1/61 + 1/63), d3 (1/63 + 1/62), d4 (1/61), d2 (1/62): the relevant d1
    # and d4 at ranks 1 and 3; q2 to d5 (1/62 + 1/61) first. No ties, whose order trec_eval decides.
    q1 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert got["nDCG@10"] == pytest.approx((q1 + 1) / 2, abs=1e-6) and got["RR@10"] == pytest.approx(1.0)
    assert describe(ws, fused).label == "RRF k=60 of run:sparse + run:dense"
    # norm is versioned by its weight, rrf by its k; neither setting names an unfused evaluation.
    norm = evaluation.evaluate(ws, fuse=made, config=evaluation.EvaluateConfig(fusion="norm", fusion_weight=0.25)).artifact
    assert norm.version != fused.version and "rrf_k" not in norm.config and "fusion" not in made[0].config
    with pytest.raises(InputError, match="ranked split 'test', not 'dev'"):
        evaluation.evaluate(ws, fuse=made, config=evaluation.EvaluateConfig(split="dev"))
    with pytest.raises(InputError, match="give exactly one of an index, a run file or evaluations to fuse"):
        evaluation.evaluate(ws, fuse=made, run_file=tmp_path / "sparse.run")
    with pytest.raises(InputError, match="norm fuses exactly two rankings, got 3"):
        evaluation.evaluate(ws, fuse=made + made[:1], config=evaluation.EvaluateConfig(fusion="norm"))


def test_scoring_in_groups_equals_ir_measures_over_the_whole_run() -> None:
    """Aggregates from groups of queries equal one ir-measures call over the whole run, judged
    queries missing from the run count as zeros in both, and per-query values are the same."""
    import random

    import ir_measures

    rng = random.Random(5)
    docs = [f"d{i}" for i in range(30)]
    qrels = {f"q{i}": {d: rng.choice([0, 1, 2, 3]) for d in rng.sample(docs, 4)} for i in range(23)}
    run = {q: [(d, rng.random()) for d in rng.sample(docs, 12)] for q in list(qrels)[:20]}  # q20-q22 unanswered
    run["unjudged"] = [("d1", 1.0)]
    measures = evaluation.resolve_measures(["nDCG@10", "R@100", "RR@10", "AP"], relevance_level=2)
    scorer = evaluation.RunScorer(qrels, measures)
    groups = [["unjudged", "q0", "q1", "q2"], ["q3"], [f"q{i}" for i in range(4, 20)]]
    for group in groups:
        scorer.add({q: run[q] for q in group}, group)
    aggregate, per_query = scorer.result()
    qrel_rows = [ir_measures.Qrel(q, d, g) for q, judged in qrels.items() for d, g in judged.items()]
    scored = [ir_measures.ScoredDoc(q, d, s) for q, hits in run.items() for d, s in hits]
    direct = ir_measures.calc_aggregate(list(measures.values()), qrel_rows, scored)
    for label, measure in measures.items():
        assert aggregate[label] == pytest.approx(direct[measure], abs=1e-12)
    whole_aggregate, whole_per_query = evaluation.score_run(run, qrels, measures)
    assert per_query == whole_per_query and len({q for q, _, _ in per_query}) == 23
    assert aggregate == pytest.approx(whole_aggregate, abs=1e-12)


def test_an_index_evaluated_in_groups_writes_and_scores_what_one_group_does(ws: Workspace, tiny, monkeypatch) -> None:  # noqa: ANN001
    from retrieval_cli import index as indexing
    from retrieval_cli.evaluate import evaluation as module

    own = datasets.save(ws, datasets.load(tiny), "tiny", dict(tiny.config)).artifact
    bm25 = indexing.build_bm25(ws, own, indexing.BM25Config()).artifact
    whole = evaluation.evaluate(ws, index=bm25, config=evaluation.EvaluateConfig(measures=["nDCG@10", "RR@10"])).artifact
    monkeypatch.setattr(module, "GROUP_QUERIES", 3)
    grouped = evaluation.evaluate(ws, index=bm25, config=evaluation.EvaluateConfig(measures=["nDCG@10", "RR@10"]), force=True).artifact
    assert grouped.summary["ranking"] == "stored"  # the kept ranking read back three queries at a time
    assert len(datasets.load(tiny).split_qrels("test")) > 3
    fresh = Workspace(ws.root.parent / "fresh-groups")
    index = indexing.build_bm25(fresh, datasets.save(fresh, datasets.load(tiny), "tiny", dict(tiny.config)).artifact, indexing.BM25Config()).artifact
    searched = evaluation.evaluate(fresh, index=index, config=evaluation.EvaluateConfig(measures=["nDCG@10", "RR@10"])).artifact
    assert searched.summary["ranking"] == "retrieved"  # searched three queries at a time
    for art in (grouped, searched):
        assert art.file("run.trec").read_bytes() == whole.file("run.trec").read_bytes()
        assert art.file("per_query.tsv").read_bytes() == whole.file("per_query.tsv").read_bytes()
        assert evaluation.metrics(art)["aggregate"] == pytest.approx(evaluation.metrics(whole)["aggregate"], abs=1e-12)


@pytest.mark.parametrize("measure, why", [
    ("nDCG@0", "the cutoff must be a whole number >= 1, got 0"),  # trec_eval aborts the process on it
    ("alpha_nDCG@10", "no installed ir-measures provider computes it"),
    ("ERR_IA@10", "no installed ir-measures provider computes it"),
    ("SDCG@10", "invalid param max_rel (not given)"),
    ("BPM(T=1000,min_rel=1)@10", "invalid param"),
])
def test_a_measure_nothing_can_compute_is_refused_before_any_work(runner, tmp_path: Path, measure: str, why: str) -> None:  # noqa: ANN001
    """Issue 32 item 6: checked with ir-measures itself (parameters, providers), by `evaluate` and
    by a recipe's --dry-run, in one line with exit 2."""
    from retrieval_cli.cli import app

    ws = tmp_path / "ws"
    assert runner.invoke(app, ["data", "synth", "--name", "s", "--documents", "30", "--test-queries", "3", "--train-queries", "0", "-w", str(ws)]).exit_code == 0
    assert runner.invoke(app, ["index", "s", "-w", str(ws)]).exit_code == 0
    result = runner.invoke(app, ["evaluate", "indexes/s-bm25", "-m", measure, "-w", str(ws)])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert f"measure {measure!r}: {why}" in result.output
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: m\ndataset:\n  synth: {documents: 30, test_queries: 3, train_queries: 6}\n"
                      "strategies:\n  bm25: {strategy: bm25, num_negatives: 1}\n"
                      f"evaluate: {{measures: [\"{measure}\"]}}\n", encoding="utf-8")
    result = runner.invoke(app, ["pipeline", "run", str(recipe), "--dry-run", "-w", str(ws)])
    assert result.exit_code == 2 and f"measure {measure!r}: {why}" in " ".join(result.output.split()), result.output
    assert not (ws / "evaluations").exists() and not (ws / "pipelines").exists() and not any((ws / ".tmp").iterdir())
