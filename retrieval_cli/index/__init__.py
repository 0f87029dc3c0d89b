"""Index artifacts: Lucene BM25 (through Pyserini's Anserini) and dense faiss indexes, the corpus
encoding and its embedding cache, and searching any of them."""

from retrieval_cli.index.bm25 import BM25IndexSearcher, build_bm25
from retrieval_cli.index.config import FAISS_KINDS, BM25Config, DenseConfig
from retrieval_cli.index.dense import DenseSearcher, build_dense
from retrieval_cli.index.encoding import (
    corpus_embeddings,
    embedding_cache,
    encode_shard,
    encode_texts,
    encoding_chunks,
    sort_lengths,
    token_lengths,
)
from retrieval_cli.index.search import Searcher, by_engine, ensure, index_dataset, open_searcher

__all__ = [
    "FAISS_KINDS", "BM25Config", "BM25IndexSearcher", "DenseConfig", "DenseSearcher", "Searcher", "build_bm25", "build_dense",
    "by_engine", "corpus_embeddings", "embedding_cache", "encode_shard", "encode_texts", "encoding_chunks", "ensure",
    "index_dataset", "open_searcher", "sort_lengths", "token_lengths",
]
