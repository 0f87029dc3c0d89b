"""What an index is built with: Lucene BM25's parameters and a dense index's model and faiss structure."""

from __future__ import annotations

import os
from dataclasses import dataclass

from retrieval_cli import models
from retrieval_cli.errors import InputError
from retrieval_cli.index import lucene
from retrieval_cli.store import Versioned, added, unversioned

FAISS_KINDS = ("flat", "hnsw", "ivfpq")


@dataclass
class BM25Config(Versioned):
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
class DenseConfig(Versioned):
    """A sentence-transformers bi-encoder and the faiss structure its vectors live in. The batch
    size versions the index: it sets the encoding chunks, whose padding moves vectors by ~1e-7.
    The device does not (fp32 vectors agree across devices to ~1e-6); a reduced precision does."""

    model: str = models.DEFAULT_MODEL
    faiss: str = "flat"
    batch_size: int = 64
    max_seq_length: int | None = None
    query_prompt: str = ""  # "" = the model's own query prompt (none if it has none)
    document_prompt: str = ""  # "" = the model's own document prompt
    precision: str = added("fp32")  # fp16 / bf16: faster on a GPU, vectors move by ~1e-3; fp32, what every index before it used, unsaid
    device: str = unversioned("auto")
    hnsw_m: int = 32
    ef_search: int = 128
    nlist: int | None = None  # IVF cells; default ~4*sqrt(n)
    pq_m: int = 16  # PQ sub-quantisers; must divide the dimension
    nprobe: int = 16

    def check(self) -> None:
        models.check_precision(self.precision)
        models.check_device(self.device)
        if self.faiss not in FAISS_KINDS:
            raise InputError(f"faiss must be one of {', '.join(FAISS_KINDS)}, got {self.faiss!r}", field="faiss")
        if self.batch_size < 1:
            raise InputError("batch size must be >= 1", field="batch_size")


def threads() -> int:
    """Threads Lucene and faiss may use: every core this process sees."""
    return max(1, os.cpu_count() or 1)
