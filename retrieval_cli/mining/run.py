"""Hard-negative mining: the step whose variants the whole comparison is about.

For each query of a split that has positives, candidates come from a first stage (Lucene BM25 or
a dense faiss index), optionally re-scored by a cross-encoder, and pass through the filters of
``mining.filters`` in a fixed order; each dropped candidate is counted once:

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
9. ``judge``: with ``--judge``, a kept negative the LLM judge calls relevant (``mining.judge``),
   dropped after selection, or with ``--judge-relabel`` made a positive.

Filters compare the cross-encoder score when the strategy has one, else the first-stage score,
against the query's *weakest* positive (so a candidate scoring near any judged positive is
dropped). ``random`` negatives are uniform corpus samples (STAR keeps some for stability) and
pass only the id filters (6-8). Exclusion is by id, never by text equality.

The false-negative estimate is the share of the negatives the same selection would keep without
exclusion by judgment that the qrels judge relevant, over queries judged beyond their positives. On
pseudo-queries (one judged document each) it is undefined; on judged queries, ``max_positives``
keeps a few positives for training and holds the other relevant documents out, simulating sparse
labels (MS MARCO's one positive per query) so the estimate measures how often a strategy's
candidates are unlabeled positives ("Hard Negatives or False Negatives", pooling bias).

Mining receives the indexes it searches (``index.ensure`` builds missing ones for the CLI and the
pipeline). Queries are processed in chunks, so memory grows with chunk size × depth, never with
the corpus; each finished chunk is a part (``store.shards``), which is how ``--shard I/N`` and
interrupted runs share work.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from retrieval_cli import data as datasets
from retrieval_cli import llm as llmlib
from retrieval_cli import models
from retrieval_cli.errors import InputError
from retrieval_cli.index import by_engine, fusion
from retrieval_cli.mining.config import FIRST_STAGES, HYBRID, MiningConfig
from retrieval_cli.mining import judge as judging
from retrieval_cli.mining import strategies
from retrieval_cli.mining.filters import QueryContext, positives_of, query_rng, select, spread_of
from retrieval_cli.mining.strategies import Offer
from retrieval_cli.mining.llm_negatives import generate_negatives
from retrieval_cli.mining.scorers import Scorers, score_pairs
from retrieval_cli.mining.stats import Stats
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Artifact, BuildResult, Parts, Shard, ShardResult, Workspace


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


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
    ``indexes``: one per first-stage engine the strategies search (``index.ensure`` makes them).
    Chunks that an interrupted run or ``mine_shard`` finished are taken as they are."""
    job = _prepare(ws, dataset, config, indexes, name, progress)
    if force:
        job.parts.clear()
    result = ws.build("negatives", job.name, config, job.inputs, lambda folder: job.run(folder, None), resolved=job.resolved, force=force)
    job.parts.clear()  # the artifact supersedes its chunks
    return result


def mine_shard(
    ws: Workspace,
    dataset: Artifact,
    config: MiningConfig,
    shard: Shard | tuple[int, int],
    *,
    indexes: list[Artifact] | None = None,
    name: str | None = None,
    progress: Progress = silent,
) -> ShardResult:
    """Mine shard i of n (query chunks c with c % n == i) into the workspace cache. Shards run
    anywhere that sees the workspace; ``mine_negatives`` with the same arguments then assembles
    the artifact, with the version id and the bytes of a run that was never split."""
    shard = Shard.of(shard)
    job = _prepare(ws, dataset, config, indexes, name, progress)
    if ws.find_ref(f"negatives/{job.name}@{job.version}") is not None:
        return ShardResult(shard, 0, 0, 0, job.parts.path, artifact_exists=True)
    tally: Counter = Counter()
    job.run(None, shard, tally)
    return ShardResult(shard, tally["units"], tally["computed"], tally["items"], job.parts.path)


