"""Searching any index artifact, and the one place that decides which index a step searches:
``ensure`` takes the indexes given, checks they index the dataset's corpus, and builds (or reuses)
the missing ones with default settings. The CLI and the pipeline call it; mining only receives
indexes."""

from __future__ import annotations

from typing import Iterable, Mapping, Protocol

from retrieval_cli import models
from retrieval_cli.errors import InputError
from retrieval_cli.index.bm25 import BM25IndexSearcher, build_bm25
from retrieval_cli.index.config import BM25Config, DenseConfig
from retrieval_cli.index.dense import DenseSearcher, build_dense
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Artifact, Workspace

ENGINES = ("bm25", "dense")


class Searcher(Protocol):
    def search(self, queries: Mapping[str, str], k: int) -> dict[str, list[tuple[str, float]]]: ...


def open_searcher(ws: Workspace, index: Artifact, progress: Progress = silent, device: str | None = None) -> Searcher:
    """A searcher for any index artifact; a dense one encodes queries on ``device`` (auto: a GPU
    when present)."""
    kind = index.config.get("kind")
    if kind == "bm25":
        return BM25IndexSearcher(index, progress)
    if kind == "dense":
        return DenseSearcher(ws, index, progress, device=device)
    raise InputError(f"'{index.ref}' is not a searchable index (kind {kind!r})")


def index_dataset(ws: Workspace, index: Artifact) -> Artifact:
    """The dataset artifact an index was built from."""
    return ws.inputs_of(index)["dataset"]


def by_engine(ws: Workspace, dataset: Artifact, indexes: Iterable[Artifact]) -> dict[str, Artifact]:
    """The indexes by engine (bm25, dense), each checked to index ``dataset``'s corpus; one per engine."""
    found: dict[str, Artifact] = {}
    for index in indexes:
        kind = index.config.get("kind")
        if kind not in ENGINES:
            raise InputError(f"'{index.ref}' is not a bm25 or dense index", field="index")
        if kind in found:
            raise InputError(f"two {kind} indexes given ({found[kind].ref}, {index.ref}); give one", field="index")
        corpus_of = index_dataset(ws, index)
        if corpus_of.manifest["files"].get("corpus.jsonl") != dataset.manifest["files"].get("corpus.jsonl"):
            raise InputError(f"index '{index.ref}' was built on '{corpus_of.ref}', whose corpus differs from '{dataset.ref}'", field="index")
        found[kind] = index
    return found


def ensure(
    ws: Workspace,
    dataset: Artifact,
    engines: Iterable[str],
    *,
    given: Iterable[Artifact] = (),
    model: str = models.DEFAULT_MODEL,
    device: str | None = None,
    progress: Progress = silent,
) -> list[Artifact]:
    """One index per engine in ``engines`` over ``dataset``'s corpus: the ones ``given``, the rest
    built or reused with default settings (BM25: Anserini's k1, b and stemmer; dense: ``model``,
    encoded on ``device``)."""
    wanted = set(engines)
    found = by_engine(ws, dataset, given)
    for engine in sorted(wanted - set(found)):
        if engine == "bm25":
            found["bm25"] = build_bm25(ws, dataset, BM25Config(), progress=progress).artifact
        elif engine == "dense":
            found["dense"] = build_dense(ws, dataset, DenseConfig(model=model, device=device or "auto"), progress=progress).artifact
        else:
            raise InputError(f"unknown engine {engine!r}: use {', '.join(ENGINES)}", field="index")
    return [found[e] for e in sorted(found) if e in wanted]
