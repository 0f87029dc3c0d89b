"""Hard-negative mining: the step whose variants the whole comparison is about.

For each query of a split that has positives, candidates come from a first stage (Lucene BM25 or
a dense faiss index), optionally re-scored by a cross-encoder, and pass through filters in a fixed
order; each dropped candidate is counted once, under the first filter that drops it:

1. ``positive``: a positive of the query itself.
2. ``window``: rank outside ``(range_min, range_max]``; the top ranks are the likeliest unlabeled
   positives (STAR/ADORE, "Optimizing Dense Retrieval Model Training with Hard Negatives").
3. ``max_score``: score above an absolute ceiling (RocketQA-style denoising).
4. ``absolute_margin``: score >= (positive score - m) (LG-ANNA's margin).
5. ``relative_margin``: score >= positive score moved toward -inf by r·|positive score|, i.e. above
   95% of the positive's score for r=0.05 when scores are positive (NV-Embed "TopK-PercPos"); the
   |·| keeps the threshold below the positive when scores are negative.
   (The candidates that survive 1-5 are *eligible*; the false-negative estimate is read off them.)
6. ``judged_relevant``: judged relevant (any positive grade) for this query in any split.
7. ``self``: the query's own id (ArguAna/Quora-style corpora where queries are documents).
8. ``duplicate``: already chosen by an earlier strategy of a mixture.

Filters compare the cross-encoder score when the strategy has one, else the first-stage score,
against the query's *weakest* positive (so a candidate scoring near any judged positive is
dropped). ``random`` negatives are uniform corpus samples (STAR keeps some for stability) and
pass only the id filters (6-8). Exclusion is by id, never by text equality.

The false-negative estimate is the share of the negatives the same selection would keep without
exclusion by judgment that the qrels judge relevant, over queries judged beyond their positives. On pseudo-queries (one judged document each) it is
undefined; on judged queries, ``max_positives`` keeps a few positives for training and holds the
other relevant documents out, simulating sparse labels (MS MARCO's one positive per query) so the
estimate measures how often a strategy's candidates are unlabeled positives ("Hard Negatives or
False Negatives", pooling bias).

Queries are processed in chunks, so memory grows with chunk size × depth, never with the corpus.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from retrieval_cli import datasets, indexing, models
from retrieval_cli import llm as llmlib
from retrieval_cli.artifacts import Artifact, BuildResult, Workspace, atomic_write_text
from retrieval_cli.errors import InputError
from retrieval_cli.progress import Progress, silent

STRATEGIES = ("bm25", "dense", "cross-encoder", "random", "llm")
FIRST_STAGES = ("bm25", "dense")
SAMPLINGS = ("top", "random")
FILTERS = ("positive", "window", "max_score", "absolute_margin", "relative_margin", "judged_relevant", "self", "duplicate")
DEFAULT_NEGATIVES = 4


@dataclass
class MiningConfig:
    """Everything that decides which negatives are mined; the artifact's config."""

    strategy: str = "bm25"  # one strategy, or a mixture with counts: "bm25:3,random:1"
    split: str = "train"
    num_negatives: int | None = None  # per query; a mixture's counts sum to it
    range_min: int = 0  # skip candidates ranked 1..range_min
    range_max: int = 100  # consider candidates ranked up to range_max
    depth: int | None = None  # first-stage candidates per query [default: range_max]
    sampling: str = "top"  # top: best-ranked survivors; random: uniform among survivors
    seed: int = 13
    max_score: float | None = None
    absolute_margin: float | None = None
    relative_margin: float | None = None
    candidates: str = "bm25"  # first stage the cross-encoder re-scores
    model: str = models.DEFAULT_MODEL  # bi-encoder for dense candidates (when no dense index is given)
    cross_encoder: str | None = None
    max_positives: int | None = None  # use at most this many positives per query (sparse labels, as MS MARCO)
    # strategy llm: generated passages that look relevant but do not answer ("Don't Retrieve, Generate")
    llm: str = llmlib.DEFAULT_LLM
    api_key_env: str = ""
    llm_prompt: str = "negative.txt"
    llm_sampling: llmlib.SamplingParams = field(default_factory=lambda: llmlib.SamplingParams(max_tokens=96, temperature=0.8))
    llm_max_words: int = 120
    llm_min_words: int = 5
    concurrency: int = 4  # parallel requests for HTTP LLM backends (not part of the version)
    max_failures: float = 0.05
    batch_size: int = 32  # cross-encoder batch size
    chunk_size: int = 256  # queries searched and scored together
    components: list[tuple[str, int]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.components = parse_strategy(self.strategy, self.num_negatives)

    @property
    def first_stage_depth(self) -> int:
        return self.depth if self.depth is not None else self.range_max

    @property
    def label(self) -> str:
        """A name fragment: ``bm25`` or ``bm25-3-random-1``."""
        if len(self.components) == 1:
            return self.components[0][0]
        return "-".join(f"{s}-{n}" for s, n in self.components)

    def engines(self) -> set[str]:
        """First-stage engines the strategies need."""
        needed = {s for s, _ in self.components if s in FIRST_STAGES}
        if any(s == "cross-encoder" for s, _ in self.components):
            needed.add(self.candidates)
        return needed

    def check(self) -> None:
        """Every option in its range, before any work starts."""
        if self.candidates not in FIRST_STAGES:
            raise InputError(f"candidates must be bm25 or dense, got {self.candidates!r}", field="candidates")
        if self.sampling not in SAMPLINGS:
            raise InputError(f"sampling must be top or random, got {self.sampling!r}", field="sampling")
        if self.range_min < 0:
            raise InputError(f"range-min must be >= 0, got {self.range_min}", field="range_min")
        if self.range_max <= self.range_min:
            raise InputError(
                f"the window (range-min {self.range_min}, range-max {self.range_max}] holds no rank: "
                "range-max must be greater than range-min", field="range_max",
            )
        if self.depth is not None and self.depth < self.range_max:
            raise InputError(
                f"depth {self.depth} is below range-max {self.range_max}: ranks past the depth are never retrieved",
                field="depth",
            )
        if self.absolute_margin is not None and self.absolute_margin < 0:
            raise InputError(f"absolute-margin must be >= 0, got {self.absolute_margin}", field="absolute_margin")
        if self.relative_margin is not None and not 0 <= self.relative_margin < 1:
            raise InputError(f"relative-margin must be in [0, 1), got {self.relative_margin}", field="relative_margin")
        if any(s == "llm" for s, _ in self.components):
            self.llm_sampling.check()
            if not 0 <= self.max_failures <= 1:
                raise InputError(f"max-failures must be in [0, 1], got {self.max_failures}", field="max_failures")
        if self.max_positives is not None and self.max_positives < 1:
            raise InputError(f"max-positives must be >= 1, got {self.max_positives}", field="max_positives")
        if self.batch_size < 1 or self.chunk_size < 1:
            raise InputError("batch-size and chunk-size must be >= 1", field="batch_size")
        if any(s == "cross-encoder" for s, _ in self.components) and not self.cross_encoder:
            raise InputError(
                "strategy cross-encoder needs --cross-encoder MODEL (a hub id such as "
                "cross-encoder/ms-marco-MiniLM-L6-v2, or a model trained with 'retrieval-cli train --kind cross-encoder')",
                field="cross_encoder",
            )
        datasets.check_split_name(self.split)


def parse_strategy(text: str, num_negatives: int | None) -> list[tuple[str, int]]:
    """``bm25`` → [("bm25", n)]; ``bm25:3,random:1`` → [("bm25", 3), ("random", 1)].

    In a mixture the counts are negatives per query; ``num_negatives``, if given, must equal
    their sum (so a typo cannot silently change the training budget).
    """
    if num_negatives is not None and num_negatives < 1:
        raise InputError(f"num-negatives must be >= 1, got {num_negatives}", field="num_negatives")
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 1 and ":" not in parts[0]:
        if parts[0] not in STRATEGIES:
            raise InputError(f"unknown strategy {parts[0]!r}: use {', '.join(STRATEGIES)} or a mixture like bm25:3,random:1", field="strategy")
        return [(parts[0], num_negatives or DEFAULT_NEGATIVES)]
    components: list[tuple[str, int]] = []
    for part in parts:
        match = re.fullmatch(r"([a-z0-9-]+):(\d+)", part)
        if not match:
            raise InputError(f"mixture part {part!r} must be STRATEGY:COUNT, e.g. bm25:3", field="strategy")
        name, count = match.group(1), int(match.group(2))
        if name not in STRATEGIES:
            raise InputError(f"unknown strategy {name!r} in mixture: use {', '.join(STRATEGIES)}", field="strategy")
        if count < 1:
            raise InputError(f"mixture count for {name} must be >= 1", field="strategy")
        if name in (s for s, _ in components):
            raise InputError(f"strategy {name!r} appears twice in the mixture", field="strategy")
        components.append((name, count))
    total = sum(n for _, n in components)
    if num_negatives is not None and num_negatives != total:
        raise InputError(f"num-negatives {num_negatives} differs from the mixture's total {total}", field="num_negatives")
    return components


@dataclass
class Candidate:
    """One candidate of one strategy: its rank in the order the strategy selects by."""

    doc_id: str
    rank: int | None
    score: float | None  # the score filters compare (cross-encoder score when there is one)
    first_stage_score: float | None = None
    first_stage_rank: int | None = None


@dataclass
class QueryContext:
    """What the filters need to know about one query."""

    query_id: str
    positives: set[str]
    judged_relevant: set[str]  # any positive grade in any split
    positive_score: float | None  # weakest positive's score in the strategy's scorer


@dataclass
class Selection:
    kept: list[Candidate]
    eligible: int  # candidates that passed filters 1-5
    eligible_judged_relevant: int
    # The same sampling without exclusion by judgment: how many it picks, and how many of those
    # the qrels judge relevant. Their ratio is the false-negative rate the exclusion prevented.
    unexcluded: int = 0
    unexcluded_relevant: int = 0


def relative_threshold(positive: float, margin: float) -> float:
    """The score at and above which a candidate is dropped: the positive moved down by margin·|positive|.

    ``pos * (1 - r)`` would move a negative positive score *up*, letting through candidates that
    outscore the positive; subtracting ``r * |pos|`` keeps the threshold below it in both cases.
    """
    return positive - margin * abs(positive)


def select(
    candidates: Iterable[Candidate],
    context: QueryContext,
    config: MiningConfig,
    count: int,
    taken: set[str],
    rng: random.Random,
    dropped: Counter,
) -> Selection:
    """Apply the filters in the module's order and pick ``count`` negatives (top or random)."""
    pool: list[Candidate] = []
    shadow: list[Candidate] = []  # the pool as it would be without exclusion by judgment
    eligible = eligible_relevant = 0
    pos = context.positive_score
    for cand in candidates:
        score = cand.score
        if cand.doc_id in context.positives:
            reason = "positive"
        elif cand.rank is not None and not config.range_min < cand.rank <= config.range_max:
            reason = "window"
        elif config.max_score is not None and score is not None and score > config.max_score:
            reason = "max_score"
        elif config.absolute_margin is not None and score is not None and pos is not None and score >= pos - config.absolute_margin:
            reason = "absolute_margin"
        elif config.relative_margin is not None and score is not None and pos is not None and score >= relative_threshold(pos, config.relative_margin):
            reason = "relative_margin"
        else:
            reason = ""
        if not reason:
            eligible += 1
            relevant = cand.doc_id in context.judged_relevant
            eligible_relevant += relevant
            if cand.doc_id != context.query_id and cand.doc_id not in taken:
                shadow.append(cand)  # what exclusion by judgment alone removes from the pool
            if relevant:
                reason = "judged_relevant"
            elif cand.doc_id == context.query_id:
                reason = "self"
            elif cand.doc_id in taken:
                reason = "duplicate"
        if reason:
            dropped[reason] += 1
        else:
            pool.append(cand)
    shadow_rng = random.Random()
    shadow_rng.setstate(rng.getstate())  # the same draw the real pool gets, without changing it
    kept = _sample(pool, count, config.sampling, rng)
    unexcluded = _sample(shadow, count, config.sampling, shadow_rng)
    unexcluded_relevant = sum(1 for c in unexcluded if c.doc_id in context.judged_relevant)
    return Selection(kept, eligible, eligible_relevant, len(unexcluded), unexcluded_relevant)


def _sample(pool: list[Candidate], count: int, sampling: str, rng: random.Random) -> list[Candidate]:
    """``count`` candidates: the first ones (top) or a uniform draw kept in rank order (random)."""
    if sampling == "random" and len(pool) > count:
        return [pool[i] for i in sorted(rng.sample(range(len(pool)), count))]
    return pool[:count]


def random_candidates(doc_ids: Sequence[str], count: int, avoid: set[str], rng: random.Random) -> Iterator[Candidate]:
    """Uniform corpus samples without replacement, skipping ``avoid`` (a few draws beyond ``count``)."""
    wanted = min(len(doc_ids), count + len(avoid))
    for i in rng.sample(range(len(doc_ids)), wanted):
        yield Candidate(doc_ids[i], None, None)


def _rng(seed: int, strategy: str, query_id: str) -> random.Random:
    # Seeded per (seed, strategy, query): results never depend on chunking or query order.
    return random.Random(f"{seed}/{strategy}/{query_id}")


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _summarise(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "median": None}
    return {"mean": round(statistics.fmean(values), 4), "median": round(statistics.median(values), 4)}


class _Scorers:
    """The engines a mining run uses, opened once: first stages and an optional cross-encoder."""

    def __init__(
        self, ws: Workspace, indexes: dict[str, Artifact], cross_encoder: models.ModelSpec | None,
        batch_size: int, progress: Progress,
    ) -> None:
        self.batch_size = batch_size
        self.progress = progress
        self.scored = 0
        self.engines = sorted(indexes)
        self.bm25 = indexing.BM25IndexSearcher(indexes["bm25"]) if "bm25" in indexes else None
        self.dense = indexing.DenseSearcher(ws, indexes["dense"], silent) if "dense" in indexes else None
        self.cross = models.load_cross_encoder(cross_encoder) if cross_encoder else None

    def first_stage(self, engine: str, queries: dict[str, str], positives: dict[str, list[str]], depth: int) -> tuple[dict[str, list[tuple[str, float]]], dict[str, dict[str, float]]]:
        """Top-``depth`` hits and the positives' scores, by the same engine, for a chunk of queries."""
        if engine == "bm25":
            assert self.bm25 is not None
            hits = self.bm25.search(queries, depth)
            pairs = [(queries[q], d) for q in queries for d in positives[q]]
            flat = iter(self.bm25.score(pairs))
            return hits, {q: {d: next(flat) for d in positives[q]} for q in queries}
        assert self.dense is not None
        qids = list(queries)
        vectors = self.dense.encode_queries(queries)
        hits = self.dense.search_vectors(qids, vectors, depth)
        return hits, {q: dict(zip(positives[q], self.dense.score(vectors[i], positives[q]))) for i, q in enumerate(qids)}

    def cross_scores(self, pairs: list[tuple[str, str]]) -> list[float]:
        """Cross-encoder scores of (query text, document text) pairs."""
        assert self.cross is not None
        scores: list[float] = []
        step = self.batch_size * 32
        for start in range(0, len(pairs), step):
            batch = pairs[start:start + step]
            scores.extend(float(s) for s in self.cross.predict(batch, batch_size=self.batch_size, show_progress_bar=False))
            self.scored += len(batch)
            self.progress("cross-encoder pairs", self.scored, None)
        return scores


def _resolve_indexes(
    ws: Workspace, dataset: Artifact, config: MiningConfig, given: list[Artifact], progress: Progress
) -> dict[str, Artifact]:
    """One index per needed engine: the ones given (checked against the dataset), the rest built or reused."""
    indexes: dict[str, Artifact] = {}
    for index in given:
        kind = index.config.get("kind")
        if kind not in FIRST_STAGES:
            raise InputError(f"'{index.ref}' is not a bm25 or dense index", field="index")
        if kind in indexes:
            raise InputError(f"two {kind} indexes given ({indexes[kind].ref}, {index.ref}); give one", field="index")
        corpus_of = indexing.index_dataset(ws, index)
        if corpus_of.manifest["files"].get("corpus.jsonl") != dataset.manifest["files"].get("corpus.jsonl"):
            raise InputError(f"index '{index.ref}' was built on '{corpus_of.ref}', whose corpus differs from '{dataset.ref}'", field="index")
        indexes[kind] = index
    for engine in sorted(config.engines() - set(indexes)):
        if engine == "bm25":
            indexes["bm25"] = indexing.build_bm25(ws, dataset, indexing.BM25Config(), progress=progress).artifact
        else:
            indexes["dense"] = indexing.build_dense(ws, dataset, indexing.DenseConfig(model=config.model), progress=progress).artifact
    return {k: v for k, v in indexes.items() if k in config.engines()}


def mine_negatives(
    ws: Workspace,
    dataset: Artifact,
    config: MiningConfig,
    *,
    indexes: list[Artifact] | None = None,
    name: str | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Mine negatives for every query of ``config.split`` that has positives; a negatives artifact.
    Chunks that an interrupted run or ``mine_shard`` finished are taken as they are."""
    job = _prepare(ws, dataset, config, indexes, name, progress)
    if force:
        shutil.rmtree(job.parts, ignore_errors=True)
    result = ws.build("negatives", job.name, job.resolved, job.inputs, job.run, force=force)
    shutil.rmtree(job.parts, ignore_errors=True)  # the artifact supersedes its chunks
    return result


def mine_shard(
    ws: Workspace,
    dataset: Artifact,
    config: MiningConfig,
    shard: tuple[int, int],
    *,
    indexes: list[Artifact] | None = None,
    name: str | None = None,
    progress: Progress = silent,
) -> ShardResult:
    """Mine shard i of n (query chunks c with c % n == i) into the workspace cache. Shards run
    anywhere that sees the workspace; ``mine_negatives`` with the same arguments then assembles
    the artifact, with the version id and the bytes of a run that was never split."""
    job = _prepare(ws, dataset, config, indexes, name, progress)
    existing = ws.find("negatives", job.name, job.version)
    if existing is None:
        job.run(None, shard)
    return ShardResult(shard, job.parts, reused=existing is not None)


@dataclass
class _Job:
    """A mining run, resolved: its artifact's name, config and inputs, and how to mine it."""

    name: str
    version: str
    resolved: dict[str, Any]
    inputs: dict[str, Artifact]
    parts: Path  # finished chunks of this exact version (an interrupted run, or shards)
    run: Callable[..., dict[str, Any]]  # (folder | None, shard | None) -> summary


def _prepare(
    ws: Workspace, dataset: Artifact, config: MiningConfig, indexes: list[Artifact] | None, name: str | None, progress: Progress,
) -> _Job:
    config.check()
    datasets.split_counts(dataset, config.split)
    cross_spec = models.resolve(config.cross_encoder, ws) if config.cross_encoder else None
    engines = _resolve_indexes(ws, dataset, config, list(indexes or []), progress)
    resolved = {k: v for k, v in asdict(config).items() if k != "components"}
    resolved["components"] = [list(c) for c in config.components]
    # Options that cannot change the result do not change the version either.
    resolved["depth"] = config.first_stage_depth
    resolved["model"] = engines["dense"].config.get("model") if "dense" in engines else None
    if not any(s == "cross-encoder" for s, _ in config.components):
        resolved["candidates"] = None
    if cross_spec is not None:
        resolved["cross_encoder_fingerprint"] = cross_spec.fingerprint
    del resolved["concurrency"]  # how fast, not what
    llm_spec = None
    if any(s == "llm" for s, _ in config.components):
        llm_spec = llmlib.LLMSpec.parse(config.llm, config.api_key_env)
        resolved.update(
            llm_spec=llm_spec.describe(), llm_fingerprint=llm_spec.fingerprint,
            llm_prompt_text=llmlib.load_prompt(config.llm_prompt, "{query}"),
        )
    else:
        for key in ("llm", "api_key_env", "llm_prompt", "llm_sampling", "llm_max_words", "llm_min_words", "max_failures"):
            del resolved[key]
    inputs: dict[str, Artifact] = {"dataset": dataset, **{f"{k}_index": v for k, v in engines.items()}}
    if cross_spec is not None and cross_spec.artifact is not None:
        inputs["cross_encoder"] = cross_spec.artifact

    name = name or f"{dataset.name}-{config.label}"
    version = ws.version_of("negatives", resolved, inputs)
    parts = ws.root / ".cache" / "mining" / f"{name}@{version}"

    def run(folder: Path | None, shard: tuple[int, int] | None = None) -> dict[str, Any]:
        data = datasets.load(dataset, lazy_corpus=True)  # texts read on demand: flat in corpus size
        generated = None
        if llm_spec is not None:
            generated = _generate_negatives(ws, data, config, llm_spec, resolved["llm_prompt_text"], progress)
        return _mine(ws, data, config, engines, cross_spec, folder, progress, generated, parts=parts, shard=shard)

    return _Job(name, version, resolved, inputs, parts, run)


@dataclass
class ShardResult:
    """One shard of a mining run: where its chunks are, and whether the artifact already existed."""

    shard: tuple[int, int]
    parts: Path
    reused: bool


def _mine(
    ws: Workspace, data: datasets.Dataset, config: MiningConfig, engines: dict[str, Artifact],
    cross_spec: models.ModelSpec | None, folder: Path | None, progress: Progress,
    generated: tuple[dict[str, list[str]], dict[str, Any]] | None = None,
    *, parts: Path | None = None, shard: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Mine chunk by chunk (``config.chunk_size`` queries). Each finished chunk is kept in
    ``parts`` (one file per chunk), so an interrupted run, or shards run elsewhere, leave work the
    next run takes as it is; a chunk's lines and statistics do not depend on the other chunks, so
    any split gives the same bytes. With ``shard`` (i, n), only chunks c with c % n == i are mined
    and nothing is written to ``folder``."""
    split_qrels = data.split_qrels(config.split)
    queries = data.split_queries(config.split)
    level = data.relevance_level
    positives = {q: _positives(q, split_qrels[q], level, config) for q in queries}
    with_positives = [q for q in queries if positives[q]]
    judged: dict[str, dict[str, int]] = {}
    for split_judgments in data.qrels.values():
        for q, docs in split_judgments.items():
            if q in queries:
                target = judged.setdefault(q, {})
                for d, g in docs.items():
                    target[d] = max(g, target.get(d, g))
    doc_ids = data.doc_ids()
    scorers = _Scorers(ws, engines, cross_spec, config.batch_size, progress)
    wanted = sum(n for _, n in config.components)
    stats = _Stats(wanted=wanted, queries=len(queries), processed=len(with_positives))
    chunks = list(_chunks(with_positives, config.chunk_size))
    mine = [c for c in range(len(chunks)) if shard is None or c % shard[1] == shard[0]]
    total = sum(len(chunks[c]) for c in mine)
    progress("mine negatives", 0, total)
    done = 0
    out = open(folder / "negatives.jsonl", "w", encoding="utf-8") if folder is not None else None
    try:
        for c in mine:
            chunk = chunks[c]
            part = parts / f"chunk-{c}.json" if parts is not None else None
            kept = _read_part(part, chunk) if part is not None else None
            if kept is None:
                kept = _mine_chunk(
                    chunk, queries, positives, judged, data, config, scorers, doc_ids, _Stats(wanted=wanted, queries=0, processed=0), generated,
                )
                if part is not None:
                    atomic_write_text(part, json.dumps({"queries": chunk, "lines": kept[0], "stats": kept[1].state()}))
            lines, chunk_stats = kept
            stats.merge(chunk_stats)
            if out is not None:
                out.writelines(line + "\n" for line in lines)
            done += len(chunk)
            progress("mine negatives", done, total)
    finally:
        if out is not None:
            out.close()
    summary = stats.as_dict()
    if generated:
        summary["llm"] = generated[1]
    if folder is not None:
        (folder / "stats.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _read_part(path: Path, chunk: list[str]) -> tuple[list[str], _Stats] | None:
    """A finished chunk from an earlier run or a shard, if it is whole and for these queries."""
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved["queries"] != chunk:
            return None
        return list(saved["lines"]), _Stats.from_state(saved["stats"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # damaged: mined again, never trusted


def _mine_chunk(
    chunk: list[str], queries: dict[str, str], positives: dict[str, list[str]], judged: dict[str, dict[str, int]],
    data: datasets.Dataset, config: MiningConfig, scorers: _Scorers, doc_ids: Sequence[str], stats: _Stats,
    generated: tuple[dict[str, list[str]], dict[str, Any]] | None,
) -> tuple[list[str], _Stats]:
    """One chunk of queries: first stages, cross-encoder scores, selection; (JSON lines, statistics)."""
    has_cross = scorers.cross is not None
    depth = config.first_stage_depth
    engines = sorted(scorers.engines)
    chunk_queries = {q: queries[q] for q in chunk}
    chunk_positives = {q: positives[q] for q in chunk}
    hits: dict[str, dict[str, list[tuple[str, float]]]] = {}
    pos_scores: dict[str, dict[str, dict[str, float]]] = {}
    for engine in engines:
        hits[engine], pos_scores[engine] = scorers.first_stage(engine, chunk_queries, chunk_positives, depth)
    ce: dict[tuple[str, str], float] = {}
    if has_cross:
        # Score every positive and every candidate the cross-encoder strategy sees.
        wanted = {(q, d) for q in chunk for d in positives[q]}
        if any(s == "cross-encoder" for s, _ in config.components):
            wanted |= {(q, d) for q in chunk for d, _ in hits[config.candidates][q]}
        ce.update(_cross(scorers, sorted(wanted), queries, data))
    results = [
        _mine_query(
            q, queries[q], positives[q], judged.get(q, {}), hits, pos_scores, ce, config, doc_ids, stats.dropped,
            generated[0].get(q, []) if generated else [],
        )
        for q in chunk
    ]
    if has_cross:
        # Teacher scores for every kept negative and positive (TAS-B style distillation).
        missing = sorted({(r["query_id"], n["doc_id"]) for r, _ in results for n in r["negatives"] if n["doc_id"]} - set(ce))
        ce.update(_cross(scorers, missing, queries, data))
        texts = [(r["query_id"], n["text"]) for r, _ in results for n in r["negatives"] if not n["doc_id"]]
        text_scores = dict(zip(texts, scorers.cross_scores([(queries[q], t) for q, t in texts]) if texts else []))
        for record, _ in results:
            for n in record["negatives"]:
                key = (record["query_id"], n["doc_id"] or n["text"])
                n["ce_score"] = ce[key] if n["doc_id"] else text_scores[key]
            for p in record["positives"]:
                p["scores"]["cross-encoder"] = ce[(record["query_id"], p["doc_id"])]
    lines = []
    for record, counts in results:
        lines.append(json.dumps(record, ensure_ascii=False))
        q = record["query_id"]
        stats.add(record, counts, judged.get(q, {}), positives[q])
    return lines, stats


@dataclass
class _Stats:
    """What a researcher reads first about a mining run, accumulated query by query."""

    wanted: int
    queries: int
    processed: int
    dropped: Counter = field(default_factory=Counter)
    by_strategy: Counter = field(default_factory=Counter)
    ranks: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    ce_scores: list[float] = field(default_factory=list)
    short: int = 0
    judged_kept: int = 0
    unjudged_kept: int = 0
    estimate_queries: int = 0
    eligible: int = 0
    eligible_relevant: int = 0
    unexcluded: int = 0
    unexcluded_relevant: int = 0

    def add(self, record: dict[str, Any], counts: Counter, judged: dict[str, int], positives: list[str]) -> None:
        self.short += len(record["negatives"]) < self.wanted
        if set(judged) - set(positives):  # judged beyond its positives: the estimate can see false negatives
            self.estimate_queries += 1
            self.eligible += counts["eligible"]
            self.eligible_relevant += counts["eligible_judged_relevant"]
            self.unexcluded += counts["unexcluded"]
            self.unexcluded_relevant += counts["unexcluded_relevant"]
        for n in record["negatives"]:
            self.by_strategy[n["strategy"]] += 1
            for value, sink in ((n["rank"], self.ranks), (n["score"], self.scores), (n["ce_score"], self.ce_scores)):
                if value is not None:
                    sink.append(value)
            if n["doc_id"] in judged:
                self.judged_kept += 1
            else:
                self.unjudged_kept += 1

    _COUNTS = ("short", "judged_kept", "unjudged_kept", "estimate_queries", "eligible", "eligible_relevant", "unexcluded", "unexcluded_relevant")
    _LISTS = ("ranks", "scores", "ce_scores")

    def state(self) -> dict[str, Any]:
        """The accumulated values (not the summary), so chunks mined apart merge exactly."""
        return {
            **{k: getattr(self, k) for k in self._COUNTS + self._LISTS},
            "dropped": dict(self.dropped), "by_strategy": dict(self.by_strategy),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Stats:
        stats = cls(wanted=0, queries=0, processed=0)
        for key in cls._COUNTS:
            setattr(stats, key, int(state[key]))
        for key in cls._LISTS:
            setattr(stats, key, [float(v) for v in state[key]])
        stats.dropped, stats.by_strategy = Counter(state["dropped"]), Counter(state["by_strategy"])
        return stats

    def merge(self, other: _Stats) -> None:
        """Add a later chunk's values: lists keep chunk order, so summaries equal a single pass's."""
        for key in self._COUNTS:
            setattr(self, key, getattr(self, key) + getattr(other, key))
        for key in self._LISTS:
            getattr(self, key).extend(getattr(other, key))
        self.dropped.update(other.dropped)
        self.by_strategy.update(other.by_strategy)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "processed": self.processed,
            "skipped_without_positives": self.queries - self.processed,
            "short_of_negatives": self.short,
            "negatives": sum(self.by_strategy.values()),
            "by_strategy": dict(sorted(self.by_strategy.items())),
            "dropped": {f: self.dropped.get(f, 0) for f in FILTERS},
            "rank": _summarise(self.ranks),
            "score": _summarise(self.scores),
            "ce_score": _summarise(self.ce_scores),
            "judged_kept": self.judged_kept,
            "unjudged_kept": self.unjudged_kept,
            "false_negative_estimate": {
                # Over queries judged beyond their positives. rate: share of the negatives the
                # same selection would keep without exclusion by judgment that the qrels judge
                # relevant. eligible_rate: the same share over every candidate past the window
                # and score filters (what random sampling would draw from).
                "queries": self.estimate_queries,
                "would_keep": self.unexcluded,
                "judged_relevant": self.unexcluded_relevant,
                "rate": _ratio(self.unexcluded_relevant, self.unexcluded),
                "eligible": self.eligible,
                "eligible_judged_relevant": self.eligible_relevant,
                "eligible_rate": _ratio(self.eligible_relevant, self.eligible),
            },
        }


def _positives(qid: str, judged: dict[str, int], level: int, config: MiningConfig) -> list[str]:
    """The query's training positives: every document at or above the relevance level, or, with
    ``max_positives``, that many drawn (seeded) from the highest grades. The rest stay judged
    relevant, so they are excluded as negatives and show up in the false-negative estimate."""
    relevant = sorted(d for d, g in judged.items() if g >= level)
    if config.max_positives is None or len(relevant) <= config.max_positives:
        return relevant
    shuffled = relevant[:]
    _rng(config.seed, "positives", qid).shuffle(shuffled)
    shuffled.sort(key=lambda d: -judged[d])  # stable: random order within a grade
    return sorted(shuffled[:config.max_positives])


def _generate_negatives(
    ws: Workspace, data: datasets.Dataset, config: MiningConfig, spec: llmlib.LLMSpec, template: str, progress: Progress,
) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """LLM-written negatives per query (a different seed per slot), cleaned and filtered, with counts."""
    split_qrels = data.split_qrels(config.split)
    count = dict(config.components)["llm"]
    jobs: list[tuple[str, str, int]] = []  # (query id, positive text, slot)
    for qid in data.split_queries(config.split):
        pos = _positives(qid, split_qrels[qid], data.relevance_level, config)
        if pos:
            jobs.extend((qid, data.doc_text(pos[0]), k) for k in range(count))
    prompts = [
        template.replace("{query}", data.queries[q]).replace("{positive}", " ".join(p.split()[:200])) for q, p, _ in jobs
    ]
    base = config.llm_sampling
    timing: dict[str, float] = {}
    cache = llmlib.Cache(ws.root / ".cache" / "llm")
    results: list[llmlib.Completion | None] = [None] * len(jobs)
    opened: list[llmlib.Backend] = []

    def backend() -> llmlib.Backend:  # loaded once, and only if something is not cached
        if not opened:
            opened.append(llmlib.open_backend(spec))
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


def _cross(scorers: _Scorers, pairs: list[tuple[str, str]], queries: dict[str, str], data: datasets.Dataset) -> dict[tuple[str, str], float]:
    if not pairs:
        return {}
    scores = scorers.cross_scores([(queries[q], data.doc_text(d)) for q, d in pairs])
    return dict(zip(pairs, scores))


def _mine_query(
    qid: str,
    text: str,
    positives: list[str],
    judged: dict[str, int],
    hits: dict[str, dict[str, list[tuple[str, float]]]],
    pos_scores: dict[str, dict[str, dict[str, float]]],
    ce: dict[tuple[str, str], float],
    config: MiningConfig,
    doc_ids: Sequence[str],
    dropped: Counter,
    generated: list[str],
) -> tuple[dict[str, Any], Counter]:
    """One query's negatives record, and its eligible counts for the false-negative estimate."""
    context = QueryContext(qid, set(positives), {d for d, g in judged.items() if g > 0}, None)
    taken: set[str] = set()
    negatives: list[dict[str, Any]] = []
    counts: Counter = Counter()
    for strategy, count in config.components:
        rng = _rng(config.seed, strategy, qid)
        if strategy == "llm":
            negatives.extend(
                {"doc_id": None, "text": t, "strategy": "llm", "rank": None, "score": None, "ce_score": None}
                for t in generated[:count]
            )
            continue
        if strategy == "random":
            context.positive_score = None
            avoid = context.positives | context.judged_relevant | taken | {qid}
            selection = select(random_candidates(doc_ids, count, avoid, rng), context, config, count, taken, rng, Counter())
        else:
            engine = config.candidates if strategy == "cross-encoder" else strategy
            ranked = hits[engine][qid]
            if strategy == "cross-encoder":
                rescored = sorted(
                    ((d, s, r) for r, (d, s) in enumerate(ranked, start=1)),
                    key=lambda item: (-ce[(qid, item[0])], item[2]),
                )
                candidates = [
                    Candidate(d, rank, ce[(qid, d)], s, first_rank) for rank, (d, s, first_rank) in enumerate(rescored, start=1)
                ]
                context.positive_score = min(ce[(qid, p)] for p in positives)
            else:
                candidates = [Candidate(d, r, s, s, r) for r, (d, s) in enumerate(ranked, start=1)]
                context.positive_score = min(pos_scores[engine][qid][p] for p in positives)
            selection = select(candidates, context, config, count, taken, rng, dropped)
            counts["eligible"] += selection.eligible
            counts["eligible_judged_relevant"] += selection.eligible_judged_relevant
            counts["unexcluded"] += selection.unexcluded
            counts["unexcluded_relevant"] += selection.unexcluded_relevant
        for cand in selection.kept:
            taken.add(cand.doc_id)
            negatives.append({
                "doc_id": cand.doc_id,
                "strategy": strategy,
                "rank": cand.rank,
                "score": cand.first_stage_score,
                "ce_score": ce.get((qid, cand.doc_id)) if strategy == "cross-encoder" else None,
                **({"first_stage_rank": cand.first_stage_rank} if strategy == "cross-encoder" else {}),
            })
    record = {
        "query_id": qid,
        "query": text,
        "positives": [
            {"doc_id": p, "scores": {engine: pos_scores[engine][qid][p] for engine in sorted(pos_scores)}}
            for p in positives
        ],
        "negatives": negatives,
    }
    return record, counts

