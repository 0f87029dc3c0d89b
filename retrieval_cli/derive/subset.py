"""NanoBEIR-style subsets: a few sampled queries, all their judged documents, and BM25 distractors,
small enough for CI smoke runs yet hard enough to rank."""

from __future__ import annotations

from retrieval_cli.data import Dataset, load, store
from retrieval_cli.errors import InputError
from retrieval_cli.index import ensure, open_searcher
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Artifact, BuildResult, Workspace


# ---- NanoBEIR-style subsets ------------------------------------------------------------------------
def subset(
    ws: Workspace,
    source: Artifact,
    *,
    queries: int = 50,
    split: str = "test",
    seed: int = 13,
    distractors: str = "bm25:100",
    name: str | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Sample queries, keep all their judged documents, and add top-ranked BM25 distractors."""
    import random

    strategy, _, depth_text = distractors.partition(":")
    if strategy not in ("bm25", "none") or (strategy == "bm25" and not depth_text.isdigit()):
        raise InputError(f"distractors must be 'bm25:K' or 'none', got {distractors!r}", field="distractors")
    depth = int(depth_text or 0)
    if queries < 1:
        raise InputError("queries must be >= 1", field="queries")
    config = {
        "source": "subset", "queries": queries, "split": split, "seed": seed, "distractors": distractors,
        "relevance_level": int(source.config.get("relevance_level", 1)),
    }
    inputs: dict[str, Artifact] = {"dataset": source}
    index = None
    if strategy == "bm25":
        index = ensure(ws, source, ["bm25"], progress=progress)[0]
        inputs["index"] = index

    # Sampling and the distractor search happen inside the build, so a cache hit costs nothing.
    def make() -> Dataset:
        data = load(source)
        judged = data.split_qrels(split)
        chosen = sorted(random.Random(seed).sample(sorted(judged), min(queries, len(judged))))
        keep_docs = {doc_id for qid in chosen for doc_id in judged[qid]}
        if index is not None:
            hits = open_searcher(ws, index).search({q: data.queries[q] for q in chosen}, depth)
            keep_docs.update(doc_id for ranked in hits.values() for doc_id, _ in ranked)
        return Dataset(
            corpus={d: doc for d, doc in data.corpus.items() if d in keep_docs},
            queries={q: data.queries[q] for q in chosen},
            qrels={split: {q: judged[q] for q in chosen}},
            relevance_level=data.relevance_level,
        )

    return store(ws, name or f"{source.name}-sub{queries}", config, inputs, make, force=force)
