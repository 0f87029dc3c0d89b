"""Evaluation's stages on explicit inputs, without a workspace: scoring a ranking a group at a
time gives what ir-measures gives on the whole run, and ``ranked`` drops self hits and cuts depth."""

from __future__ import annotations

import io

import ir_measures
import pytest

from retrieval_cli.data import Dataset
from retrieval_cli.evaluate.evaluation import EvaluateConfig, Scoring, ranked
from retrieval_cli.evaluate.measures import resolve_measures


def test_scoring_in_groups_equals_ir_measures_on_the_whole_run() -> None:
    qrels = {"q1": {"d1": 1, "d3": 2}, "q2": {"d2": 1}, "q3": {"d9": 1}}
    run = {"q1": [("d3", 3.0), ("d2", 2.0), ("d1", 1.0)], "q2": [("d1", 2.0), ("d2", 1.5)], "q3": [("d4", 1.0)]}
    measures = resolve_measures(["nDCG@10", "R@100"], 1)
    trec = io.StringIO()
    scoring = Scoring(trec, qrels, measures, total=3)
    scoring.take({q: run[q] for q in ("q1", "q2")}, ["q1", "q2"], "t")
    scoring.take({"q3": run["q3"]}, ["q3"], "t")
    aggregate, _ = scoring.result()
    direct = ir_measures.calc_aggregate(list(measures.values()), [ir_measures.Qrel(q, d, g) for q, docs in qrels.items() for d, g in docs.items()],
                                        [ir_measures.ScoredDoc(q, d, s) for q, hits in run.items() for d, s in hits])
    assert aggregate["nDCG@10"] == pytest.approx(direct[measures["nDCG@10"]]) and aggregate["R@100"] == pytest.approx(direct[measures["R@100"]])
    assert scoring.answered == 3 and len(trec.getvalue().splitlines()) == 6


def test_ranked_drops_self_hits_and_cuts_to_depth() -> None:
    data = Dataset({"q1": {"text": "x"}, "d1": {"text": "y"}}, {"q1": "x"}, {"test": {"q1": {"d1": 1}}})
    first = {"q1": [("q1", 9.0), ("d1", 5.0), ("d2", 4.0), ("d3", 3.0)]}
    got = ranked(first, EvaluateConfig(depth=2), drop_self=True, queries={"q1": "x"}, data=data)
    assert got == {"q1": [("d1", 5.0), ("d2", 4.0)]}
    assert ranked(first, EvaluateConfig(depth=2), drop_self=False, queries={"q1": "x"}, data=data) == {"q1": [("q1", 9.0), ("d1", 5.0)]}
