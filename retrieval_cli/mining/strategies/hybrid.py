"""Hybrid negatives: BM25 and dense rankings fused by reciprocal rank (``index.fusion``), scored
by their RRF score."""

from retrieval_cli.mining.strategies.registry import Strategy, ranked_pool, register

HYBRID = register(Strategy("hybrid", "BM25 and dense rankings fused by reciprocal rank", ranked_pool, ranking="hybrid"))
