"""Index artifacts: Lucene BM25 (through Pyserini's Anserini) and dense faiss indexes.

A BM25 index stores the Lucene index plus the BM25 parameters it is searched with. A dense
index stores the float16 corpus embeddings (for reuse by mining), the doc ids, and a faiss
index (Flat, HNSW or IVF-PQ) built from the float32 embeddings.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

import numpy as np

from retrieval_cli import datasets, lucene, models
from retrieval_cli.artifacts import VERIFY_FULL_BYTES, Artifact, BuildResult, Workspace, sha256_file
from retrieval_cli.errors import InputError
from retrieval_cli.progress import Progress, silent

FAISS_KINDS = ("flat", "hnsw", "ivfpq")


@dataclass
class BM25Config:
    """Lucene BM25 over title + text; Anserini's defaults (k1=0.9, b=0.4, Porter stemming)."""

    k1: float = 0.9
    b: float = 0.4
    stemmer: str = "porter"

    def check(self) -> None:
        if self.k1 < 0:
            raise InputError(f"k1 must be >= 0, got {self.k1}", field="k1")
        if not 0 <= self.b <= 1:
            raise InputError(f"b must be in [0, 1], got {self.b}", field="b")
        if self.stemmer not in lucene.STEMMERS:
            raise InputError(f"stemmer must be one of {', '.join(lucene.STEMMERS)}", field="stemmer")


@dataclass
class DenseConfig:
    """A sentence-transformers bi-encoder and the faiss structure its vectors live in."""

    model: str = models.DEFAULT_MODEL
    faiss: str = "flat"
    batch_size: int = 64
    max_seq_length: int | None = None
    query_prompt: str = ""
    document_prompt: str = ""
    hnsw_m: int = 32
    ef_search: int = 128
    nlist: int | None = None  # IVF cells; default ~4*sqrt(n)
    pq_m: int = 16  # PQ sub-quantisers; must divide the dimension
    nprobe: int = 16

    def check(self) -> None:
        if self.faiss not in FAISS_KINDS:
            raise InputError(f"faiss must be one of {', '.join(FAISS_KINDS)}, got {self.faiss!r}", field="faiss")
        if self.batch_size < 1:
            raise InputError("batch size must be >= 1", field="batch_size")


class Searcher(Protocol):
    def search(self, queries: Mapping[str, str], k: int) -> dict[str, list[tuple[str, float]]]: ...


def _threads() -> int:
    return max(1, os.cpu_count() or 1)


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
    full = {"kind": "bm25", **asdict(config), "fields": "title+text"}

    def build(folder: Path) -> dict[str, Any]:
        data = datasets.load(dataset)
        collection = folder.parent / (folder.name + "-collection")
        collection.mkdir()
        try:
            progress("write Lucene collection", 0, len(data.corpus))
            with open(collection / "docs.jsonl", "w", encoding="utf-8") as out:
                for doc_id in data.corpus:
                    out.write(json.dumps({"id": doc_id, "contents": data.doc_text(doc_id, sep="\n")}) + "\n")
            progress("write Lucene collection", len(data.corpus), len(data.corpus))
            progress("Lucene indexing", 0, None)
            lucene.index_json_collection(collection, folder / "lucene", stemmer=config.stemmer, threads=_threads())
            progress("Lucene indexing", 1, 1)
        finally:
            shutil.rmtree(collection, ignore_errors=True)
        return {"documents": len(data.corpus)}

    return ws.build(
        "indexes", name or f"{dataset.name}-bm25", full, {"dataset": dataset}, build,
        force=force, software={"java": lucene.java_version()},
    )


def token_lengths(model: Any, texts: list[str], prompt: str = "", step: int = 4096) -> np.ndarray:
    """Tokens per text as the model will see it (prompt, special tokens, truncation); character
    counts for a model without a tokenizer. Tokenized in steps, keeping only the lengths."""
    tokenizer = getattr(model, "tokenizer", None)
    lengths = np.empty(len(texts), dtype=np.int64)
    if tokenizer is None or not callable(tokenizer):
        lengths[:] = [len(prompt) + len(t) for t in texts]
        return lengths
    limit = getattr(model, "max_seq_length", None)
    for start in range(0, len(texts), step):
        batch = [prompt + t for t in texts[start:start + step]] if prompt else texts[start:start + step]
        encoded = tokenizer(
            batch, truncation=limit is not None, max_length=limit, return_attention_mask=False, return_token_type_ids=False,
        )
        lengths[start:start + len(batch)] = [len(ids) for ids in encoded["input_ids"]]
    return lengths


