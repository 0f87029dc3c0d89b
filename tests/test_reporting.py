from __future__ import annotations

import pytest

from retrieval_cli import evaluation, indexing, reporting
from retrieval_cli.artifacts import Workspace


def test_report_keeps_systems_that_describe_alike(session_ws: Workspace, tiny) -> None:
    index = indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact
    deep = evaluation.evaluate(session_ws, index=index).artifact
    shallow = evaluation.evaluate(session_ws, index=index, config=evaluation.EvaluateConfig(depth=5)).artifact
    none = indexing.build_bm25(session_ws, tiny, indexing.BM25Config(stemmer="none")).artifact
    unstemmed = evaluation.evaluate(session_ws, index=none).artifact
    art = reporting.report(session_ws, [deep, shallow, unstemmed], name="alike").artifact
    grid = reporting.wide(reporting.load_table(art))
    assert len(grid) == 3
    labels = list(grid.index)
    assert f"BM25 k1=0.9 b=0.4 [{deep.name}@{deep.version[:6]}]" in labels
    assert "BM25 k1=0.9 b=0.4 stemmer=none" in labels
    recall = evaluation.metrics(shallow)["aggregate"]["R@100"]
    assert grid.loc[f"BM25 k1=0.9 b=0.4 [{shallow.name}@{shallow.version[:6]}]", ("tiny", "R@100")] == pytest.approx(recall)
    assert (art.file("report.md").read_text().count("\n| ")) == 3
