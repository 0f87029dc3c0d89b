"""Mining strategies, one module each, registered on import (``registry`` says what one is)."""

# Registered in this order, the order the CLI and errors list them in.
from retrieval_cli.mining.strategies import bm25, dense, hybrid, cross_encoder, random, llm, simans  # noqa: F401, I001 - registers them
from retrieval_cli.mining.strategies.registry import CANDIDATES, Offer, Pool, Strategy, get, help_text, names, register

__all__ = ["CANDIDATES", "Offer", "Pool", "Strategy", "get", "help_text", "names", "register"]
