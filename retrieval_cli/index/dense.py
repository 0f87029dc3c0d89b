"""Dense index artifacts: the corpus embeddings (float16, for reuse by mining), the doc ids, and a
faiss index (Flat, HNSW or IVF-PQ) built from the float32 embeddings, searched by inner product (a
flat one on the model's GPU when it has one: ``exact``): cosine for a model that compares by cosine (its vectors normalised), the raw dot product for one
that compares by dot product (TAS-B and its kin), as the model's ``similarity_fn_name`` says."""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from retrieval_cli import models
from retrieval_cli.errors import InputError
from retrieval_cli.index.config import DenseConfig, threads
from retrieval_cli.index.encoding import corpus_embeddings, encode_texts, similarity_setting
from retrieval_cli.index.exact import TIE_MARGIN, TorchFlat, canonical
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Artifact, BuildResult, Workspace
from retrieval_cli.store.npy import npy_writer, row_chunks


def _faiss_index(vectors: np.ndarray, config: DenseConfig, each_chunk: Callable[[np.ndarray], None] = lambda _: None) -> Any:
    """The faiss index of ``vectors``, which are read once, a chunk at a time; ``each_chunk`` sees
    every chunk in order (the build writes the float16 copy in the same pass)."""
    import faiss

    n, dim = vectors.shape
    if config.faiss == "flat":
        index = faiss.IndexFlatIP(dim)
        # Added a chunk at a time from the file (store.npy.row_chunks), into storage sized once:
        # faiss grows its code vector by doubling, so chunked adds alone would copy it at each
        # doubling; a vector resized down keeps its capacity. 1M x 384: 3.05 GB peak adding the
        # memory-mapped array at once, 2.28 GB in chunks, 1.68 GB in chunks into reserved storage
        # (the index itself is 1.54 GB); the index bytes are the same.
        index.codes.resize(n * index.code_size)
        index.codes.resize(0)
        for chunk in row_chunks(vectors, np.float32):
            each_chunk(chunk)
            index.add(chunk)
        return index
    for chunk in row_chunks(vectors, np.float32):  # HNSW's graph depends on how vectors are added: one add below
        each_chunk(chunk)
    if config.faiss == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    else:
        if dim % config.pq_m:
            raise InputError(f"pq_m={config.pq_m} must divide the embedding dimension {dim}", field="pq_m")
        nlist = config.nlist or max(1, min(int(4 * np.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, config.pq_m, 8, faiss.METRIC_INNER_PRODUCT)
        if n < 256:
            raise InputError(f"ivfpq needs at least 256 documents to train its codebooks, corpus has {n}", field="faiss")
        index.train(vectors)
    index.add(vectors)
    return index


@contextmanager
def _blas_search() -> Iterator[None]:
    """Exhaustive inner products by BLAS matrix products for any batch of 20 queries or more.
    faiss 1.15 raised the switch to 128,000 queries, so a mining chunk (250 queries) took its
    per-query SIMD loop: 1.57 s against 0.33 s by BLAS over 100k vectors on 2 cores, the same ids
    and scores within 1e-7. The global is restored, so other faiss users in the process see theirs."""
    import faiss

    before = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = 20  # faiss's default before 1.15
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = before


def _write_index(index: Any, path: Path) -> None:
    """``faiss.write_index``, with a full disk as ``OSError(ENOSPC)`` naming the file (faiss says it
    inside a C++ assertion message)."""
    import faiss

    try:
        faiss.write_index(index, str(path))
    except RuntimeError as exc:
        if os.strerror(errno.ENOSPC) in str(exc):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        raise


def build_dense(
    ws: Workspace,
    dataset: Artifact,
    config: DenseConfig,
    *,
    name: str | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Encode the corpus with a sentence-transformers model and build a faiss index."""
    config.check()
    spec = models.resolve(config.model, ws)
    inputs = {"dataset": dataset, **({"model": spec.artifact} if spec.artifact else {})}

    def build(folder: Path) -> dict[str, Any]:
        import faiss

        faiss.omp_set_num_threads(threads())
        doc_ids, vectors, encoded = corpus_embeddings(ws, dataset, spec, config, progress)
        (folder / "docids.txt").write_text("\n".join(doc_ids) + "\n", encoding="utf-8")
        progress("build faiss index", 0, None)
        with npy_writer(folder / "embeddings.f16.npy", vectors.shape, np.float16) as write_f16:  # no whole float16 copy
            index = _faiss_index(vectors, config, write_f16)
        _write_index(index, folder / "index.faiss")
        progress("build faiss index", 1, 1)
        return {
            "documents": len(doc_ids), "dimension": int(vectors.shape[1]), **_facts(encoded),
        }

    return ws.build(
        "indexes", name or f"{dataset.name}-dense-{models.short_label(config.model)}", config, inputs, build,
        resolved={"kind": "dense", "model_fingerprint": spec.fingerprint, **similarity_setting(spec)}, force=force,
    )


def _facts(encoded: Mapping[str, Any]) -> dict[str, Any]:
    """How the corpus was encoded, for the manifest: the defaults (no prompt, cosine) stay unsaid,
    so the summaries of indexes made before read the same."""
    out: dict[str, Any] = {"max_seq_length": encoded["max_seq_length"]}
    if encoded.get("document_prompt"):
        out["document_prompt"] = encoded["document_prompt"]
    if encoded.get("similarity", "cosine") != "cosine":
        out["similarity"] = encoded["similarity"]
    out["device"] = encoded.get("device", "cpu")
    return out


class DenseSearcher:
    """Encode queries with the index's model and search its faiss index."""

    def __init__(self, ws: Workspace, index: Artifact, progress: Progress = silent, device: str | None = None,
                 exact_on: str | None = None) -> None:
        """``device`` is where queries are encoded now (auto: a GPU when present), whatever
        machine built the index; the index's precision is kept, as its vectors were made with it.
        A flat index is searched on the model's device when that is a GPU (``exact.TorchFlat``),
        else by faiss-cpu; ``exact_on`` names a torch device to search on instead (tests: cpu)."""
        import faiss

        self.config = DenseConfig(**{k: v for k, v in index.config.items() if k in DenseConfig.__dataclass_fields__})
        spec = models.resolve(self.config.model, ws)
        self.model = models.load_sentence_transformer(spec, device=device, progress=progress, precision=self.config.precision)
        if self.config.max_seq_length:
            self.model.max_seq_length = self.config.max_seq_length
        models.similarity(self.model, spec.name)  # an unsupported similarity is refused before any search
        self.query_prompt = models.prompt_for(self.model, "query", self.config.query_prompt)
        faiss.omp_set_num_threads(threads())
        # A flat index is memory-mapped, not copied: its pages are the OS's file cache, shared by
        # every process searching it (parallel shards, a pipeline's steps) and read on demand.
        flags = faiss.IO_FLAG_MMAP_IFC if self.config.faiss == "flat" else 0
        self.index = faiss.read_index(str(index.file("index.faiss")), flags)
        if self.config.faiss == "hnsw":
            self.index.hnsw.efSearch = self.config.ef_search
        elif self.config.faiss == "ivfpq":
            self.index.nprobe = self.config.nprobe
        self.doc_ids = index.file("docids.txt").read_text(encoding="utf-8").splitlines()
        self.progress = progress
        on_gpu = models.device_of(self.model).startswith("cuda")
        self.exact = TorchFlat(self.index, exact_on or str(self.model.device)) if self.config.faiss == "flat" and (exact_on or on_gpu) else None
        self._positions: dict[str, int] | None = None

    def encode_queries(self, queries: Mapping[str, str]) -> np.ndarray:
        """Query vectors in the order of ``queries``, as ``encode_query`` makes them (the query
        prompt; normalised for a cosine model, raw for a dot-product one)."""
        return encode_texts(
            self.model, list(queries.values()), self.config.batch_size, "encode queries", self.progress,
            prompt=self.query_prompt, role="query",
        )

    def search_vectors(self, qids: list[str], vectors: np.ndarray, k: int) -> dict[str, list[tuple[str, float]]]:
        """Top-k (doc id, inner product) per query vector."""
        k = min(k, len(self.doc_ids))
        results: dict[str, list[tuple[str, float]]] = {}
        chunk = 1024  # bounded memory: scores are chunk x k, never queries x corpus
        flat = self.config.faiss == "flat"
        self.progress("faiss search" if self.exact is None else "exact search", 0, len(qids))
        for start in range(0, len(qids), chunk):
            if self.exact is not None:
                scores, idx = self.exact.search(vectors[start:start + chunk], k)
            else:
                with _blas_search():
                    scores, idx = self.index.search(vectors[start:start + chunk], min(k + TIE_MARGIN, len(self.doc_ids)) if flat else k)
                if flat:  # exact ties in the order the GPU path gives them too
                    scores, idx = canonical(scores, idx, k)
            for row, qid in enumerate(qids[start:start + chunk]):
                results[qid] = [
                    (self.doc_ids[i], float(s)) for i, s in zip(idx[row], scores[row]) if i >= 0
                ]
            self.progress("faiss search" if self.exact is None else "exact search", min(start + chunk, len(qids)), len(qids))
        return results

    def search(self, queries: Mapping[str, str], k: int) -> dict[str, list[tuple[str, float]]]:
        return self.search_vectors(list(queries), self.encode_queries(queries), k)

    def score(self, query_vector: np.ndarray, doc_ids: list[str]) -> list[float]:
        """Inner products with documents by id, from the vectors the index holds, so they match
        search scores (exact for flat and HNSW, the PQ approximation for IVF-PQ)."""
        if self._positions is None:
            self._positions = {d: i for i, d in enumerate(self.doc_ids)}
            if self.config.faiss == "ivfpq":
                self.index.make_direct_map()
        vectors = np.stack([self.index.reconstruct(self._positions[d]) for d in doc_ids]) if doc_ids else np.zeros((0, len(query_vector)), dtype=np.float32)
        return [float(x) for x in (vectors @ query_vector.astype(np.float32))]
