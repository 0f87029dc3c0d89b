"""The engines a mining run scores with, opened once: BM25 and dense first stages (hits and the
positives' own scores, by the same engine) and an optional cross-encoder."""

from __future__ import annotations

from retrieval_cli import data as datasets
from retrieval_cli import models
from retrieval_cli.index import BM25IndexSearcher, DenseSearcher
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Artifact, Workspace


class Scorers:
    """The engines a mining run uses, opened once: first stages and an optional cross-encoder."""

    def __init__(
        self, ws: Workspace, indexes: dict[str, Artifact], cross_encoder: models.ModelSpec | None,
        batch_size: int, progress: Progress, device: str | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.progress = progress
        self.scored = 0
        self.engines = sorted(indexes)
        self.bm25 = BM25IndexSearcher(indexes["bm25"]) if "bm25" in indexes else None
        self.dense = DenseSearcher(ws, indexes["dense"], silent, device=device) if "dense" in indexes else None
        self.cross = models.load_cross_encoder(cross_encoder, device=device) if cross_encoder else None

    def first_stage(self, engine: str, queries: dict[str, str], positives: dict[str, list[str]], depth: int) -> tuple[dict[str, list[tuple[str, float]]], dict[str, dict[str, float]]]:
        """Top-``depth`` hits and the positives' scores, by the same engine, for a chunk of queries."""
        if engine == "bm25":
            assert self.bm25 is not None
            hits = self.bm25.search(queries, depth)
            pairs = [(queries[q], d) for q in queries for d in positives[q]]
            flat = iter(self.bm25.score(pairs))
            return hits, {q: {d: next(flat) for d in positives[q]} for q in queries}
        assert self.dense is not None
        qids = list(queries)
        vectors = self.dense.encode_queries(queries)
        hits = self.dense.search_vectors(qids, vectors, depth)
        return hits, {q: dict(zip(positives[q], self.dense.score(vectors[i], positives[q]))) for i, q in enumerate(qids)}

    def cross_scores(self, pairs: list[tuple[str, str]]) -> list[float]:
        """Cross-encoder scores of (query text, document text) pairs."""
        assert self.cross is not None

        def done(count: int) -> None:
            self.scored += count
            self.progress("cross-encoder pairs", self.scored, None)

        return models.predict_pairs(self.cross, pairs, self.batch_size, done)


def score_pairs(scorers: Scorers, pairs: list[tuple[str, str]], queries: dict[str, str], data: datasets.Dataset) -> dict[tuple[str, str], float]:
    """Cross-encoder scores of (query id, doc id) pairs, by pair."""
    if not pairs:
        return {}
    scores = scorers.cross_scores([(queries[q], data.doc_text(d)) for q, d in pairs])
    return dict(zip(pairs, scores))
