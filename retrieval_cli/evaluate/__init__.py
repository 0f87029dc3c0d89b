"""Evaluation: TREC runs, what a measure is (resolved against a dataset's relevance level, scored by
ir-measures), cross-encoder reranking, and evaluation artifacts."""

from retrieval_cli.evaluate.evaluation import EvaluateConfig, evaluate, metrics, per_query
from retrieval_cli.evaluate.measures import ALWAYS, DEFAULT_MEASURES, RunScorer, resolve_measures, score_run
from retrieval_cli.evaluate.rerank import rerank

__all__ = [
    "ALWAYS", "DEFAULT_MEASURES", "EvaluateConfig", "evaluate", "metrics", "per_query", "rerank",
    "resolve_measures", "RunScorer", "score_run",
]
