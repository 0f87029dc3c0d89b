"""The benchmark harness measures what it says: both sides of a row compute the same thing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import harness as benchmarks
from tests.conftest import GOOD_CORPUS, GOOD_QRELS, GOOD_QUERIES, REPO, write_beir


def test_overlap_is_mean_jaccard_over_common_queries() -> None:
    a = {"q1": ["d1", "d2"], "q2": ["d3"], "q3": ["d9"]}
    b = {"q1": ["d2", "d4"], "q2": ["d3"]}
    assert benchmarks._overlap(a, b) == pytest.approx((1 / 3 + 1) / 2)
    # no negative on either side is agreement, one side's none against the other's some is not
    assert benchmarks._overlap({**a, "q4": [], "q5": []}, {**b, "q4": [], "q5": ["d1"]}) == pytest.approx((1 / 3 + 1 + 1 + 0) / 4)


def test_evaluate_row_sides_agree(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "b", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    run = tmp_path / "r.run"
    run.write_text("q1 Q0 d3 1 3.0 t\nq1 Q0 d2 2 2.0 t\nq1 Q0 d1 3 1.0 t\nq2 Q0 d1 1 1.0 t\n", encoding="utf-8")
    args = {"data": str(folder), "run": str(run), "work": str(tmp_path)}
    ours, direct = benchmarks.rows.evaluate_ours(args), benchmarks.rows.evaluate_direct(args)
    assert ours["values"]["nDCG@10"] == pytest.approx(direct["values"]["nDCG@10"])
    assert ours["values"]["R@100"] == pytest.approx(direct["values"]["R@100"]) == 0.5  # q2 finds nothing
    assert set(ours["values"]) == set(direct["values"]) == {"nDCG@10", "R@100", "Judged@10"}


@pytest.mark.slow
def test_a_forked_child_returns_what_a_fresh_one_does_and_its_failure_with_the_cause(tmp_path: Path) -> None:
    """The torch rows' children are forks of a preloaded forkserver: the same case returns the same
    values in either kind of child, with a peak of its own, and a failing case raises its own error."""
    folder = write_beir(tmp_path / "b", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    run = tmp_path / "r.run"
    run.write_text("q1 Q0 d3 1 3.0 t\nq1 Q0 d2 2 2.0 t\nq2 Q0 d1 1 1.0 t\n", encoding="utf-8")
    args = {"data": str(folder), "run": str(run)}
    forked = benchmarks.run_case("evaluate_ours", args, 1, tmp_path / "w", fork=True)
    fresh = benchmarks.run_case("evaluate_ours", args, 1, tmp_path / "w", fork=False)
    assert forked.extra["values"] == fresh.extra["values"] and set(forked.extra["values"]) == {"nDCG@10", "R@100", "Judged@10"}
    assert 0 < forked.peak_mb and len(forked.seconds) == 1
    with pytest.raises(RuntimeError, match=r"(?s)evaluate_ours failed.*no-such.run: cannot read file"):
        benchmarks.run_case("evaluate_ours", {**args, "run": str(tmp_path / "no-such.run")}, 1, tmp_path / "w", fork=True)


def test_markdown_reports_every_row_and_scaling_point() -> None:
    results = {
        "machine": {"cpus": "2", "platform": "Linux", "python": "3.11", "retrieval-cli": "0.1", "torch": "2", "sentence-transformers": "5",
                    "pyserini": "1.6", "faiss-cpu": "1", "ir-measures": "0.4"},
        "rows": [{"row": "BM25", "ours_s": 2.0, "direct_s": 1.6, "ratio": 1.25, "ours_mb": 900.0, "direct_mb": 800.0, "goal": "<= 1.15x", "note": ""}],
        "scaling": [
            {"stage": "dense index", "docs": 10000, "queries": 1000, "seconds": 1.0, "peak_mb": 600.0, "index_mb": 15.0},
            {"stage": "dense index", "docs": 100000, "queries": 1000, "seconds": 10.0, "peak_mb": 1500.0, "index_mb": 150.0},
            {"stage": "dense mining", "docs": 10000, "queries": 1000, "seconds": 3.0, "peak_mb": 700.0, "index_mb": None},
        ],
    }
    results["fits"] = [benchmarks.scaling.fit(results["scaling"], stage) for stage in benchmarks.scaling.STAGES]
    text = benchmarks.to_markdown(results, benchmarks.BenchConfig(), 60.0)
    assert "| BM25 | 2.00 | 1.60 | 1.250 | <= 1.15x | 900 / 800 |  |" in text
    assert "| dense mining | 10,000 | 1,000 | 3.00 | 700 | - | this one |" in text
    # Ten times the passages, ten times the seconds: 100 s per 1M passages, so MS MARCO's 8.8M take 14.7 min.
    assert "| dense index | 0.00 | 100.0 | 0.00 | 0.00 | 0% | 14.7 min | 88.9 |" in text


def test_a_run_keeps_the_rows_and_points_an_earlier_run_measured_and_it_did_not() -> None:
    """A default run (or --only) must not wipe the full curve's million-passage points or other rows."""
    def point(docs: int, seconds: float, run: str | None = None) -> dict:
        return {"stage": "dense index", "docs": docs, "queries": 1000, "seconds": seconds, "peak_mb": docs / 1000, "index_mb": None,
                **({"run": run} if run else {})}

    row = {"ours_s": 1.0, "direct_s": 1.0, "ratio": 1.0, "ours_mb": None, "direct_mb": None, "goal": "", "note": ""}
    previous = {
        "started": "2026-12-01 23:16 UTC",
        "rows": [{**row, "row": "BM25 old", "key": "bm25"}, {**row, "row": "Encode old", "key": "encode"}, {**row, "row": "keyless"}],
        "scaling": [point(10_000, 1.0), point(1_000_000, 100.0)],  # points written before runs were named
    }
    current = {"started": "2026-12-04 15:34 UTC", "rows": [{**row, "row": "BM25 new", "key": "bm25", "run": "2026-12-04 15:34 UTC"}],
               "scaling": [point(10_000, 2.0, "2026-12-04 15:34 UTC"), point(100_000, 20.0, "2026-12-04 15:34 UTC")], "machine": {}}
    merged = benchmarks.keep_earlier(previous, current)
    assert [(r["row"], r.get("run")) for r in merged["rows"]] == [("BM25 new", "2026-12-04 15:34 UTC"), ("Encode old", "2026-12-01 23:16 UTC")]
    assert [(p["docs"], p["seconds"], p["run"]) for p in merged["scaling"]] == [
        (10_000, 2.0, "2026-12-04 15:34 UTC"), (100_000, 20.0, "2026-12-04 15:34 UTC"), (1_000_000, 100.0, "2026-12-01 23:16 UTC")]
    fit = next(f for f in merged["fits"] if f["stage"] == "dense index")
    assert fit["points"] == 3 and fit["max_error"] > 0.01  # fitted over all three points, not this run's two (which fit exactly)
    assert benchmarks.keep_earlier(None, current) is current
    machine = {k: "-" for k in ("cpus", "platform", "python", "retrieval-cli", "torch", "sentence-transformers", "pyserini", "faiss-cpu", "ir-measures")}
    text = benchmarks.to_markdown({**merged, "machine": machine}, benchmarks.BenchConfig(), 60.0)
    assert "| Encode old | 1.00 | 1.00 | 1.000 |  | - | measured by the run of 2026-12-01 23:16 UTC, not this one |" in text
    assert "| dense index | 1,000,000 | 1,000 | 100.00 | 1000 | - | 2026-12-01 23:16 UTC |" in text
    assert "| dense index | 100,000 | 1,000 | 20.00 | 100 | - | this one |" in text