def planned_version(
    ws: Workspace, dataset: Artifact, config: MiningConfig, *, indexes: list[Artifact] | None = None, name: str | None = None,
) -> str:
    """The version id ``mine_negatives`` gives these inputs, known before mining."""
    return _prepare(ws, dataset, config, indexes, name, silent).version


@dataclass
class _Job:
    """A mining run, resolved: its artifact's name, resolved config values and inputs, and how to mine it."""

    name: str
    version: str
    resolved: dict[str, Any]
    inputs: dict[str, Artifact]
    parts: Parts  # finished chunks of this exact version (an interrupted run, or shards)
    run: Callable[..., dict[str, Any]]  # (folder | None, shard | None, tally=None) -> summary


EVALUATION_SPLITS = ("test",)  # what BEIR and TREC-DL imports evaluate: training on them contaminates the numbers


def check_split(dataset: Artifact, split: str) -> None:
    """The split to mine exists (checked from the manifest, before any index is built); a
    collection without training queries is pointed at ``generate-queries``."""
    try:
        datasets.split_counts(dataset, split)
    except InputError as exc:
        raise InputError(
            f"{exc}; a collection without training queries gets them from its corpus: "
            f"retrieval-cli generate-queries datasets/{dataset.name} --method title|ict|llm (then mine -d {dataset.name}-METHOD)",
            field="split",
        ) from None


def split_warnings(split: str) -> list[str]:
    """What the manifest of negatives mined from ``split`` warns about."""
    if split in EVALUATION_SPLITS:
        return [f"split '{split}' holds the queries benchmarks evaluate on: a model trained on these negatives "
                f"cannot be evaluated fairly on '{split}' (generate-queries makes training queries)"]
    return []


def _prepare(
    ws: Workspace, dataset: Artifact, config: MiningConfig, indexes: list[Artifact] | None, name: str | None, progress: Progress,
) -> _Job:
    config.check()
    check_split(dataset, config.split)
    cross_spec = models.resolve(config.cross_encoder, ws) if config.cross_encoder else None
    engines = _engines(ws, dataset, config, indexes or [])
    # Options that cannot change the result do not change the version either.
    resolved: dict[str, Any] = {
        "components": [list(c) for c in config.components],
        "depth": config.first_stage_depth,
        "model": engines["dense"].config.get("model") if "dense" in engines else None,
    }
    if not any(s.ranking == strategies.CANDIDATES for s in config.variants):
        resolved["candidates"] = None
    if cross_spec is not None:
        resolved["cross_encoder_fingerprint"] = cross_spec.fingerprint
    # The self-hit policy evaluation uses: the decision (not the option) versions the negatives,
    # recorded only where it changes them: mined query ids that are corpus ids, kept (they were
    # always dropped before the policy was shared, so other negatives keep their version ids).
    data = datasets.load(dataset, lazy_corpus=True)  # texts read on demand: flat in corpus size
    drop_self = datasets.drop_self_hits(data, config.self_hits)
    if not drop_self and any(q in data.corpus for q in data.split_queries(config.split)):
        resolved["self_hits"] = "kept"
    llm_spec = None
    if any(s.generated for s in config.variants):
        llm_spec = llmlib.LLMSpec.parse(config.llm, config.api_key_env)
        resolved.update(
            llm_spec=llm_spec.describe(), llm_fingerprint=llm_spec.fingerprint,
            llm_prompt_text=llmlib.load_prompt(config.llm_prompt, "{query}"),
        )
    judge = None
    if config.judge is not None:
        judge_spec = llmlib.LLMSpec.parse(config.judge, config.api_key_env)
        judge = judging.Judge(judge_spec, judge_spec.fingerprint, judging.load_prompt(config.judge_prompt), config.judge_threshold,
                              config.judge_relabel, config.device, config.concurrency)
        resolved.update(judge_spec=judge_spec.describe(), judge_fingerprint=judge.fingerprint, judge_prompt_text=judge.prompt)
    inputs: dict[str, Artifact] = {"dataset": dataset, **{f"{k}_index": v for k, v in engines.items()}}
    if cross_spec is not None and cross_spec.artifact is not None:
        inputs["cross_encoder"] = cross_spec.artifact

    name = name or f"{dataset.name}-{config.label}"
    version = ws.version_of("negatives", config, inputs, resolved)
    parts = Parts(ws.cache("mining"), f"{name}@{version}")

    def run(folder: Path | None, shard: Shard | None = None, tally: Counter | None = None) -> dict[str, Any]:
        generated = None
        if llm_spec is not None:
            generated = generate_negatives(ws, data, config, llm_spec, resolved["llm_prompt_text"], progress)
        return _mine(ws, data, config, engines, cross_spec, folder, progress, generated, parts=parts, shard=shard, tally=tally,
                     drop_self=drop_self, judge=judge)

    return _Job(name, version, resolved, inputs, parts, run)


