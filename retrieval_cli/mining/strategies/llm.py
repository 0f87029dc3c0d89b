"""LLM-written negatives ("Don't Retrieve, Generate"): passages an LLM writes to look relevant
without answering (``mining.llm_negatives``); they have no document id and bypass the filters."""

from __future__ import annotations

from typing import Any

from retrieval_cli.errors import InputError
from retrieval_cli.mining.strategies.registry import Strategy, register


def check(config: Any) -> None:
    config.llm_sampling.check()
    if not 0 <= config.max_failures <= 1:
        raise InputError(f"max-failures must be in [0, 1], got {config.max_failures}", field="max_failures")


LLM = register(Strategy(
    "llm", "generated passages that look relevant but do not answer (\"Don't Retrieve, Generate\")", None, generated=True,
    uses=frozenset({"llm", "api_key_env", "llm_prompt", "llm_sampling", "llm_max_words", "llm_min_words", "max_failures", "concurrency"}),
    check=check,
))