@pytest.mark.slow
def test_training_row_sides_train_the_same_model(tmp_path: Path) -> None:
    """Issue 21: the training row's direct SentenceTransformerTrainer script and `train` compute the
    same thing: the same loss at every step."""
    words = ["river", "mountain", "bridge", "valley", "forest", "desert", "harbour", "glacier", "canyon", "meadow"]
    corpus = "".join(
        f'{{"_id": "d{i}", "title": "the {words[i % 10]} of place {i}", "text": "notes on the {words[i % 10]} '
        f'and the {words[(i * 3) % 10]} near place number {i}"}}\n' for i in range(40)
    )
    folder = write_beir(tmp_path / "b", corpus, '{"_id": "q1", "text": "river"}\n', "query-id\tcorpus-id\tscore\nq1\td0\t1\n")
    args = {"data": str(folder), "prepared": str(tmp_path / "prepared"), "queries": 40}
    benchmarks.rows.train_prepare(args)  # once; each side copies it, as each child does
    ours = benchmarks.rows.train_ours({**args, "work": str(tmp_path / "ours")})
    direct = benchmarks.rows.train_direct({**args, "work": str(tmp_path / "direct")})
    assert len(ours["losses"]) == len(direct["losses"]) == 3  # 40 rows in batches of 16
    assert ours["losses"] == pytest.approx(direct["losses"], rel=1e-5)


def test_scaling_corpus_shares_one_corpus_file_and_each_query_comes_from_its_judged_passage(tmp_path: Path) -> None:
    from bench import scaling

    folders = scaling.write_corpus(tmp_path / "beir", docs=60, query_counts=[4, 10, 100])
    assert sorted(folders) == [4, 10]  # 100 queries over 60 passages: no collection's shape, left out
    assert (folders[4] / "corpus.jsonl").stat().st_ino == (folders[10] / "corpus.jsonl").stat().st_ino
    corpus = {d["_id"]: d["text"].split() for d in map(json.loads, (folders[10] / "corpus.jsonl").read_text().splitlines())}
    assert len(corpus) == 60 and all(len(words) == scaling.WORDS_PER_PASSAGE for words in corpus.values())
    for n, folder in folders.items():
        queries = {q["_id"]: q["text"].split() for q in map(json.loads, (folder / "queries.jsonl").read_text().splitlines())}
        assert len(queries) == 2 * n
        for split in ("train", "test"):
            rows = [line.split("\t") for line in (folder / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]]
            assert len(rows) == n
            for qid, doc, _ in rows:
                assert set(queries[qid]) <= set(corpus[doc])  # a query's words are its passage's
    small = (folders[4] / "queries.jsonl").read_text().splitlines()
    assert small[:4] == (folders[10] / "queries.jsonl").read_text().splitlines()[:4]  # the first n of the larger set


