"""Query clusters for topic-aware batches (TAS-Balanced clusters queries once, before training).

A ``clusters`` artifact holds each query's cluster (``assignments.tsv``), the centroids
(``centroids.npy``) and, per cluster, its size and the queries nearest its centroid
(``clusters.json``), so a person can see what the topics are. Clustering is faiss k-means on
L2-normalised query embeddings (spherical, seeded), so the same seed gives the same clusters.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval_cli import data as datasets
from retrieval_cli import models
from retrieval_cli.errors import InputError, check_at_least
from retrieval_cli.index import encode_texts
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Artifact, BuildResult, Versioned, Workspace, added, unversioned
from retrieval_cli.store.npy import write_npy


@dataclass
class ClusterConfig(Versioned):
    """Which queries, embedded by which model, into how many clusters."""

    split: str = "train"
    model: str = models.DEFAULT_MODEL
    k: int = 64
    iterations: int = 25
    restarts: int = 5  # k-means runs from different seeds; the tightest is kept (faiss nredo)
    seed: int = 13
    examples: int = 5  # queries nearest each centroid, kept for people to read
    batch_size: int = unversioned(64)  # how fast, not what
    query_prompt: str = added("")  # "" = the model's own query prompt (its fingerprint versions it)
    device: str = unversioned("auto")

    def check(self) -> None:
        models.check_device(self.device)
        if self.k < 2:
            raise InputError(f"k must be >= 2, got {self.k}", field="k")
        check_at_least(self, 1, "iterations", "restarts", "batch_size")
        check_at_least(self, 0, "examples")
        datasets.check_split_name(self.split)


def cluster_queries(
    ws: Workspace,
    dataset: Artifact,
    config: ClusterConfig,
    *,
    name: str | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Embed a split's queries and k-means them; a ``clusters`` artifact."""
    config.check()
    queries = datasets.split_counts(dataset, config.split).get("queries")
    if queries is not None and queries < config.k:
        raise InputError(f"k={config.k} exceeds the {queries} queries of split '{config.split}'", field="k")
    spec = models.resolve(config.model, ws)
    inputs = {"dataset": dataset, **({"model": spec.artifact} if spec.artifact else {})}

    def build(folder: Path) -> dict[str, Any]:
        import faiss

        data = datasets.load(dataset)
        queries = data.split_queries(config.split)
        qids = list(queries)
        encoder = models.load_sentence_transformer(spec, device=config.device, progress=progress)
        prompt = models.prompt_for(encoder, "query", config.query_prompt)
        vectors = encode_texts(encoder, [queries[q] for q in qids], config.batch_size, "encode queries", progress, prompt=prompt, role="query")
        if models.similarity(encoder, spec.name) != "cosine":
            faiss.normalize_L2(vectors)  # topics are directions: a dot-product model's raw vectors too
        progress("k-means", 0, None)
        kmeans = faiss.Kmeans(
            vectors.shape[1], config.k, niter=config.iterations, seed=config.seed, spherical=True,
            nredo=config.restarts, min_points_per_centroid=1, verbose=False,
        )
        kmeans.train(vectors)
        similarity, assigned = kmeans.index.search(vectors, 1)
        progress("k-means", 1, 1)
        labels = assigned[:, 0]
        members: dict[int, list[int]] = {c: [] for c in range(config.k)}
        for i, c in enumerate(labels):
            members[int(c)].append(i)
        clusters = []
        for c, rows in members.items():
            nearest = sorted(rows, key=lambda i: -float(similarity[i, 0]))[:config.examples]
            clusters.append({"cluster": c, "size": len(rows), "examples": [queries[qids[i]] for i in nearest]})
        with open(folder / "assignments.tsv", "w", encoding="utf-8") as out:
            out.write("query-id\tcluster\n")
            out.writelines(f"{q}\t{int(c)}\n" for q, c in zip(qids, labels))
        write_npy(folder / "centroids.npy", kmeans.centroids, np.float32)
        (folder / "clusters.json").write_text(json.dumps(clusters, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        sizes = [len(rows) for rows in members.values()]
        return {
            "queries": len(qids),
            "k": config.k,
            "empty_clusters": sum(1 for s in sizes if s == 0),
            "size": {"min": min(sizes), "median": statistics.median(sizes), "max": max(sizes)},
            "mean_similarity_to_centroid": round(float(similarity.mean()), 4),
        }

    return ws.build(
        "clusters", name or f"{dataset.name}-{config.split}-k{config.k}", config, inputs, build,
        resolved={"model_fingerprint": spec.fingerprint}, force=force,
    )


def assignments(artifact: Artifact) -> dict[str, int]:
    """Query id -> cluster of a clusters artifact."""
    if artifact.kind != "clusters":
        raise InputError(f"'{artifact.ref}' is a {artifact.kind} artifact, expected clusters")
    lines = artifact.file("assignments.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return {q: int(c) for q, c in (line.split("\t") for line in lines)}


def described(artifact: Artifact) -> list[dict[str, Any]]:
    """Per cluster: its number, size and example queries, largest first."""
    clusters = json.loads(artifact.file("clusters.json").read_text(encoding="utf-8"))
    return sorted(clusters, key=lambda c: (-c["size"], c["cluster"]))
