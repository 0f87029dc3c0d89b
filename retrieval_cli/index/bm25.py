"""BM25 index artifacts: the corpus (title + text) indexed by Lucene through Pyserini's Anserini,
searched with the parameters the artifact records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Mapping

from retrieval_cli import data as datasets
from retrieval_cli.index import lucene
from retrieval_cli.index.config import BM25Config, threads
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Artifact, BuildResult, Workspace


def build_bm25(
    ws: Workspace,
    dataset: Artifact,
    config: BM25Config,
    *,
    name: str | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Build (or reuse) a Lucene index of the dataset's corpus."""
    config.check()

    def build(folder: Path) -> dict[str, Any]:
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
        resolved={"kind": "bm25", "fields": "title+text"}, force=force, software={"java": lucene.java_version()},
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