def encoding_chunks(model: Any, texts: list[str], batch_size: int, prompt: str = "") -> list[np.ndarray]:
    """The texts' indices in encoding chunks of ``batch_size * 8``, most tokens first, so each
    batch holds texts of nearly one length and pads little. sentence-transformers sorts a call's
    texts by characters, which pads 44% over the real tokens on the TREC-DL pool and 12% on
    Cranfield; by tokens, 0.7% and 2.4% (3,000 pool passages encoded 31% faster). A chunk is the
    unit a shard takes: the same chunk is encoded in the same batches whole or in shards."""
    order = np.argsort(-token_lengths(model, texts, prompt), kind="stable")
    size = batch_size * 8
    return [order[start:start + size] for start in range(0, len(texts), size)]


def _encode_chunk(model: Any, texts: list[str], idx: np.ndarray, batch_size: int, prompt: str) -> np.ndarray:
    # One encode call per batch: a call re-sorts its texts by characters, which would undo ours.
    parts = [
        model.encode(
            [texts[i] for i in idx[start:start + batch_size]], batch_size=batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False, prompt=prompt or None,
        )
        for start in range(0, len(idx), batch_size)
    ]
    return np.concatenate(parts).astype(np.float32)


def encode_texts(
    model: Any, texts: list[str], batch_size: int, stage: str, progress: Progress, prompt: str = "",
    done: dict[int, np.ndarray] | None = None, chunks: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Encode texts to L2-normalised float32 vectors chunk by chunk, reporting progress; chunks in
    ``done`` (chunk number -> vectors, from shards) are taken as they are. ``chunks`` is the plan
    from ``encoding_chunks`` when the caller already made it."""
    if not texts:
        return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32)
    done = done or {}
    chunks = chunks if chunks is not None else encoding_chunks(model, texts, batch_size, prompt)
    vectors: np.ndarray | None = None
    progress(stage, 0, len(texts))
    finished = 0
    for number, idx in enumerate(chunks):
        part = done[number] if number in done else _encode_chunk(model, texts, idx, batch_size, prompt)
        if vectors is None:
            vectors = np.empty((len(texts), part.shape[1]), dtype=np.float32)
        vectors[idx] = part
        finished += len(idx)
        progress(stage, finished, len(texts))
    return vectors


def _faiss_index(vectors: np.ndarray, config: DenseConfig) -> Any:
    import faiss

    n, dim = vectors.shape
    if config.faiss == "flat":
        index = faiss.IndexFlatIP(dim)
    elif config.faiss == "hnsw":
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


def _cache_intact(folder: Path, meta: dict) -> bool:
    """Sizes always, checksums up to the workspace's full-verification limit (as for artifacts)."""
    for name, expected in meta.get("files", {}).items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != expected["bytes"]:
            return False
        if expected["bytes"] <= VERIFY_FULL_BYTES and sha256_file(path) != expected["sha256"]:
            return False
    return "files" in meta


def embedding_cache(ws: Workspace, dataset: Artifact, spec: models.ModelSpec, config: DenseConfig) -> Path:
    """The cache folder of a corpus's embeddings. The key is the model's weights hash and the
    corpus file's hash (plus what changes the vectors: prompt, truncation), never the model's or
    the dataset's name, so an alias, a folder path or a dataset with new queries over the same
    corpus all reuse it."""
    corpus_hash = dataset.manifest.get("files", {}).get("corpus.jsonl") or dataset.version
    key = hashlib.sha256(json.dumps({
        "model": spec.fingerprint, "corpus": corpus_hash,
        "document_prompt": config.document_prompt, "max_seq_length": config.max_seq_length,
    }, sort_keys=True).encode()).hexdigest()[:20]
    return ws.root / ".cache" / "embeddings" / key


def store_embeddings(cache: Path, doc_ids: list[str], vectors: np.ndarray, meta: dict[str, Any]) -> None:
    """Write a cache entry into a private folder and rename it: a crash never leaves an entry that
    looks whole, and sizes and checksums let a reader refuse a damaged one."""
    tmp = cache.parent / f".{cache.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        np.save(tmp / "embeddings.npy", vectors)
        (tmp / "docids.txt").write_text("\n".join(doc_ids) + "\n", encoding="utf-8")
        files = {f: {"bytes": (tmp / f).stat().st_size, "sha256": sha256_file(tmp / f)} for f in ("embeddings.npy", "docids.txt")}
        (tmp / "done.json").write_text(json.dumps({**meta, "files": files}) + "\n", encoding="utf-8")
        if cache.exists():  # a concurrent build won the race; keep its copy
            shutil.rmtree(tmp)
        else:
            tmp.rename(cache)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class ShardResult:
    """What one shard of a corpus encode did; the unsharded command assembles the parts."""

    shard: tuple[int, int]
    chunks: int
    texts: int
    path: Path
    reused: bool


def _parts_dir(cache: Path) -> Path:
    return cache.parent / f"{cache.name}.parts"


def _plan_hash(chunks: list[np.ndarray], batch_size: int) -> str:
    digest = hashlib.sha256(str(batch_size).encode())
    for idx in chunks:
        digest.update(np.ascontiguousarray(idx, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def encode_shard(
    ws: Workspace, dataset: Artifact, config: DenseConfig, shard: tuple[int, int], progress: Progress = silent
) -> ShardResult:
    """Encode shard ``i`` of ``n`` of the corpus (every n-th encoding chunk) into the embedding
    cache's parts. Shards can run anywhere that sees the workspace (a shell loop, a Slurm array);
    ``build_dense`` without a shard then assembles the parts (encoding any chunk still missing)
    into the artifact an unsharded run makes, with the same version id and the same bytes."""
    config.check()
    i, n = shard
    spec = models.resolve(config.model, ws)
    cache = embedding_cache(ws, dataset, spec, config)
    path = _parts_dir(cache) / f"part-{i}-of-{n}.npz"
    try:  # this shard already ran: its part says what it holds, no model or tokenizer needed
        with np.load(path) as part:
            return ShardResult(shard, len(part["chunks"]), len(part["vectors"]), path, reused=True)
    except (OSError, ValueError, KeyError):
        pass  # missing or damaged: (re)computed below
    data = datasets.load(dataset)
    texts = [data.doc_text(d) for d in data.corpus]
    encoder = models.load_sentence_transformer(spec)
    if config.max_seq_length:
        encoder.max_seq_length = config.max_seq_length
    chunks = encoding_chunks(encoder, texts, config.batch_size, config.document_prompt)
    mine = [c for c in range(len(chunks)) if c % n == i]
    plan = _plan_hash(chunks, config.batch_size)
    if (cache / "done.json").is_file():
        return ShardResult(shard, len(mine), sum(len(chunks[c]) for c in mine), path, reused=True)
    total = sum(len(chunks[c]) for c in mine)
    progress(f"encode shard {i}/{n}", 0, total)
    parts, finished = [], 0
    for c in mine:
        parts.append(_encode_chunk(encoder, texts, chunks[c], config.batch_size, config.document_prompt))
        finished += len(chunks[c])
        progress(f"encode shard {i}/{n}", finished, total)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.npz")
    try:
        np.savez(tmp, chunks=np.array(mine, dtype=np.int64), plan=np.array(plan),
                 vectors=np.concatenate(parts) if parts else np.zeros((0, 0), np.float32))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return ShardResult(shard, len(mine), total, path, reused=False)


def _shard_parts(cache: Path, chunks: list[np.ndarray], batch_size: int) -> dict[int, np.ndarray]:
    """Chunk number -> vectors from every readable part made with this chunk plan."""
    folder = _parts_dir(cache)
    if not folder.is_dir():
        return {}
    plan = _plan_hash(chunks, batch_size)
    done: dict[int, np.ndarray] = {}
    for path in sorted(folder.glob("part-*.npz")):
        try:
            with np.load(path) as part:
                if str(part["plan"]) != plan:
                    continue  # another batch size, another chunk plan: not these chunks
                rows = 0
                for c in part["chunks"].tolist():
                    size = len(chunks[c])
                    done[c] = part["vectors"][rows:rows + size]
                    rows += size
        except (OSError, ValueError, KeyError, IndexError):
            continue  # a damaged part is encoded again, never trusted
    return done


def corpus_embeddings(
    ws: Workspace, dataset: Artifact, spec: models.ModelSpec, config: DenseConfig, progress: Progress = silent
) -> tuple[list[str], np.ndarray, int]:
    """(doc ids, float32 vectors, max sequence length) of a corpus, from the workspace cache
    (``embedding_cache``) when possible, else encoded, taking chunks that shards already did."""
    cache = embedding_cache(ws, dataset, spec, config)
    if (cache / "done.json").exists():
        meta = json.loads((cache / "done.json").read_text(encoding="utf-8"))
        if _cache_intact(cache, meta):
            doc_ids = (cache / "docids.txt").read_text(encoding="utf-8").splitlines()
            # Memory-mapped: building an index reads the vectors once, so they stay in the OS's
            # file cache rather than in a private copy beside the index faiss builds from them.
            return doc_ids, np.load(cache / "embeddings.npy", mmap_mode="r"), int(meta["max_seq_length"])
        shutil.rmtree(cache, ignore_errors=True)  # damaged: a cache entry is only ever recomputed, never trusted
    data = datasets.load(dataset)
    encoder = models.load_sentence_transformer(spec)
    if config.max_seq_length:
        encoder.max_seq_length = config.max_seq_length
    doc_ids = list(data.corpus)
    texts = [data.doc_text(d) for d in doc_ids]
    chunks = encoding_chunks(encoder, texts, config.batch_size, config.document_prompt)
    done = _shard_parts(cache, chunks, config.batch_size)
    vectors = encode_texts(
        encoder, texts, config.batch_size, "encode corpus", progress, prompt=config.document_prompt, done=done, chunks=chunks,
    )
    meta = {"model": spec.name, "fingerprint": spec.fingerprint, "dataset": dataset.ref, "max_seq_length": encoder.max_seq_length}
    store_embeddings(cache, doc_ids, vectors, meta)
    shutil.rmtree(_parts_dir(cache), ignore_errors=True)  # the whole entry supersedes its parts
    return doc_ids, vectors, int(encoder.max_seq_length)


def _save_float16(path: Path, vectors: np.ndarray, chunk: int = 65536) -> None:
    """``np.save(path, vectors.astype(float16))`` byte for byte, without a whole float16 copy in memory."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=vectors.shape)
    for start in range(0, len(vectors), chunk):
        out[start:start + chunk] = vectors[start:start + chunk]
    out.flush()
    del out


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
    full = {"kind": "dense", **asdict(config), "model_fingerprint": spec.fingerprint}
    inputs = {"dataset": dataset, **({"model": spec.artifact} if spec.artifact else {})}

    def build(folder: Path) -> dict[str, Any]:
        import faiss

        faiss.omp_set_num_threads(_threads())
        doc_ids, vectors, max_seq_length = corpus_embeddings(ws, dataset, spec, config, progress)
        _save_float16(folder / "embeddings.f16.npy", vectors)
        (folder / "docids.txt").write_text("\n".join(doc_ids) + "\n", encoding="utf-8")
        progress("build faiss index", 0, None)
        faiss.write_index(_faiss_index(vectors, config), str(folder / "index.faiss"))
        progress("build faiss index", 1, 1)
        return {"documents": len(doc_ids), "dimension": int(vectors.shape[1]), "max_seq_length": max_seq_length}

    return ws.build(
        "indexes", name or f"{dataset.name}-dense-{models.short_label(config.model)}", full, inputs, build,
        force=force,
    )


class DenseSearcher:
    """Encode queries with the index's model and search its faiss index."""

    def __init__(self, ws: Workspace, index: Artifact, progress: Progress = silent) -> None:
        import faiss

        self.config = DenseConfig(**{k: v for k, v in index.config.items() if k in DenseConfig.__dataclass_fields__})
        self.model = models.load_sentence_transformer(models.resolve(self.config.model, ws))
        if self.config.max_seq_length:
            self.model.max_seq_length = self.config.max_seq_length
        faiss.omp_set_num_threads(_threads())
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
        self._positions: dict[str, int] | None = None

    def encode_queries(self, queries: Mapping[str, str]) -> np.ndarray:
        """L2-normalised query vectors, in the order of ``queries``."""
        return encode_texts(
            self.model, list(queries.values()), self.config.batch_size, "encode queries", self.progress,
            prompt=self.config.query_prompt,
        )

    def search_vectors(self, qids: list[str], vectors: np.ndarray, k: int) -> dict[str, list[tuple[str, float]]]:
        """Top-k (doc id, inner product) per query vector."""
        k = min(k, len(self.doc_ids))
        results: dict[str, list[tuple[str, float]]] = {}
        chunk = 1024  # bounded memory: scores are chunk x k, never queries x corpus
        self.progress("faiss search", 0, len(qids))
        for start in range(0, len(qids), chunk):
            scores, idx = self.index.search(vectors[start:start + chunk], k)
            for row, qid in enumerate(qids[start:start + chunk]):
                results[qid] = [
                    (self.doc_ids[i], float(s)) for i, s in zip(idx[row], scores[row]) if i >= 0
                ]
            self.progress("faiss search", min(start + chunk, len(qids)), len(qids))
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


class BM25IndexSearcher:
    """BM25 search with the parameters recorded in the index artifact."""

    def __init__(self, index: Artifact) -> None:
        cfg = index.config
        self._searcher = lucene.BM25Searcher(
            index.file("lucene"), k1=cfg["k1"], b=cfg["b"], stemmer=cfg["stemmer"]
        )

    def search(self, queries: Mapping[str, str], k: int) -> dict[str, list[tuple[str, float]]]:
        return self._searcher.search(queries, k, threads=_threads())

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        """BM25 scores of (query text, doc id) pairs, equal to what search reports."""
        return self._searcher.score(pairs)


def open_searcher(ws: Workspace, index: Artifact, progress: Progress = silent) -> Searcher:
    """A searcher for any index artifact."""
    kind = index.config.get("kind")
    if kind == "bm25":
        return BM25IndexSearcher(index)
    if kind == "dense":
        return DenseSearcher(ws, index, progress)
    raise InputError(f"'{index.ref}' is not a searchable index (kind {kind!r})")


def index_dataset(ws: Workspace, index: Artifact) -> Artifact:
    """The dataset artifact an index was built from."""
    return ws.inputs_of(index)["dataset"]
