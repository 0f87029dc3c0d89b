"""Evaluation artifacts: retrieve (or read a run), optionally rerank, and score with ir-measures.

Measures are ir-measures strings. Binary measures that accept a relevance threshold get the
dataset's level unless the string sets one (so ``R@100`` on TREC-DL means ``R(rel=2)@100``,
as ``trec_eval -l 2``); graded measures such as nDCG use the grades as gains.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retrieval_cli import datasets, indexing, models, runs
from retrieval_cli.artifacts import Artifact, BuildResult, Workspace
from retrieval_cli.datasets import content_hash
from retrieval_cli.errors import InputError
from retrieval_cli.progress import Progress, silent

DEFAULT_MEASURES = ("nDCG@10", "R@100")
ALWAYS = ("Judged@10",)  # shows how much of the top 10 was ever judged (pooling bias)


@dataclass
class EvaluateConfig:
    """What to evaluate on and how deep; the resolved form is the artifact's config."""

    split: str = "test"
    measures: list[str] = field(default_factory=lambda: list(DEFAULT_MEASURES))
    depth: int = 1000
    rerank: str | None = None
    rerank_depth: int = 100
    rerank_batch_size: int = 32
    self_hits: str = "auto"  # auto | drop | keep: see drop_self_hits_for

    def check(self) -> None:
        if self.self_hits not in ("auto", "drop", "keep"):
            raise InputError(f"self-hits must be auto, drop or keep, got {self.self_hits!r}", field="self_hits")
        if self.depth < 1:
            raise InputError(f"depth must be >= 1, got {self.depth}", field="depth")
        if self.rerank and not 1 <= self.rerank_depth:
            raise InputError(f"rerank depth must be >= 1, got {self.rerank_depth}", field="rerank_depth")


def drop_self_hits_for(data: datasets.Dataset, policy: str) -> bool:
    """Whether to drop documents whose id equals the query id.

    ``auto`` follows BEIR's ArguAna/Quora convention only where it applies: query ids are also
    corpus ids, yet no qrels pair judges a query's own id relevant, so the query *is* a corpus
    document. Where a collection merely numbers both from 1 (Cranfield judges doc 225 relevant
    to query 225), nothing is dropped.
    """
    if policy != "auto":
        return policy == "drop"
    if not any(q in data.corpus for q in data.queries):
        return False
    return not any(docs.get(q, 0) > 0 for judged in data.qrels.values() for q, docs in judged.items())


def resolve_measures(names: list[str], relevance_level: int) -> dict[str, Any]:
    """Map each label to an ir-measures measure, adding the dataset's relevance level where fitting."""
    import ir_measures

    resolved: dict[str, Any] = {}
    for name in [*names, *ALWAYS]:
        try:
            measure = ir_measures.parse_measure(name)
        except (ValueError, NameError, TypeError, AttributeError) as exc:
            raise InputError(f"unknown measure {name!r} ({exc}); see ir-measures' measure list", field="measure") from None
        # ir-measures drops parameters equal to their default (R(rel=1)@100 prints as R@100),
        # so an explicit rel= is detected in the text the user wrote.
        explicit_rel = "rel=" in name.replace(" ", "")
        if "rel" in measure.SUPPORTED_PARAMS and "rel" not in measure.params and not explicit_rel:
            measure = measure(rel=relevance_level)
        resolved.setdefault(name, measure)
    return resolved


def score_run(
    run: runs.Run, qrels: dict[str, dict[str, int]], measures: dict[str, Any]
) -> tuple[dict[str, float], list[tuple[str, str, float]]]:
    """Aggregate and per-query values of each measure, computed by ir-measures."""
    import ir_measures

    qrel_rows = [ir_measures.Qrel(q, d, g) for q, docs in qrels.items() for d, g in docs.items()]
    # Two labels may name one measure (R@100 and R(rel=1)@100): compute each measure once and
    # give its values to every label that names it.
    distinct = {str(m): m for m in measures.values()}
    evaluator = ir_measures.evaluator(list(distinct.values()), qrel_rows)
    scored = runs.to_scored_docs({q: hits for q, hits in run.items() if q in qrels})
    # One pass gives both the aggregates (ir-measures' own aggregators) and the per-query values.
    aggregated, metrics = evaluator.calc(scored)
    values = {str(m): float(v) for m, v in aggregated.items()}
    per_measure: dict[str, list[tuple[str, float]]] = {}
    for m in metrics:
        per_measure.setdefault(str(m.measure), []).append((m.query_id, float(m.value)))
    aggregate = {label: values.get(str(m), 0.0) for label, m in measures.items()}
    per_query = [
        (qid, label, value) for label, m in measures.items() for qid, value in per_measure.get(str(m), [])
    ]
    return aggregate, sorted(per_query)


