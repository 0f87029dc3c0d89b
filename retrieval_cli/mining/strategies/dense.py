"""Dense negatives: documents a bi-encoder ranks high (``model``, or a trained model in a round)."""

from retrieval_cli.mining.strategies.registry import Strategy, ranked_pool, register

DENSE = register(Strategy("dense", "a bi-encoder's top-ranked documents (faiss; a round's trained model)", ranked_pool, ranking="dense"))
