"""retrieval-cli: an experiment runner for hard-negative mining and dense retrieval benchmarks."""

__version__ = "0.1.0"
