"""BM25 index artifacts: the corpus (title + text) indexed by Lucene through Pyserini's Anserini,
searched with the parameters the artifact records.

The Lucene files depend only on the corpus and the stemmer (k1 and b are search-time settings), so
an index over a corpus file some index already holds (a dataset with generated queries, a fresh
import of the same collection) links that index's Lucene files instead of indexing again. The new
artifact keeps its own version id (its lineage is its own dataset); its summary names the source.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

from retrieval_cli import data as datasets
from retrieval_cli.index import lucene
from retrieval_cli.index.config import BM25Config, threads
from retrieval_cli.progress import Progress, silent
from retrieval_cli.errors import RetrievalError
from retrieval_cli.store import Artifact, BuildResult, Workspace

FIELDS = "title+text"  # what a document's indexed contents are; part of what a Lucene index depends on


def same_lucene(ws: Workspace, dataset: Artifact, stemmer: str) -> Artifact | None:
    """A finished, intact BM25 index whose Lucene files are what indexing ``dataset`` with
    ``stemmer`` would write: same corpus file (by checksum), stemmer and fields; else None."""
    corpus = dataset.manifest.get("files", {}).get("corpus.jsonl")
    if corpus is None:
        return None
    for index in reversed(ws.artifacts("indexes")):  # the newest first
        cfg = index.config
        if cfg.get("kind") != "bm25" or cfg.get("stemmer") != stemmer or cfg.get("fields") != FIELDS:
            continue
        source = ws.find_ref(index.manifest.get("inputs", {}).get("dataset", ""))
        if source is None or source.manifest.get("files", {}).get("corpus.jsonl") != corpus:
            continue
        try:
            return ws.checked(index)
        except RetrievalError:
            continue  # a damaged index is never a source
    return None


def _link_tree(source: Path, target: Path) -> None:
    """``target`` with ``source``'s files, hard-linked (artifacts are never written in place, so
    they can share them) or copied where links cannot be made (another file system)."""
    shutil.copytree(source, target, copy_function=_link_or_copy)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build_bm25(
    ws: Workspace,
    dataset: Artifact,
    config: BM25Config,
    *,
    name: str | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Build (or reuse) a Lucene index of the dataset's corpus; another index's Lucene files when
    they index the same corpus file with the same stemmer (``same_lucene``)."""
    config.check()

    def build(folder: Path) -> dict[str, Any]:
        source = None if force else same_lucene(ws, dataset, config.stemmer)  # --force indexes afresh
        if source is not None:
            progress(f"Lucene files of {source.ref}", 0, None)
            _link_tree(source.file("lucene"), folder / "lucene")
            progress(f"Lucene files of {source.ref}", 1, 1)
            summary = {k: v for k, v in source.manifest.get("summary", {}).items() if k != "lucene_from"}
            return {**summary, "lucene_from": source.ref}
        data = datasets.load(dataset)
        collection = folder.parent / (folder.name + "-collection")
        collection.mkdir()
        try:
            progress("write Lucene collection", 0, len(data.corpus))
            indexable = 0
            with open(collection / "docs.jsonl", "w", encoding="utf-8") as out:
                for doc_id in data.corpus:
                    contents = data.doc_text(doc_id, sep="\n")
                    indexable += lucene.indexable(contents)
                    out.write(json.dumps({"id": doc_id, "contents": contents}) + "\n")
            progress("write Lucene collection", len(data.corpus), len(data.corpus))
            progress("Lucene indexing", 0, None)
            lucene.index_json_collection(
                collection, folder / "lucene", stemmer=config.stemmer, threads=threads(), expected=indexable,
            )
            progress("Lucene indexing", 1, 1)
        finally:
            shutil.rmtree(collection, ignore_errors=True)
        return {"documents": len(data.corpus), **({"empty_documents": len(data.corpus) - indexable} if indexable < len(data.corpus) else {})}

    return ws.build(
        "indexes", name or f"{dataset.name}-bm25", config, {"dataset": dataset}, build,
        resolved={"kind": "bm25", "fields": FIELDS}, force=force, software={"java": lucene.java_version()},
    )


class BM25IndexSearcher:
    """BM25 search with the parameters recorded in the index artifact."""

    BATCH = 256  # queries per Lucene batch search: progress moves per batch; each query's hits are its own

    def __init__(self, index: Artifact, progress: Progress = silent) -> None:
        cfg = index.config
        self._searcher = lucene.BM25Searcher(
            index.file("lucene"), k1=cfg["k1"], b=cfg["b"], stemmer=cfg["stemmer"]
        )
        self.progress = progress

    def search(self, queries: Mapping[str, str], k: int) -> dict[str, list[tuple[str, float]]]:
        qids = list(queries)
        results: dict[str, list[tuple[str, float]]] = {}
        self.progress("BM25 search", 0, len(qids))
        for start in range(0, len(qids), self.BATCH):
            batch = {q: queries[q] for q in qids[start:start + self.BATCH]}
            results.update(self._searcher.search(batch, k, threads=threads()))
            self.progress("BM25 search", min(start + self.BATCH, len(qids)), len(qids))
        return results

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        """BM25 scores of (query text, doc id) pairs, equal to what search reports."""
        return self._searcher.score(pairs)
