"""Encoding texts with a sentence-transformers bi-encoder, and the corpus embedding cache.

Texts are encoded in chunks ordered by length (tokens on a CPU, characters on a GPU: little
padding either way), one ``encode`` call per batch. A corpus's embeddings are a workspace cache
entry keyed by the model's weights and the corpus file's hash, never by names; while they are
being made, each finished chunk is a part (``store.shards``), so ``--shard I/N`` runs and
interrupted runs leave work the next run takes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

import numpy as np

from retrieval_cli import data as datasets
from retrieval_cli import models
from retrieval_cli.index.config import DenseConfig
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Artifact, CacheEntry, Parts, Shard, ShardResult, Workspace
from retrieval_cli.store.npy import write_npy

VECTORS = "vectors.npy"


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


def sort_lengths(model: Any, texts: list[str], prompt: str = "") -> np.ndarray:
    """What encoding batches are ordered by: tokens on a CPU, characters on an accelerator.

    On a CPU the forward pass is the cost, and batches of nearly one token count pad little:
    sentence-transformers sorts a call's texts by characters, which pads 44% over the real tokens
    on the TREC-DL pool and 12% on Cranfield; by tokens, 0.7% and 2.4% (3,000 pool passages
    encoded 31% faster). On a GPU the forward pass is nearly free and tokenizing is the cost, so
    counting tokens first tokenizes every text twice: MiniLM on an H200 encoded Cranfield at 644
    passages/s that way against 1,311 for ``SentenceTransformer.encode`` (``make gpu-check``).
    There, the characters sentence-transformers sorts by."""
    if models.device_of(model).startswith("cpu"):
        return token_lengths(model, texts, prompt)
    return np.fromiter((len(prompt) + len(t) for t in texts), dtype=np.int64, count=len(texts))


def encoding_chunks(model: Any, texts: list[str], batch_size: int, prompt: str = "") -> list[np.ndarray]:
    """The texts' indices in encoding chunks of ``batch_size * 8``, longest first
    (``sort_lengths``), so each batch holds texts of nearly one length and pads little. A chunk is
    the unit a shard takes: the same chunk is encoded in the same batches whole or in shards (on
    the same kind of device: a plan made on a GPU orders by characters, and its parts carry its
    own plan hash)."""
    order = np.argsort(-sort_lengths(model, texts, prompt), kind="stable")
    size = batch_size * 8
    return [order[start:start + size] for start in range(0, len(texts), size)]


def _encode_chunk(
    model: Any, texts: list[str], idx: np.ndarray, batch_size: int, prompt: str, on_batch: Callable[[int], None] | None = None,
    role: str = "document",
) -> np.ndarray:
    # One encode call per batch: a call re-sorts its texts by characters, which would undo ours.
    # ``on_batch`` hears each batch's size, so progress moves per batch, not per chunk. The role's
    # own method (encode_query / encode_document) routes a model with per-role modules; the prompt
    # is given resolved (``models.prompt_for``), "" meaning none. Cosine models' vectors are
    # normalised; a dot-product model's stay raw, as it was trained to compare them.
    method = getattr(model, "encode_query" if role == "query" else "encode_document", None) or model.encode
    normalise = models.similarity(model) == "cosine"
    parts = []
    for start in range(0, len(idx), batch_size):
        batch = [texts[i] for i in idx[start:start + batch_size]]
        parts.append(np.asarray(method(
            batch, batch_size=batch_size, normalize_embeddings=normalise, convert_to_numpy=True, show_progress_bar=False,
            prompt=prompt,
        ), dtype=np.float32))
        if on_batch is not None:
            on_batch(len(batch))
    return np.concatenate(parts).astype(np.float32)


def _per_batch(progress: Progress, stage: str, start: int, total: int) -> Callable[[int], None]:
    """A batch counter for one chunk: reports ``start`` plus the texts encoded so far."""
    seen = 0

    def moved(n: int) -> None:
        nonlocal seen
        seen += n
        progress(stage, start + seen, total)

    return moved


def plan_hash(chunks: list[np.ndarray], batch_size: int) -> str:
    """What a chunk's vectors depend on besides the model and corpus: the chunk plan and batch size."""
    digest = hashlib.sha256(str(batch_size).encode())
    for idx in chunks:
        digest.update(np.ascontiguousarray(idx, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def _chunk_vectors(
    parts: Parts | None, plan: str, number: int, compute: Any,
) -> tuple[np.ndarray, bool]:
    """Chunk ``number``'s vectors: from its part when one is whole, else computed (and kept as a part)."""
    if parts is None:
        return compute(), True

    made: list[np.ndarray] = []

    def make() -> tuple[dict[str, Any], Any]:
        made.append(compute())
        return {"chunk": number, "rows": len(made[0])}, lambda folder: write_npy(folder / VECTORS, made[0])

    entry, computed = parts.get_or_make(f"chunk-{number}-{plan}", make)
    return (made[0] if computed else np.load(entry.file(VECTORS))), computed  # a fresh chunk is not read back


def encode_texts(
    model: Any, texts: list[str], batch_size: int, stage: str, progress: Progress, prompt: str = "",
    chunks: list[np.ndarray] | None = None, parts: Parts | None = None, role: str = "document",
) -> np.ndarray:
    """Encode texts as ``role`` ("query" or "document") to float32 vectors chunk by chunk,
    reporting progress: L2-normalised for a cosine model, raw for a dot-product one. ``prompt`` is
    the resolved prompt (``models.prompt_for``). ``chunks`` is the plan from ``encoding_chunks``
    when the caller already made it; with ``parts``, each chunk is taken from (or kept as) a part,
    so finished chunks survive an interruption."""
    if not texts:
        return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32)
    chunks = chunks if chunks is not None else encoding_chunks(model, texts, batch_size, prompt)
    plan = plan_hash(chunks, batch_size) if parts is not None else ""
    vectors: np.ndarray | None = None
    progress(stage, 0, len(texts))
    finished = 0
    for number, idx in enumerate(chunks):
        moved = _per_batch(progress, stage, finished, len(texts))
        part, _ = _chunk_vectors(parts, plan, number, lambda idx=idx, moved=moved: _encode_chunk(model, texts, idx, batch_size, prompt, moved, role))
        if vectors is None:
            vectors = np.empty((len(texts), part.shape[1]), dtype=np.float32)
        vectors[idx] = part
        finished += len(idx)
        progress(stage, finished, len(texts))
    return vectors


def similarity_setting(spec: models.ModelSpec) -> dict[str, str]:
    """A dot-product model's raw (unnormalised) vectors, named in cache keys and index versions;
    nothing for cosine, so every key and version made before stays."""
    similarity = models.configured_similarity(spec)
    return {} if similarity == "cosine" else {"similarity": similarity}


def embedding_cache(ws: Workspace, dataset: Artifact, spec: models.ModelSpec, config: DenseConfig) -> CacheEntry:
    """The cache entry of a corpus's embeddings. The key is the model's weights hash and the
    corpus file's hash (plus what changes the vectors: prompt, truncation), never the model's or
    the dataset's name, so an alias, a folder path or a dataset with new queries over the same
    corpus all reuse it."""
    corpus_hash = dataset.manifest.get("files", {}).get("corpus.jsonl") or dataset.version
    key = hashlib.sha256(json.dumps({
        "model": spec.documents, "corpus": corpus_hash,
        "document_prompt": config.document_prompt, "max_seq_length": config.max_seq_length,
        **similarity_setting(spec),
        **({"precision": config.precision} if config.precision != "fp32" else {}),  # fp32 keys stay as they were
    }, sort_keys=True).encode()).hexdigest()[:20]
    return ws.cache("embeddings").entry(key)


def _parts(ws: Workspace, cache: CacheEntry) -> Parts:
    return Parts(ws.cache("embeddings"), f"{cache.path.name}.parts")


def _corpus_encoder(
    ws: Workspace, dataset: Artifact, spec: models.ModelSpec, config: DenseConfig, progress: Progress = silent,
) -> tuple[list[str], list[str], Any, list[np.ndarray]]:
    """(doc ids, texts, loaded model, chunk plan) of a corpus encode."""
    data = datasets.load(dataset)
    doc_ids = list(data.corpus)
    texts = [data.doc_text(d) for d in doc_ids]
    encoder = models.load_sentence_transformer(spec, device=config.device, progress=progress, precision=config.precision)
    if config.max_seq_length:
        encoder.max_seq_length = config.max_seq_length
    return doc_ids, texts, encoder, encoding_chunks(encoder, texts, config.batch_size, document_prompt(encoder, config))


def document_prompt(encoder: Any, config: DenseConfig) -> str:
    """The prompt a corpus is encoded with: the config's, else the model's own document prompt."""
    return models.prompt_for(encoder, "document", config.document_prompt)


def encode_shard(
    ws: Workspace, dataset: Artifact, config: DenseConfig, shard: Shard | tuple[int, int], progress: Progress = silent
) -> ShardResult:
    """Encode shard ``i`` of ``n`` of the corpus (every n-th encoding chunk) into parts of the
    embedding cache. Shards can run anywhere that sees the workspace (a shell loop, a Slurm array);
    ``build_dense`` without a shard then assembles the parts (encoding any chunk still missing)
    into the artifact an unsharded run makes, with the same version id and the same bytes."""
    config.check()
    shard = Shard.of(shard)
    spec = models.resolve(config.model, ws)
    cache = embedding_cache(ws, dataset, spec, config)
    parts = _parts(ws, cache)
    receipt_key = f"shard-{shard.index}-of-{shard.count}"
    receipt = parts.get(receipt_key)
    if receipt is not None:  # this shard already ran: its receipt says what it holds, no model needed
        plan, mine = receipt.data["plan"], receipt.data["chunks"]
        if all(parts.get(f"chunk-{c}-{plan}") is not None for c in mine):
            return ShardResult(shard, len(mine), 0, receipt.data["texts"], parts.path)
    doc_ids, texts, encoder, chunks = _corpus_encoder(ws, dataset, spec, config, progress)
    mine = shard.units(len(chunks))
    total = sum(len(chunks[c]) for c in mine)
    if cache.load() is not None:
        return ShardResult(shard, len(mine), 0, total, parts.path, artifact_exists=True)
    plan = plan_hash(chunks, config.batch_size)
    stage = f"encode shard {shard}"
    progress(stage, 0, total)
    finished = computed = 0
    for c in mine:
        moved = _per_batch(progress, stage, finished, total)
        _, made = _chunk_vectors(
            parts, plan, c, lambda c=c, moved=moved: _encode_chunk(encoder, texts, chunks[c], config.batch_size, document_prompt(encoder, config), moved),
        )
        computed += made
        finished += len(chunks[c])
        progress(stage, finished, total)
    parts.cache.entry(f"{parts.job}/{receipt_key}").store({"plan": plan, "chunks": mine, "texts": total})
    return ShardResult(shard, len(mine), computed, total, parts.path)


def corpus_embeddings(
    ws: Workspace, dataset: Artifact, spec: models.ModelSpec, config: DenseConfig, progress: Progress = silent
) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """(doc ids, float32 vectors, how they were encoded) of a corpus, from the workspace cache
    (``embedding_cache``) when possible, else encoded, taking chunks that shards or an interrupted
    run already did, and stored there. The vectors are the cache entry's file, memory-mapped.
    How: max sequence length, document prompt, similarity, device."""
    cache = embedding_cache(ws, dataset, spec, config)
    found = cache.load()  # a damaged entry is removed: recomputed, never trusted
    if found is not None:
        doc_ids = found.file("docids.txt").read_text(encoding="utf-8").splitlines()
        # Memory-mapped: building an index reads the vectors once, so they stay in the OS's
        # file cache rather than in a private copy beside the index faiss builds from them.
        return doc_ids, np.load(found.file("embeddings.npy"), mmap_mode="r"), _encoded(found.data)
    doc_ids, texts, encoder, chunks = _corpus_encoder(ws, dataset, spec, config, progress)
    parts = _parts(ws, cache)
    vectors = encode_texts(
        encoder, texts, config.batch_size, "encode corpus", progress, prompt=document_prompt(encoder, config), chunks=chunks, parts=parts,
    )
    meta = {
        "model": spec.name, "fingerprint": spec.fingerprint, "dataset": dataset.ref, "max_seq_length": encoder.max_seq_length,
        "document_prompt": document_prompt(encoder, config), "similarity": models.similarity(encoder, spec.name),
        "device": models.device_of(encoder),
    }

    def write(folder: Any) -> None:
        write_npy(folder / "embeddings.npy", vectors)
        (folder / "docids.txt").write_text("\n".join(doc_ids) + "\n", encoding="utf-8")

    stored = cache.store(meta, write)
    parts.clear()  # the whole entry supersedes its parts
    del vectors  # the stored entry, mapped, takes its place: an index built next holds its own copy, not two
    return doc_ids, np.load(stored.file("embeddings.npy"), mmap_mode="r"), _encoded(meta)


def _encoded(meta: dict[str, Any]) -> dict[str, Any]:
    """How a cache entry's vectors were made (entries written before prompts and devices were
    recorded were cosine, CPU and without a prompt)."""
    return {
        "max_seq_length": int(meta["max_seq_length"]), "document_prompt": meta.get("document_prompt", ""),
        "similarity": meta.get("similarity", "cosine"), "device": meta.get("device", "cpu"),
    }
