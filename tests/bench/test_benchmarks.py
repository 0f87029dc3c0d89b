"""The benchmark harness measures what it says: both sides of a row compute the same thing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import harness as benchmarks
from tests.conftest import GOOD_CORPUS, GOOD_QRELS, GOOD_QUERIES, write_beir


def test_overlap_is_mean_jaccard_over_common_queries() -> None:
    a = {"q1": ["d1", "d2"], "q2": ["d3"], "q3": ["d9"]}
    b = {"q1": ["d2", "d4"], "q2": ["d3"]}
    assert benchmarks._overlap(a, b) == pytest.approx((1 / 3 + 1) / 2)


def test_evaluate_row_sides_agree(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "b", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    run = tmp_path / "r.run"
    run.write_text("q1 Q0 d3 1 3.0 t\nq1 Q0 d2 2 2.0 t\nq1 Q0 d1 3 1.0 t\nq2 Q0 d1 1 1.0 t\n", encoding="utf-8")
    args = {"data": str(folder), "run": str(run), "work": str(tmp_path)}
    ours, direct = benchmarks.evaluate_ours(args), benchmarks.evaluate_direct(args)
    assert ours["values"]["nDCG@10"] == pytest.approx(direct["values"]["nDCG@10"])
    assert ours["values"]["R@100"] == pytest.approx(direct["values"]["R@100"]) == 0.5  # q2 finds nothing
    assert set(ours["values"]) == set(direct["values"]) == {"nDCG@10", "R@100", "Judged@10"}


def test_markdown_reports_every_row_and_scaling_point() -> None:
    results = {
        "machine": {"cpus": "2", "platform": "Linux", "python": "3.11", "retrieval-cli": "0.1", "torch": "2", "sentence-transformers": "5",
                    "pyserini": "1.6", "faiss-cpu": "1", "ir-measures": "0.4"},
        "rows": [{"row": "BM25", "ours_s": 2.0, "direct_s": 1.6, "ratio": 1.25, "ours_mb": 900.0, "direct_mb": 800.0, "goal": "<= 1.15x", "note": ""}],
        "scaling": [{"strategy": "dense", "docs": 10000, "queries": 1000, "seconds": 3.0, "peak_mb": 700.0, "index_mb": 8.0, "index_build_s": 1.0}],
    }
    text = benchmarks.to_markdown(results, benchmarks.BenchConfig(), 60.0)
    assert "| BM25 | 2.00 | 1.60 | 1.250 | <= 1.15x | 900 / 800 |  |" in text
    assert "| dense | 10,000 | 1,000 | 3.00 | 700 | 8 | 1.00 |" in text


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
    args = {"data": str(folder), "work": str(tmp_path), "queries": 40}
    ours, direct = benchmarks.train_ours(args), benchmarks.train_direct(args)
    assert len(ours["losses"]) == len(direct["losses"]) == 3  # 40 rows in batches of 16
    assert ours["losses"] == pytest.approx(direct["losses"], rel=1e-5)
