"""Reranking a run with a cross-encoder: each query's top hits rescored, deeper hits kept below."""

from __future__ import annotations

from typing import Any

from retrieval_cli import data as datasets
from retrieval_cli import models
from retrieval_cli.evaluate import runs
from retrieval_cli.progress import Progress, silent


def rerank(
    run: runs.Run, queries: dict[str, str], data: datasets.Dataset, model: Any, depth: int,
    batch_size: int, progress: Progress = silent,
) -> runs.Run:
    """Rescore each query's top ``depth`` with a cross-encoder; deeper hits keep their order below."""
    pairs, owners = [], []
    for qid, hits in run.items():
        for doc_id, _ in hits[:depth]:
            pairs.append((queries[qid], data.doc_text(doc_id)))
            owners.append((qid, doc_id))
    progress("cross-encoder rerank", 0, len(pairs))
    scored = [0]

    def done(count: int) -> None:
        scored[0] += count
        progress("cross-encoder rerank", scored[0], len(pairs))

    scores = models.predict_pairs(model, pairs, batch_size, done)
    new_scores: dict[str, list[tuple[str, float]]] = {}
    for (qid, doc_id), score in zip(owners, scores):
        new_scores.setdefault(qid, []).append((doc_id, score))
    reranked: runs.Run = {}
    for qid, hits in run.items():
        head = sorted(new_scores.get(qid, []), key=lambda h: -h[1])
        floor = min((s for _, s in head), default=0.0)
        tail = [(doc_id, floor - 1.0 - i) for i, (doc_id, _) in enumerate(hits[depth:])]
        reranked[qid] = head + tail
    return reranked
