"""Training queries made from the corpus itself, for collections that ship no train split.

Two classic methods, each query's positive being the document it came from:

- ``title``: the document title as the query (title → body). Documents sharing a title give one
  query with all of them as positives, so no true positive is later mined as a negative.
- ``ict``: inverse cloze task (Lee et al., 2019, "Latent Retrieval for Weakly Supervised Open
  Domain QA"): one sentence drawn from the passage is the query.

Both copy their query from the positive. ``hide_query`` (on by default; ``--keep-query`` turns it
off) takes the query's text out of the positive a loss sees, as the original ICT removes its
sentence from the context; the positive stays a corpus document that mining and evaluation find
by id. Chosen on a dev split that copies nothing (recipes/results/mining-defaults.md): on
Cranfield, kept titles cost every mining variant 0.02-0.05 dev nDCG@10, while hidden ones with
random negatives gained 0.007 (ranks 31-100 of BM25: -0.005). The exception is BM25's top-ranked
negatives, mined for the title and full of its words: with those, a hidden positive is the one
candidate without the title's words, and the model learns to avoid term overlap (Cranfield test
nDCG@10 0.3278 hidden against 0.3600 kept), hence the mining default skips the top ranks.
``dev_queries`` holds some out as a ``dev`` split that ``train`` scores before and after
training; it is searched the way training saw its positives (hidden or whole), so it measures the
task training was given, copying included.
``dev_method: llm`` instead has the LLM write one query for each held-out document: a dev split
that copies nothing, to choose settings on (the held-out titles or sentences never train).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from retrieval_cli import data as datasets
from retrieval_cli import llm as llmlib
from retrieval_cli import models
from retrieval_cli.errors import InputError
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Artifact, BuildResult, Shard, ShardResult, Versioned, Workspace, unversioned

METHODS = ("title", "ict", "llm")
DEV_SPLIT = "dev"  # where --dev-queries go: the split the trainer evaluates each epoch
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


_LLM_FIELDS = ("llm", "api_key_env", "prompt", "passage_words", "max_words", "sampling", "max_failures")


@dataclass
class QueryGenConfig(Versioned):
    """How pseudo-queries are made; ``max_queries`` samples documents with ``seed``; ``dev_queries``
    holds some out as a dev split made from the training side (never from evaluation queries)."""

    method: str = "title"
    split: str = "train"
    max_queries: int | None = None
    min_words: int = 3
    seed: int = 13
    hide_query: bool = True  # title, ict: training positives leave out the query copied from them
    dev_queries: int = 0  # held out of the split as split "dev", to choose training settings on
    dev_method: str = ""  # "" the same method; llm: the LLM writes the held-out documents' dev queries
    # --method llm only
    llm: str = llmlib.DEFAULT_LLM
    api_key_env: str = ""
    prompt: str = "query.txt"  # a packaged template (retrieval_cli/prompts), or a path
    passage_words: int = 200  # the passage is cut to this many words in the prompt
    max_words: int = 32  # longer outputs are rejected
    sampling: llmlib.SamplingParams = field(default_factory=llmlib.SamplingParams)
    concurrency: int = unversioned(4)  # parallel requests for HTTP backends: how fast, not what
    device: str = unversioned("auto")  # the in-process LLM's layers go to the GPU when there is one
    max_failures: float = 0.05

    def irrelevant(self) -> set[str]:
        out = {"hide_query"} if self.method == "llm" else set()
        if not self.dev_queries or self.dev_method in ("", self.method):
            out.add("dev_method")
        if "llm" not in (self.method, self.dev_method) or (self.method != "llm" and not self.dev_queries):
            out.update(_LLM_FIELDS)
        return out

    def dev_writer(self) -> str:
        """The method that writes the dev queries."""
        return self.dev_method or self.method

    def check(self) -> None:
        models.check_device(self.device)
        if self.method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}", field="method")
        if self.dev_method not in ("", *METHODS):
            raise InputError(f"dev-method must be one of {', '.join(METHODS)}, got {self.dev_method!r}", field="dev_method")
        if self.dev_method and self.dev_method != self.method and self.dev_method != "llm":
            raise InputError(f"dev-method is the same method or llm (an LLM writes for held-out documents), got {self.dev_method!r}", field="dev_method")
        if "llm" in (self.method, self.dev_method):
            self.sampling.check()
            if not 0 <= self.max_failures <= 1:
                raise InputError(f"max-failures must be in [0, 1], got {self.max_failures}", field="max_failures")
        if self.max_queries is not None and self.max_queries < 1:
            raise InputError(f"max-queries must be >= 1, got {self.max_queries}", field="max_queries")
        if self.min_words < 1:
            raise InputError(f"min-words must be >= 1, got {self.min_words}", field="min_words")
        if self.dev_queries < 0:
            raise InputError(f"dev-queries must be >= 0, got {self.dev_queries}", field="dev_queries")
        datasets.check_split_name(self.split)
        if self.dev_queries and self.split == DEV_SPLIT:
            raise InputError(f"the held-out dev queries go to split '{DEV_SPLIT}': choose another --split", field="split")


def overlap(made: list[tuple[str, str, list[str]]], corpus: Any, hidden: bool) -> dict[str, Any]:
    """How much the queries are copies of their positives: the share found verbatim (case and
    spacing ignored) in one, and the mean share of a query's distinct words found in its
    positives. A high verbatim share means training is string matching unless the query is hidden."""
    verbatim = words = 0.0
    for _, text, positives in made:
        query = _normalise(text)
        docs = [_normalise(f"{corpus[d].get('title', '')} {corpus[d]['text']}") for d in positives]
        verbatim += any(query in doc for doc in docs)
        terms = set(query.split())
        found = set().union(*(set(doc.split()) for doc in docs)) if docs else set()
        words += len(terms & found) / len(terms) if terms else 0.0
    n = max(len(made), 1)
    return {"queries": len(made), "verbatim": round(verbatim / n, 4), "word_overlap": round(words / n, 4), "hidden": hidden}


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def sentences(text: str) -> list[str]:
    """Split a passage into sentences at ., ! or ? followed by whitespace."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def title_queries(corpus: dict[str, dict[str, str]], min_words: int) -> list[tuple[str, str, list[str]]]:
    """(query id, text, positive ids) from titles; identical titles (case, spacing) merge."""
    groups: dict[str, list[str]] = {}
    texts: dict[str, str] = {}
    for doc_id, doc in corpus.items():
        title = " ".join(doc.get("title", "").split())
        if len(title.split()) < min_words:
            continue
        key = _normalise(title)
        groups.setdefault(key, []).append(doc_id)
        texts.setdefault(key, title)
    return [(f"title-{ids[0]}", texts[key], ids) for key, ids in groups.items()]