def test_scaling_fit_recovers_known_cost_terms_and_projects_them() -> None:
    """Points made from known terms (fixed, per passage, per query, per pair): the fit finds them,
    its error on the points is nil, and the MS MARCO projection is the terms at MS MARCO's sizes."""
    from bench import scaling
    from retrieval_cli.pipeline import cost

    def seconds(docs: int, queries: int) -> float:
        return 2.0 + 4e-6 * docs + 5e-3 * queries + 5e-9 * docs * queries

    points = [
        {"stage": "dense mining", "docs": d, "queries": q, "seconds": seconds(d, q), "peak_mb": 100 + 0.002 * d + 0.05 * q}
        for d in (10_000, 100_000, 1_000_000) for q in (1_000, 10_000)
    ]
    fitted = scaling.fit(points, "dense mining")
    model = cost.from_record(fitted["model"])
    assert (model.fixed, model.per_passage, model.per_query, model.per_pair) == pytest.approx((2.0, 4e-6, 5e-3, 5e-9), rel=1e-6)
    assert fitted["max_error"] < 1e-6
    big = scaling.MSMARCO
    assert fitted["msmarco_s"] == pytest.approx(seconds(big["docs"], big["train_queries"]), rel=1e-6)
    assert fitted["msmarco_mb"] == pytest.approx(100 + 0.002 * big["docs"] + 0.05 * big["train_queries"], rel=1e-6)
    # One query count cannot tell the query terms apart: no model, no projection.
    assert "model" not in scaling.fit([p for p in points if p["queries"] == 1_000], "dense mining")


def test_the_cost_model_fits_the_measured_points_better_than_one_power_law() -> None:
    """Issue 34 item 4 on BENCHMARKS.json's own points: the cost model's fit error on dense mining,
    and its MS MARCO projection near the ~7 h its per-pair points imply (the power law said 1.6 h)."""
    from bench import scaling

    points = json.loads((REPO / "BENCHMARKS.json").read_text(encoding="utf-8"))["scaling"]
    fitted = scaling.fit(points, "dense mining")
    assert fitted["max_error"] < 0.25
    assert 5 * 3600 < fitted["msmarco_s"] < 10 * 3600


@pytest.mark.slow
def test_cross_encoder_row_sides_keep_the_same_negatives(tmp_path: Path) -> None:
    """Issue 21: mining with --strategy cross-encoder and the direct Pyserini + CrossEncoder.predict
    script score the same pairs with the same model and keep the same negatives."""
    words = ["river", "mountain", "bridge", "valley", "forest", "desert", "harbour", "glacier", "canyon", "meadow"]
    corpus = "".join(
        f'{{"_id": "d{i}", "title": "", "text": "the {words[i % 10]} and the {words[(i * 3) % 10]} near place {i}"}}\n' for i in range(60)
    )
    queries = '{"_id": "q1", "text": "river bridge"}\n{"_id": "q2", "text": "forest canyon place"}\n'
    qrels = "query-id\tcorpus-id\tscore\nq1\td0\t3\nq2\td4\t3\nq2\td14\t1\n"  # d14: relevant, never a negative
    folder = write_beir(tmp_path / "b", corpus, queries, qrels)
    model = benchmarks.rows.make_cross_encoder(tmp_path / "ce")
    args = {"data": str(folder), "model": str(model), "prepared": str(tmp_path / "prepared")}
    benchmarks.rows.cross_prepare(args)
    ours = benchmarks.rows.cross_ours({**args, "work": str(tmp_path / "ours")})
    direct = benchmarks.rows.cross_direct({**args, "work": str(tmp_path / "direct")})
    assert set(ours["negatives"]) == set(direct["negatives"]) == {"q1", "q2"}
    assert ours["negatives"] == direct["negatives"]
    assert all(len(n) == benchmarks.rows.CROSS["negatives"] for n in ours["negatives"].values())
    assert "d14" not in ours["negatives"]["q2"]  # judged relevant below the level: excluded on both sides


def test_a_childs_peak_memory_is_its_own_not_its_parents() -> None:
    """ru_maxrss survives exec on Linux: a child forked from a large parent reported the parent's
    size (every row after the cross-encoder was built read 900 MB). VmHWM is the child's own."""
    import subprocess
    import sys

    import numpy as np

    ballast = np.ones(400 * 2**20 // 8)  # 400 MB resident in this process
    code = "import resource; from bench.harness import peak_mb; print(peak_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    own, inherited = map(float, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                               cwd=Path(benchmarks.__file__).parents[1]).stdout.split())
    assert own < 200 < 400 <= inherited + 50, (own, inherited)
    del ballast
