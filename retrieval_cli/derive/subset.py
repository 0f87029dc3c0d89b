"""NanoBEIR-style subsets: a few sampled queries, all their judged documents, and BM25 distractors,
small enough for CI smoke runs yet hard enough to rank."""

from __future__ import annotations

from retrieval_cli.data import Dataset, hidden_query_splits, load, split_level, store
from retrieval_cli.errors import InputError
from retrieval_cli.index import ensure, open_searcher
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Artifact, BuildResult, Workspace

# ---- NanoBEIR-style subsets ------------------------------------------------------------------------
ALL = "all"  # split=ALL: sample from every split


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
    """Sample queries, keep all their judged documents, and add top-ranked BM25 distractors.
    ``split="all"`` samples ``queries`` from every split (a CI subset keeps its training queries
    beside its test queries), each split with its own level."""
    import random

    strategy, _, depth_text = distractors.partition(":")
    if strategy not in ("bm25", "none") or (strategy == "bm25" and not depth_text.isdigit()):
        raise InputError(f"distractors must be 'bm25:K' or 'none', got {distractors!r}", field="distractors")
    depth = int(depth_text or 0)
    if queries < 1:
        raise InputError("queries must be >= 1", field="queries")
    every = split == ALL
    config: dict = {
        "source": "subset", "queries": queries, "split": split, "seed": seed, "distractors": distractors,
        "relevance_level": int(source.config.get("relevance_level", 1)) if every else split_level(source, split),
    }
    if every and source.config.get("split_levels"):
        config["split_levels"] = source.config["split_levels"]
    hidden = sorted(s for s in hidden_query_splits(source) if every or s == split)
    if hidden:
        config["hidden_query_splits"] = hidden
    inputs: dict[str, Artifact] = {"dataset": source}
    index = None
    if strategy == "bm25":
        index = ensure(ws, source, ["bm25"], progress=progress)[0]
        inputs["index"] = index

    # Sampling and the distractor search happen inside the build, so a cache hit costs nothing.
    def make() -> Dataset:
        data = load(source)
        qrels: dict[str, dict[str, dict[str, int]]] = {}
        for name_ in sorted(data.qrels) if every else [split]:
            judged = data.split_qrels(name_)
            rng = random.Random(f"{seed}/{name_}" if every else seed)  # per split: adding a split moves no other
            chosen = sorted(rng.sample(sorted(judged), min(queries, len(judged))))
            qrels[name_] = {q: judged[q] for q in chosen}
        chosen = {q: data.queries[q] for judged in qrels.values() for q in judged}  # split by split, sorted
        keep_docs = {doc_id for judged in qrels.values() for docs in judged.values() for doc_id in docs}
        if index is not None:
            hits = open_searcher(ws, index).search(chosen, depth)
            keep_docs.update(doc_id for ranked in hits.values() for doc_id, _ in ranked)
        return Dataset(
            corpus={d: doc for d, doc in data.corpus.items() if d in keep_docs},
            queries=chosen,
            qrels=qrels,
            relevance_level=data.relevance_level if every else data.level(split),
            split_levels=data.split_levels if every else {},
        )

    return store(ws, name or f"{source.name}-sub{queries}", config, inputs, make, force=force)