def ict_queries(corpus: dict[str, dict[str, str]], min_words: int, seed: int) -> list[tuple[str, str, list[str]]]:
    """(query id, sentence, [doc id]) for documents with at least two sentences."""
    out = []
    for doc_id, doc in corpus.items():
        parts = sentences(doc["text"])
        eligible = [s for s in parts if len(s.split()) >= min_words]
        if len(parts) < 2 or not eligible:
            continue
        # A per-document generator: the choice for one document never depends on the others.
        sentence = random.Random(f"{seed}/{doc_id}").choice(eligible)
        out.append((f"ict-{doc_id}", sentence, [doc_id]))
    return out


def generate_queries(
    ws: Workspace,
    source: Artifact,
    config: QueryGenConfig,
    *,
    name: str | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """A new dataset artifact: ``source`` plus pseudo-queries as the ``config.split`` split."""
    config.check()
    default_level = int(source.config.get("relevance_level", 1))
    resolved: dict[str, Any] = {"source": "generate-queries", "relevance_level": default_level}
    # A pseudo-query's positive is graded 1, so its split is judged at level 1 (a TREC-DL source's
    # default of 2 would leave it without positives). Recorded only where it differs.
    made_splits = [config.split] + ([DEV_SPLIT] if config.dev_queries else [])
    resolved.update(datasets.levels_record({**source.config.get("split_levels", {}), **dict.fromkeys(made_splits, 1)}, default_level))
    levels = resolved.get("split_levels", {})
    # The dev split is searched as training sees its positives. Neither way is neutral: whole, a
    # copied query finds its document by string matching; hidden, the dev positive is the one
    # document without the query's words. LLM-written dev queries copy nothing.
    copied = [config.split] + ([DEV_SPLIT] if config.dev_queries and config.dev_writer() != "llm" else [])
    hidden = datasets.hidden_query_splits(source) | (set(copied) if config.hide_query and config.method != "llm" else set())
    if hidden:
        resolved["hidden_query_splits"] = sorted(hidden)
    extra: dict[str, Any] = {}
    spec, template = None, ""
    if "llm" in (config.method, config.dev_writer()):
        spec = llmlib.LLMSpec.parse(config.llm, config.api_key_env)
        template = llmlib.load_prompt(config.prompt, "{passage}")
        resolved.update(llm_spec=spec.describe(), llm_fingerprint=spec.fingerprint, prompt_text=template)
    writer = _Writer(ws, config, spec, template, extra, progress)

    def make() -> datasets.Dataset:
        data = datasets.load(source)
        for split in made_splits:
            if split in data.qrels:
                option = "--split" if split == config.split else "no --dev-queries"
                raise InputError(f"dataset '{source.ref}' already has a '{split}' split; choose {option}")
        made = writer.queries(data, source)
        train, dev = writer.divide(data, made)
        extra["overlap"] = overlap(train, data.corpus, config.split in hidden)
        queries = {**data.queries, **{qid: text for qid, text, _ in train + dev}}
        qrels = {**data.qrels, config.split: {qid: {d: 1 for d in positives} for qid, _, positives in train}}
        if dev:
            qrels[DEV_SPLIT] = {qid: {d: 1 for d in positives} for qid, _, positives in dev}
        return datasets.Dataset(data.corpus, queries, qrels, relevance_level=data.relevance_level, split_levels=levels)

    summary_name = name or f"{source.name}-{config.method}"
    return datasets.store(ws, summary_name, config, {"dataset": source}, make, resolved=resolved, extra_summary=extra, force=force)


@dataclass
class _Writer:
    """How one ``generate-queries`` run writes queries: the method's own (title, ICT, LLM), then
    the held-out dev queries (written by the LLM when ``dev_method`` says so) and the sample."""

    ws: Workspace
    config: QueryGenConfig
    spec: Any  # the LLM's, when the method or the dev writer is llm
    template: str
    extra: dict[str, Any]  # counts the summary reports (LLM statistics, overlaps)
    progress: Progress

    def queries(self, data: datasets.Dataset, source: Artifact) -> list[tuple[str, str, list[str]]]:
        """(query id, text, positives) for every document the method could make one from."""
        config = self.config
        self.progress(f"{config.method} queries", 0, len(data.corpus))
        if config.method == "title":
            made = title_queries(data.corpus, config.min_words)
        elif config.method == "ict":
            made = ict_queries(data.corpus, config.min_words, config.seed)
        else:
            made = llm_queries(self.ws, data, config, self.spec, self.template, self.extra, self.progress, _sampled_documents(data, config))
        self.progress(f"{config.method} queries", len(data.corpus), len(data.corpus))
        if not made:
            raise InputError(
                f"no {config.method} queries could be made from '{source.ref}' "
                f"(documents need {'a title' if config.method == 'title' else 'two sentences'} "
                f"of at least {config.min_words} words)"
            )
        clash = next((qid for qid, _, _ in made if qid in data.queries), None)
        if clash:
            raise InputError(f"generated query id '{clash}' already exists in '{source.ref}'")
        return made

    def divide(self, data: datasets.Dataset, made: list[tuple[str, str, list[str]]]) -> tuple[list[Any], list[Any]]:
        """(train, dev): the dev queries held out first, by a generator of their own; --max-queries
        then samples the training queries from the rest (without dev queries, exactly as before)."""
        config = self.config
        if config.dev_queries >= len(made):
            raise InputError(
                f"dev-queries {config.dev_queries} leaves none of the {len(made)} {config.method} queries to train on",
                field="dev_queries",
            )
        held = set(random.Random(f"{config.seed}/dev").sample(range(len(made)), config.dev_queries)) if config.dev_queries else set()
        dev = [m for i, m in enumerate(made) if i in held]
        train = [m for i, m in enumerate(made) if i not in held]
        if dev and config.dev_writer() != config.method:
            # One LLM query per held-out query, written from its first positive; the copied
            # queries of those documents are dropped, so neither they nor the documents train.
            stats: dict[str, Any] = {}
            dev = llm_queries(self.ws, data, config, self.spec, self.template, stats, self.progress,
                              [positives[0] for _, _, positives in dev], stage="LLM dev queries")
            self.extra["dev_llm"] = stats["llm"]
            self.extra["dev_overlap"] = overlap(dev, data.corpus, False)
        if config.method != "llm" and config.max_queries is not None and config.max_queries < len(train):
            keep = set(random.Random(config.seed).sample(range(len(train)), config.max_queries))
            train = [m for i, m in enumerate(train) if i in keep]
        return train, dev


def _sampled_documents(data: datasets.Dataset, config: QueryGenConfig) -> list[str]:
    """The documents ``--method llm`` writes for: ``max_queries`` of those with text, in corpus order."""
    doc_ids = [d for d in data.corpus if data.doc_text(d)]
    if config.max_queries is not None and config.max_queries < len(doc_ids):
        picked = sorted(random.Random(config.seed).sample(range(len(doc_ids)), config.max_queries))
        doc_ids = [doc_ids[i] for i in picked]  # corpus order, without a quadratic index lookup
    return doc_ids


def _llm_prompts(data: datasets.Dataset, doc_ids: list[str], config: QueryGenConfig, template: str) -> tuple[list[str], list[str]]:
    """(passages, prompts) of the documents an LLM writes queries for."""
    passages = [" ".join(data.doc_text(d).split()[:config.passage_words]) for d in doc_ids]
    return passages, [template.replace("{passage}", p) for p in passages]


def query_prompts(data: datasets.Dataset, config: QueryGenConfig, template: str) -> list[str]:
    """The prompts an LLM completes for ``config``: one per sampled document, in the order shards
    split them (and the benchmark hands them to llama-cpp-python directly)."""
    return _llm_prompts(data, _sampled_documents(data, config), config, template)[1]


def generate_shard(
    ws: Workspace, source: Artifact, config: QueryGenConfig, shard: Shard | tuple[int, int], progress: Progress = silent,
) -> ShardResult:
    """Complete every n-th prompt (shard i of n) into the workspace's LLM cache. Shards run
    anywhere that sees the workspace; ``generate_queries`` with the same config then finds every
    completion cached and writes the dataset an unsplit run writes (same version, same files)."""
    config.check()
    if config.method != "llm":
        raise InputError(f"--shard applies to --method llm ({config.method} queries take seconds)", field="shard")
    shard = Shard.of(shard)
    spec = llmlib.LLMSpec.parse(config.llm, config.api_key_env)
    template = llmlib.load_prompt(config.prompt, "{passage}")
    data = datasets.load(source)
    prompts = query_prompts(data, config, template)
    cache = llmlib.Cache(ws.cache("llm"))
    done = llmlib.generate(
        lambda: llmlib.open_backend(spec, config.device), spec.fingerprint, [prompts[u] for u in shard.units(len(prompts))], config.sampling,
        cache, concurrency=config.concurrency, progress=progress, stage=f"LLM queries {shard}",
    )
    return ShardResult(shard, len(done), sum(1 for c in done if not c.cached), len(done), cache.root)


def llm_queries(
    ws: Workspace, data: datasets.Dataset, config: QueryGenConfig, spec: llmlib.LLMSpec, template: str,
    stats: dict[str, Any], progress: Progress, doc_ids: list[str], stage: str = "LLM queries",
) -> list[tuple[str, str, list[str]]]:
    """One LLM-written query per document of ``doc_ids``, cleaned and filtered; counts go to ``stats``."""
    passages, prompts = _llm_prompts(data, doc_ids, config, template)
    timing: dict[str, float] = {}
    done = llmlib.generate(
        lambda: llmlib.open_backend(spec, config.device), spec.fingerprint, prompts, config.sampling,
        llmlib.Cache(ws.cache("llm")), concurrency=config.concurrency, progress=progress, stage=stage,
        timing=timing,
    )
    seconds = timing.get("seconds", 0.0)
    llmlib.check_failures(done, config.max_failures)
    queries, rejected = llmlib.accept(
        done, passages, [""] * len(done), ("Query", "Search query"), config.max_words, config.min_words
    )
    made = [(f"llm-{d}", q, [d]) for d, q in zip(doc_ids, queries) if q is not None]
    stats["llm"] = llmlib.job_summary(done, len(made), rejected, seconds)
    return made