def _engines(ws: Workspace, dataset: Artifact, config: MiningConfig, given: list[Artifact]) -> dict[str, Artifact]:
    """The given indexes of the engines the strategies need, checked; an error names a missing one."""
    found = by_engine(ws, dataset, given)
    for engine in sorted(config.engines() - set(found)):
        raise InputError(
            f"strategy {config.strategy} needs a {engine} index of '{dataset.ref}': build one with "
            f"`retrieval-cli index {dataset.name} --kind {engine}` and pass it, or let the CLI build it", field="index",
        )
    return {k: v for k, v in found.items() if k in config.engines()}


def _mine(
    ws: Workspace, data: datasets.Dataset, config: MiningConfig, engines: dict[str, Artifact],
    cross_spec: models.ModelSpec | None, folder: Path | None, progress: Progress,
    generated: tuple[dict[str, list[str]], dict[str, Any]] | None = None,
    *, parts: Parts, shard: Shard | None = None, tally: Counter | None = None, drop_self: bool, judge: judging.Judge | None = None,
) -> dict[str, Any]:
    """Mine chunk by chunk (``config.chunk_size`` queries). Each finished chunk is a part, so an
    interrupted run, or shards run elsewhere, leave work the next run takes as it is; a chunk's
    lines and statistics do not depend on the other chunks, so any split gives the same bytes.
    With ``shard``, only its chunks are mined and nothing is written to ``folder``; ``tally``
    counts units, computed units and queries; ``drop_self`` is the self-hit decision the version records."""
    split_qrels = data.split_qrels(config.split)
    queries = data.split_queries(config.split)
    level = data.level(config.split)
    positives = {q: positives_of(q, split_qrels[q], level, config) for q in queries}
    with_positives = [q for q in queries if positives[q]]
    judged: dict[str, dict[str, int]] = {}
    for split_judgments in data.qrels.values():
        for q, docs in split_judgments.items():
            if q in queries:
                target = judged.setdefault(q, {})
                for d, g in docs.items():
                    target[d] = max(g, target.get(d, g))
    doc_ids = data.doc_ids()
    scorers = Scorers(ws, engines, cross_spec, config.batch_size, progress, device=config.device)
    verdicts = None
    if judge is not None:
        def verdicts(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], float | None]:
            return judging.verdicts(ws, judge, pairs, lambda q, d: (queries[q], judging.passage(data.doc_text(d))), progress)
    wanted = sum(n for _, n in config.components)
    stats = Stats(wanted=wanted, queries=len(queries), processed=len(with_positives))
    chunks = list(_chunks(with_positives, config.chunk_size))
    mine = shard.units(len(chunks)) if shard is not None else list(range(len(chunks)))
    total = sum(len(chunks[c]) for c in mine)
    tally = tally if tally is not None else Counter()
    progress("mine negatives", 0, total)
    done = 0
    out = open(folder / "negatives.jsonl", "w", encoding="utf-8") if folder is not None else None
    try:
        for c in mine:
            chunk = chunks[c]

            def make(chunk: list[str] = chunk) -> tuple[dict[str, Any], None]:
                lines, chunk_stats = _mine_chunk(
                    chunk, queries, positives, judged, data, config, scorers, doc_ids, Stats(wanted=wanted, queries=0, processed=0), generated,
                    drop_self, (judge, verdicts, level) if judge is not None else None,
                )
                return {"queries": chunk, "lines": lines, "stats": chunk_stats.state()}, None

            entry, computed = parts.get_or_make(f"chunk-{c}", make)
            if entry.data["queries"] != chunk:  # made for other queries (an edited dataset): never trusted
                parts.cache.entry(f"{parts.job}/chunk-{c}").remove()
                entry, computed = parts.get_or_make(f"chunk-{c}", make)
            tally.update(units=1, computed=int(computed), items=len(chunk))
            stats.merge(Stats.from_state(entry.data["stats"]))
            if out is not None:
                out.writelines(line + "\n" for line in entry.data["lines"])
            done += len(chunk)
            progress("mine negatives", done, total)
    finally:
        if out is not None:
            out.close()
    summary = stats.as_dict()
    summary["self_hits"] = "dropped" if drop_self else "kept"
    if judge is not None:
        summary["judge"] = {"threshold": judge.threshold, "relabel": judge.relabel, **stats.judge_summary()}
    if generated:
        summary["llm"] = generated[1]
    if split_warnings(config.split):
        summary["warnings"] = split_warnings(config.split)
    if folder is not None:
        (folder / "stats.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _mine_chunk(
    chunk: list[str], queries: dict[str, str], positives: dict[str, list[str]], judged: dict[str, dict[str, int]],
    data: datasets.Dataset, config: MiningConfig, scorers: Scorers, doc_ids: Sequence[str], stats: Stats,
    generated: tuple[dict[str, list[str]], dict[str, Any]] | None, drop_self: bool,
    judged_by: tuple[judging.Judge, Callable[[list[tuple[str, str]]], dict[tuple[str, str], float | None]], int] | None = None,
) -> tuple[list[str], Stats]:
    """One chunk of queries: first stages, cross-encoder scores, selection, the judge's verdicts
    (``judged_by``: the judge, its verdicts of pairs, the split's relevance level); (JSON lines,
    statistics)."""
    has_cross = scorers.cross is not None
    depth = config.first_stage_depth
    engines = sorted(scorers.engines)
    chunk_queries = {q: queries[q] for q in chunk}
    chunk_positives = {q: positives[q] for q in chunk}
    hits: dict[str, dict[str, list[tuple[str, float]]]] = {}
    pos_scores: dict[str, dict[str, dict[str, float]]] = {}
    for engine in engines:
        hits[engine], pos_scores[engine] = scorers.first_stage(engine, chunk_queries, chunk_positives, depth)
    if HYBRID in config.rankings():
        # The fused ranking of BM25 and dense, cut to the same depth; a positive's score is its RRF
        # score from the ranks it reached (0 when neither first stage retrieved it).
        fused = fusion.fuse([hits[e] for e in FIRST_STAGES], "rrf", depth=depth)
        hits[HYBRID] = {q: fused.get(q, []) for q in chunk}
        pos_scores[HYBRID] = {q: {p: fusion.rrf_score(p, [hits[e][q] for e in FIRST_STAGES]) for p in positives[q]} for q in chunk}
    ce: dict[tuple[str, str], float] = {}
    if has_cross:
        # Score every positive and every candidate the cross-encoder strategy sees.
        wanted = {(q, d) for q in chunk for d in positives[q]}
        if any(s.rescored for s in config.variants):
            wanted |= {(q, d) for q in chunk for d, _ in hits[config.candidates][q]}
        ce.update(score_pairs(scorers, sorted(wanted), queries, data))
    results = [
        _mine_query(
            q, queries[q], positives[q], judged.get(q, {}), hits, pos_scores, ce, config, doc_ids, stats.dropped,
            generated[0].get(q, []) if generated else [], drop_self,
        )
        for q in chunk
    ]
    if has_cross:
        # Teacher scores for every kept negative and positive (TAS-B style distillation).
        missing = sorted({(r["query_id"], n["doc_id"]) for r, _ in results for n in r["negatives"] if n["doc_id"]} - set(ce))
        ce.update(score_pairs(scorers, missing, queries, data))
        texts = [(r["query_id"], n["text"]) for r, _ in results for n in r["negatives"] if not n["doc_id"]]
        text_scores = dict(zip(texts, scorers.cross_scores([(queries[q], t) for q, t in texts]) if texts else []))
        for record, _ in results:
            for n in record["negatives"]:
                key = (record["query_id"], n["doc_id"] or n["text"])
                n["ce_score"] = ce[key] if n["doc_id"] else text_scores[key]
            for p in record["positives"]:
                p["scores"]["cross-encoder"] = ce[(record["query_id"], p["doc_id"])]
    if judged_by is not None:
        _judge(results, judged, stats, *judged_by)
    lines = []
    for record, counts in results:
        lines.append(json.dumps(record, ensure_ascii=False))
        q = record["query_id"]
        stats.add(record, counts, judged.get(q, {}), positives[q])
    return lines, stats