def rerank(
    run: runs.Run, queries: dict[str, str], data: datasets.Dataset, model: Any, depth: int,
    batch_size: int, progress: Progress = silent,
) -> runs.Run:
    """Rescore each query's top ``depth`` with a cross-encoder; deeper hits keep their order below."""
    pairs, owners = [], []
    for qid, hits in run.items():
        for doc_id, _ in hits[:depth]:
            pairs.append((queries[qid], data.doc_text(doc_id)))
            owners.append((qid, doc_id))
    scores: list[float] = []
    progress("cross-encoder rerank", 0, len(pairs))
    for start in range(0, len(pairs), batch_size * 8):
        chunk = pairs[start:start + batch_size * 8]
        scores.extend(float(s) for s in model.predict(chunk, batch_size=batch_size, show_progress_bar=False))
        progress("cross-encoder rerank", start + len(chunk), len(pairs))
    new_scores: dict[str, list[tuple[str, float]]] = {}
    for (qid, doc_id), score in zip(owners, scores):
        new_scores.setdefault(qid, []).append((doc_id, score))
    reranked: runs.Run = {}
    for qid, hits in run.items():
        head = sorted(new_scores.get(qid, []), key=lambda h: -h[1])
        floor = min((s for _, s in head), default=0.0)
        tail = [(doc_id, floor - 1.0 - i) for i, (doc_id, _) in enumerate(hits[depth:])]
        reranked[qid] = head + tail
    return reranked


def evaluate(
    ws: Workspace,
    *,
    index: Artifact | None = None,
    dataset: Artifact | None = None,
    run_file: Path | None = None,
    config: EvaluateConfig | None = None,
    name: str | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Retrieve with ``index`` (or read ``run_file``) for a dataset split and score it."""
    config = config or EvaluateConfig()
    config.check()
    if (index is None) == (run_file is None):
        raise InputError("give exactly one of an index or a run file")
    if index is not None:
        own = indexing.index_dataset(ws, index)
        if dataset is not None and dataset.version != own.version:
            raise InputError(
                f"index '{index.ref}' was built on '{own.ref}', not on '{dataset.ref}': "
                "evaluate an index on the dataset it indexes"
            )
        dataset = own
    if dataset is None:
        raise InputError("a run file needs --dataset")
    measures = resolve_measures(config.measures, int(dataset.config.get("relevance_level", 1)))
    resolved_config: dict[str, Any] = {**asdict(config), "measures_resolved": {k: str(v) for k, v in measures.items()}}
    inputs: dict[str, Artifact] = {"dataset": dataset}
    if index is not None:
        inputs["index"] = index
        default_name = f"{index.name}-{config.split}"
    else:
        run_file = Path(run_file)  # type: ignore[arg-type]
        resolved_config["run_file"] = {"path": str(run_file.resolve()), "content": content_hash([run_file])}
        default_name = f"{run_file.stem}-{config.split}"
    rerank_spec = None
    if config.rerank:
        rerank_spec = models.resolve(config.rerank, ws)
        resolved_config["rerank_fingerprint"] = rerank_spec.fingerprint
        if rerank_spec.artifact:
            inputs["reranker"] = rerank_spec.artifact
        default_name += f"-rerank-{models.short_label(config.rerank)}"

    def build(folder: Path) -> dict[str, Any]:
        data = datasets.load(dataset)
        drop_self = drop_self_hits_for(data, config.self_hits)
        qrels = data.split_qrels(config.split)
        queries = data.split_queries(config.split)
        if index is not None:
            searcher = indexing.open_searcher(ws, index, progress)
            progress("retrieve", 0, len(queries))
            run = searcher.search(queries, config.depth + (1 if drop_self else 0))
            progress("retrieve", len(queries), len(queries))
            tag = index.name
        else:
            run = runs.read_trec(run_file)  # type: ignore[arg-type]
            unknown = sorted(set(run) - set(data.queries))
            if len(unknown) == len(run):
                raise InputError(f"no query id in the run is in dataset '{data.name}' (e.g. '{unknown[0]}')", path=run_file)
            run = {q: hits for q, hits in run.items() if q in queries}
            tag = run_file.stem  # type: ignore[union-attr]
        if drop_self:
            run = runs.drop_self_hits(run)
        run = runs.truncate(run, config.depth)
        if rerank_spec is not None:
            model = models.load_cross_encoder(rerank_spec)
            run = rerank(run, queries, data, model, config.rerank_depth, config.rerank_batch_size, progress)
            tag += "+rerank"
        runs.write_trec(run, folder / "run.trec", tag)
        progress("score", 0, None)
        aggregate, per_query = score_run(run, qrels, measures)
        progress("score", 1, 1)
        with open(folder / "per_query.tsv", "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, delimiter="\t", lineterminator="\n")
            writer.writerow(["query_id", "measure", "value"])
            writer.writerows((q, m, f"{v:.6f}") for q, m, v in per_query)
        answered = sum(1 for q in qrels if run.get(q))
        metrics = {
            "dataset": data.name,
            "split": config.split,
            "queries": len(qrels),
            "queries_without_results": len(qrels) - answered,
            "relevance_level": data.relevance_level,
            "self_hits": "dropped" if drop_self else "kept",
            "measures": {k: str(v) for k, v in measures.items()},
            "aggregate": aggregate,
        }
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        return {"queries": len(qrels), "metrics": aggregate}

    return ws.build("evaluations", name or default_name, resolved_config, inputs, build, force=force)


def metrics(evaluation: Artifact) -> dict[str, Any]:
    """The metrics.json of an evaluation artifact."""
    return json.loads(evaluation.file("metrics.json").read_text(encoding="utf-8"))


def per_query(evaluation: Artifact) -> dict[str, dict[str, float]]:
    """measure label -> query id -> value."""
    values: dict[str, dict[str, float]] = {}
    with open(evaluation.file("per_query.tsv"), encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            qid, measure, value = line.rstrip("\n").split("\t")
            values.setdefault(measure, {})[qid] = float(value)
    return values
