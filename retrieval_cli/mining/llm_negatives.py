"""LLM-written negatives: passages that look relevant to a query but do not answer it ("Don't
Retrieve, Generate"), one prompt per (query, slot), each slot with its own seed, cleaned and
filtered like generated queries."""

from __future__ import annotations

from typing import Any

from retrieval_cli import data as datasets
from retrieval_cli import llm as llmlib
from retrieval_cli.mining import strategies
from retrieval_cli.mining.config import MiningConfig
from retrieval_cli.mining.filters import positives_of
from retrieval_cli.progress import Progress
from retrieval_cli.store import Workspace


def generate_negatives(
    ws: Workspace, data: datasets.Dataset, config: MiningConfig, spec: llmlib.LLMSpec, template: str, progress: Progress,
) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """LLM-written negatives per query (a different seed per slot), cleaned and filtered, with counts."""
    split_qrels = data.split_qrels(config.split)
    count = sum(n for name, n in config.components if strategies.get(name).generated)
    jobs: list[tuple[str, str, int]] = []  # (query id, positive text, slot)
    for qid in data.split_queries(config.split):
        pos = positives_of(qid, split_qrels[qid], data.level(config.split), config)
        if pos:
            jobs.extend((qid, data.doc_text(pos[0]), k) for k in range(count))
    prompts = [
        template.replace("{query}", data.queries[q]).replace("{positive}", " ".join(p.split()[:200])) for q, p, _ in jobs
    ]
    base = config.llm_sampling
    timing: dict[str, float] = {}
    cache = llmlib.Cache(ws.cache("llm"))
    results: list[llmlib.Completion | None] = [None] * len(jobs)
    opened: list[llmlib.Backend] = []

    def backend() -> llmlib.Backend:  # loaded once, and only if something is not cached
        if not opened:
            opened.append(llmlib.open_backend(spec, config.device))
        return opened[0]

    # One generate() call per slot: the same prompt with another seed is another negative.
    for k in range(count):
        slot = [i for i, (_, _, s) in enumerate(jobs) if s == k]
        params = llmlib.SamplingParams(base.max_tokens, base.temperature, base.top_p, base.seed + k, list(base.stop))
        part: dict[str, float] = {}
        out = llmlib.generate(
            backend, spec.fingerprint, [prompts[i] for i in slot], params, cache,
            concurrency=config.concurrency, progress=progress, stage=f"LLM negatives {k + 1}/{count}", timing=part,
        )
        timing["seconds"] = timing.get("seconds", 0.0) + part.get("seconds", 0.0)
        for i, completion in zip(slot, out):
            results[i] = completion
    done = [c for c in results if c is not None]
    llmlib.check_failures(done, config.max_failures)
    kept, rejected = llmlib.accept(
        done, [p for _, p, _ in jobs], [q for q, _, _ in jobs], ("Passage that does not answer", "Passage"),
        config.llm_max_words, config.llm_min_words,
    )
    texts: dict[str, list[str]] = {}
    for (qid, _, _), text in zip(jobs, kept):
        if text is not None:
            texts.setdefault(qid, []).append(text)
    accepted = sum(len(v) for v in texts.values())
    stats = llmlib.job_summary(done, accepted, rejected, timing.get("seconds", 0.0))
    return texts, stats