def _judge(
    results: list[tuple[dict[str, Any], Counter]], judged: dict[str, dict[str, int]], stats: Stats, judge: judging.Judge,
    verdicts: Callable[[list[tuple[str, str]]], dict[tuple[str, str], float | None]], level: int,
) -> None:
    """The judge over a chunk's kept negatives and positives: agreement with the qrels counted
    first, then the negatives it calls relevant dropped or relabelled."""
    pairs = sorted({(r["query_id"], d["doc_id"]) for r, _ in results for d in r["positives"] + r["negatives"] if d["doc_id"]})
    found = verdicts(pairs)
    for record, _ in results:
        cells = judging.agreement(record, found, judge, judged.get(record["query_id"], {}), level)
        stats.judged(judging.apply(record, found, judge), cells)


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
    drop_self: bool,
) -> tuple[dict[str, Any], Counter]:
    """One query's negatives record, and its eligible counts for the false-negative estimate."""
    context = QueryContext(qid if drop_self else None, set(positives), {d for d, g in judged.items() if g > 0}, None)
    taken: set[str] = set()
    negatives: list[dict[str, Any]] = []
    counts: Counter = Counter()
    for name, count in config.components:
        strategy = strategies.get(name)
        rng = query_rng(config.seed, name, qid)
        if strategy.generated:
            negatives.extend(
                {"doc_id": None, "text": t, "strategy": name, "rank": None, "score": None, "ce_score": None} for t in generated[:count]
            )
            continue
        offer = Offer(qid, positives, hits, pos_scores, ce, doc_ids, context.positives | context.judged_relevant | taken | {qid}, config)
        assert strategy.pool is not None
        pool = strategy.pool(offer, strategy.ranking_of(config.candidates), count, rng)
        context.positive_score = pool.positive_score
        context.spread = spread_of(pool.candidates) if config.adaptive_margin is not None else None
        selection = select(pool.candidates, context, config, count, taken, rng, dropped if pool.estimated else Counter(),
                           sampling="top" if pool.drawn else None)
        if pool.estimated:  # ranked candidates: their eligible ones feed the false-negative estimate
            counts["eligible"] += selection.eligible
            counts["eligible_judged_relevant"] += selection.eligible_judged_relevant
            counts["unexcluded"] += selection.unexcluded
            counts["unexcluded_relevant"] += selection.unexcluded_relevant
        for cand in selection.kept:
            taken.add(cand.doc_id)
            negatives.append({
                "doc_id": cand.doc_id,
                "strategy": name,
                "rank": cand.rank,
                "score": cand.first_stage_score,
                "ce_score": ce.get((qid, cand.doc_id)) if strategy.rescored else None,
                **({"first_stage_rank": cand.first_stage_rank} if strategy.rescored else {}),
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
