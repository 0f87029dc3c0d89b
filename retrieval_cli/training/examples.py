"""Training rows from a negatives artifact, in the shape each loss takes, and the topic-aware batch
samplers (TAS, TAS-Balanced) that need each row's query cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from retrieval_cli.errors import InputError
from retrieval_cli.mining import records as negatives
from retrieval_cli.store import Artifact, Workspace
from retrieval_cli.training import clustering
from retrieval_cli.training.config import TOPIC_SAMPLERS, BiEncoderTrainConfig


@dataclass
class Examples:
    """Training rows plus what the topic samplers need per row."""

    rows: list[dict[str, Any]]
    query_ids: list[str]
    queries: int
    short: int


def examples_for(ws: Workspace, source: Artifact, config: BiEncoderTrainConfig) -> Examples:
    """Rows for the loss, in the format its objective takes (``Objective.rows``: n-tuples, with
    teacher margins or scores for distillation; triplets for gist); margin-labelled triplets for
    tas-balanced (one drawn per query each epoch)."""
    fmt = "triplet-scores" if config.sampler == "tas-balanced" else config.objective.rows
    rows, queries, short = negatives.rows(ws, source, fmt, config.num_negatives, with_ids=True)
    if not rows:
        raise InputError(f"'{source.ref}' gives no training rows ({short} of {queries} queries short of negatives)")
    return Examples(rows, [r.pop("query_id") for r in rows], queries, short)


def _row_texts(row: dict[str, Any]) -> frozenset[str]:
    return frozenset(v for k, v in row.items() if k != "label")


def _cluster_of_rows(clusters: Artifact, query_ids: list[str]) -> list[int]:
    assigned = clustering.assignments(clusters)
    missing = sorted({q for q in query_ids if q not in assigned})
    if missing:
        raise InputError(
            f"clusters '{clusters.ref}' has no cluster for {len(missing)} training queries (e.g. {missing[0]}); "
            "cluster the same dataset and split the negatives were mined from"
        )
    return [assigned[q] for q in query_ids]


def sampler_factory(config: BiEncoderTrainConfig, clusters: Artifact | None, examples: Examples) -> Any:
    """A batch-sampler maker for the topic samplers (None: sentence-transformers' own samplers)."""
    from retrieval_cli.training import batching

    if config.sampler not in TOPIC_SAMPLERS:
        return None
    assert clusters is not None
    rows = examples.rows
    row_clusters = _cluster_of_rows(clusters, examples.query_ids)
    texts = [_row_texts(r) for r in rows]
    if config.sampler == "tas":
        return lambda dataset, **kwargs: batching.TopicBatchSampler(dataset, clusters=row_clusters, texts=texts, **kwargs)
    units = [(q, r["positive"]) for q, r in zip(examples.query_ids, rows)]
    bins = batching.margin_bins([r["label"] for r in rows], config.margin_bins)
    return lambda dataset, **kwargs: batching.BalancedTopicBatchSampler(
        dataset, clusters=row_clusters, texts=texts, units=units, bins=bins, **kwargs
    )
