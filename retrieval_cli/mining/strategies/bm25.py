"""BM25 negatives: documents Lucene ranks high for the query that are not its positives."""

from retrieval_cli.mining.strategies.registry import Strategy, ranked_pool, register

BM25 = register(Strategy("bm25", "BM25's top-ranked documents (Lucene)", ranked_pool, ranking="bm25"))
