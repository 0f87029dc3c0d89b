"""Evaluation artifacts: retrieve with an index (or read a TREC run), optionally rerank, and score
with ir-measures (``evaluate.measures``); the run, per-query values and metrics are kept."""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from retrieval_cli import data as datasets
from retrieval_cli import models
from retrieval_cli.errors import InputError
from retrieval_cli.evaluate import runs
from retrieval_cli.evaluate.measures import DEFAULT_MEASURES, RunScorer, check_measures, resolve_measures
from retrieval_cli.evaluate.rerank import rerank
from retrieval_cli.evaluate.runs import Run
from retrieval_cli.index import fusion as fusion_lib
from retrieval_cli.index import index_dataset, open_searcher
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Artifact, BuildResult, Versioned, Workspace, unversioned


@dataclass
class EvaluateConfig(Versioned):
    """What to evaluate on and how deep; the resolved form is the artifact's config. (The rerank
    batch size versions it too, for the ids evaluations already have: schema 1.)"""

    split: str = "test"
    measures: list[str] = field(default_factory=lambda: list(DEFAULT_MEASURES))
    depth: int = 1000
    rerank: str | None = None
    rerank_depth: int = 100
    rerank_batch_size: int = 32
    self_hits: str = "auto"  # auto | drop | keep: data.drop_self_hits, the policy mining shares
    fusion: str | None = None  # rrf | norm: the evaluated ranking fuses other evaluations' runs
    rrf_k: int = fusion_lib.RRF_K
    fusion_weight: float = 0.5  # norm: the first run's weight
    device: str = unversioned("auto")  # where a dense index's queries and a reranker run

    def irrelevant(self) -> set[str]:
        """Fusion settings version only a fused evaluation, each only for its method."""
        if self.fusion is None:
            return {"fusion", "rrf_k", "fusion_weight"}
        return {"fusion_weight"} if self.fusion == "rrf" else {"rrf_k"}

    def check(self) -> None:
        models.check_device(self.device)
        check_measures(self.measures)
        if self.self_hits not in datasets.SELF_HITS:
            raise InputError(f"self-hits must be auto, drop or keep, got {self.self_hits!r}", field="self_hits")
        if self.depth < 1:
            raise InputError(f"depth must be >= 1, got {self.depth}", field="depth")
        if self.rerank and not 1 <= self.rerank_depth:
            raise InputError(f"rerank depth must be >= 1, got {self.rerank_depth}", field="rerank_depth")
        if self.fusion is not None:
            fusion_lib.check(self.fusion, self.rrf_k, self.fusion_weight)


GROUP_QUERIES = 10_000  # queries retrieved, written and scored at a time
STORED_RUN = "run.jsonl"  # a kept ranking: one [query id, [[doc id, score], ...]] line per query


def _groups(query_ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(query_ids), GROUP_QUERIES):
        yield query_ids[start:start + GROUP_QUERIES]


def _stored_groups(path: Path) -> Iterator[Run]:
    """A kept ranking read back a group of queries at a time."""
    run: Run = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            qid, hits = json.loads(line)
            run[qid] = [(d, s) for d, s in hits]
            if len(run) == GROUP_QUERIES:
                yield run
                run = {}
    if run:
        yield run


def _ranking_key(index: Artifact, dataset: Artifact, config: EvaluateConfig, drop_self: bool, reranker: str | None) -> str:
    """The cache key of a ranking: everything it depends on, and not the measures."""
    key = {"stored": STORED_RUN, "index": index.ref, "dataset": dataset.ref, "split": config.split, "depth": config.depth, "drop_self": drop_self,
           "rerank": reranker, "rerank_depth": config.rerank_depth if reranker else None}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:32]


@dataclass
class _Plan:
    """What an evaluation reads and how it is versioned, worked out (and checked) before any work."""

    config: EvaluateConfig
    dataset: Artifact
    inputs: dict[str, Artifact]
    resolved: dict[str, Any]
    default_name: str
    measures: dict[str, Any]
    rerank_spec: models.ModelSpec | None


class Scoring:
    """A ranking taken a group of queries at a time: each group written to run.trec, scored and
    counted, then dropped, so memory follows a group, never the number of queries."""

    def __init__(self, trec: Any, qrels: dict[str, dict[str, int]], measures: dict[str, Any], total: int, progress: Progress = silent) -> None:
        self.trec, self.qrels, self.total, self.progress = trec, qrels, total, progress
        self.scorer = RunScorer(qrels, measures)
        self.answered = 0  # judged queries the ranking has results for
        self.done = 0

    def take(self, run: Run, group: list[str], tag: str) -> None:
        self.trec.writelines(runs.trec_lines(run, tag))
        self.scorer.add(run, group)
        self.answered += sum(1 for q in group if q in self.qrels and run.get(q))
        self.done += len(group)
        self.progress("retrieve and score", self.done, self.total)

    def result(self) -> tuple[dict[str, float], list[tuple[str, str, float]]]:
        return self.scorer.result()


def ranked(first_stage: Run, config: EvaluateConfig, drop_self: bool, queries: dict[str, str], data: datasets.Dataset,
           reranker: Any = None, progress: Progress = silent) -> Run:
    """A first stage's ranking with self hits dropped, cut to depth, and reranked when a reranker
    is given (a callable returning the loaded cross-encoder): the same for an index and a run file."""
    run = runs.truncate(runs.drop_self_hits(first_stage) if drop_self else first_stage, config.depth)
    if reranker is None:
        return run
    return rerank(run, queries, data, reranker(), config.rerank_depth, config.rerank_batch_size, progress)


def evaluate(
    ws: Workspace,
    *,
    index: Artifact | None = None,
    dataset: Artifact | None = None,
    run_file: Path | None = None,
    fuse: list[Artifact] | None = None,
    config: EvaluateConfig | None = None,
    name: str | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Retrieve with ``index`` (or read ``run_file``, or fuse the runs of the evaluations in
    ``fuse`` with ``config.fusion``) for a dataset split and score it."""
    plan = _plan(ws, index, dataset, run_file, fuse, config or EvaluateConfig())

    def build(folder: Path) -> dict[str, Any]:
        return _score(ws, plan, folder, index, run_file, fuse, progress)

    return ws.build("evaluations", name or plan.default_name, plan.config, plan.inputs, build, resolved=plan.resolved, force=force)


def _plan(ws: Workspace, index: Artifact | None, dataset: Artifact | None, run_file: Path | None, fuse: list[Artifact] | None,
          config: EvaluateConfig) -> _Plan:
    """The evaluation's config, dataset, inputs, resolved settings and default name, checked."""
    if fuse and config.fusion is None:
        config = dataclasses.replace(config, fusion="rrf")
    config.check()
    if sum(x is not None for x in (index, run_file, fuse or None)) != 1:
        raise InputError("give exactly one of an index, a run file or evaluations to fuse")
    if fuse:
        fusion_lib.check(str(config.fusion), config.rrf_k, config.fusion_weight, len(fuse))  # how many, before any reading
        dataset = _fused_dataset(ws, fuse, dataset, config.split)
    elif config.fusion is not None:
        raise InputError("fusion settings need evaluations to fuse (--fuse A --fuse B)", field="fusion")
    if index is not None:
        own = index_dataset(ws, index)
        if dataset is not None and dataset.version != own.version:
            raise InputError(
                f"index '{index.ref}' was built on '{own.ref}', not on '{dataset.ref}': "
                "evaluate an index on the dataset it indexes"
            )
        dataset = own
    if dataset is None:
        raise InputError("a run file needs --dataset")
    measures = resolve_measures(config.measures, datasets.split_level(dataset, config.split))
    resolved: dict[str, Any] = {"measures_resolved": {k: str(v) for k, v in measures.items()}}
    inputs: dict[str, Artifact] = {"dataset": dataset}
    if index is not None:
        inputs["index"] = index
        default_name = f"{index.name}-{config.split}"
    elif fuse:
        inputs.update({f"fuse_{i}": ev for i, ev in enumerate(fuse)})
        default_name = "_".join(ev.name for ev in fuse)[:100] + f"-{config.fusion}"  # names allow no '+'; 128 characters at most
    else:
        run_file = Path(run_file)  # type: ignore[arg-type]
        if not run_file.is_file():
            raise InputError("no such run file", path=run_file)
        resolved["run_file"] = {"path": str(run_file.resolve()), "content": datasets.content_hash([run_file])}
        default_name = f"{run_file.stem}-{config.split}"
    rerank_spec = None
    if config.rerank:
        rerank_spec = models.resolve(config.rerank, ws)
        resolved["rerank_fingerprint"] = rerank_spec.fingerprint
        if rerank_spec.artifact:
            inputs["reranker"] = rerank_spec.artifact
        default_name += f"-rerank-{models.short_label(config.rerank)}"
    return _Plan(config, dataset, inputs, resolved, default_name, measures, rerank_spec)


def _score(ws: Workspace, plan: _Plan, folder: Path, index: Artifact | None, run_file: Path | None, fuse: list[Artifact] | None,
           progress: Progress) -> dict[str, Any]:
    """Rank (an index, fused runs or a run file), write run.trec, score, and write per_query.tsv
    and metrics.json; the artifact's summary."""
    config = plan.config
    # Texts read on demand (a reranker's), and only the evaluated split's queries and judgments
    # held: memory flat in the corpus size and in the other splits' query counts.
    data = datasets.load(plan.dataset, lazy_corpus=True, splits=(config.split,))
    drop_self = datasets.drop_self_hits(data, config.self_hits)
    qrels, queries = data.split_qrels(config.split), data.split_queries(config.split)
    # The cross-encoder, loaded by the first group that reranks and kept for the others.
    spec = plan.rerank_spec
    reranker = functools.cache(lambda: models.load_cross_encoder(spec, device=config.device, progress=progress)) if spec else None
    rank = functools.partial(ranked, config=config, drop_self=drop_self, queries=queries, data=data, reranker=reranker, progress=progress)
    warnings: list[str] = []  # what a run file held that the dataset does not
    with open(folder / "run.trec", "w", encoding="utf-8") as trec:
        scoring = Scoring(trec, qrels, plan.measures, len(queries), progress)
        if index is not None:
            source = _rank_index(ws, plan, index, queries, drop_self, rank, scoring, progress)
        else:
            if fuse:
                # Each input's stored TREC run, fused by Pyserini's fusion; ranks are what RRF reads.
                first = fusion_lib.fuse([runs.read_trec(ev.file("run.trec")) for ev in fuse], str(config.fusion),
                                        rrf_k=config.rrf_k, weight=config.fusion_weight, depth=config.depth)
                tag, source = str(config.fusion), "fused"
            else:
                first = runs.read_trec(run_file)  # type: ignore[arg-type]
                unknown = sorted(set(first) - set(data.queries))
                if len(unknown) == len(first):
                    raise InputError(f"no query id in the run is a {config.split} query of dataset '{data.name}' (e.g. '{unknown[0]}')", path=run_file)
                warnings.extend(_run_file_warnings(first, unknown, data, config.split))
                tag, source = Path(run_file).stem, "run file"  # type: ignore[arg-type]
            tag += "+rerank" if spec is not None else ""
            for group in _groups(list(queries)):
                scoring.take(rank({q: first[q] for q in group if q in first}), group, tag)
    aggregate = _write_scores(folder, data, config, scoring, drop_self, plan.measures, progress)
    if source == "run file" and scoring.answered < len(qrels):
        warnings.append(f"{len(qrels) - scoring.answered} of {len(qrels)} judged {config.split} queries have no results in the run (each scores 0)")
    return {"queries": len(qrels), "metrics": aggregate, "ranking": source, **({"warnings": warnings} if warnings else {})}


def _rank_index(ws: Workspace, plan: _Plan, index: Artifact, queries: dict[str, str], drop_self: bool, rank: Any, scoring: Scoring,
                progress: Progress) -> str:
    """Search ``index`` for every query, a group at a time, into ``scoring``; "stored" when the
    ranking was kept from an earlier evaluation, "retrieved" when searched now. The ranking depends
    on the index, the queries and the retrieval settings, never on the measures: evaluating again
    with other measures scores the ranking kept here."""
    config = plan.config
    tag = index.name + ("+rerank" if plan.rerank_spec is not None else "")
    entry = ws.cache("runs").entry(_ranking_key(index, plan.dataset, config, drop_self, plan.resolved.get("rerank_fingerprint")))
    kept = entry.load()
    if kept is not None:
        for run in _stored_groups(kept.file(STORED_RUN)):
            scoring.take(run, list(run), tag)
        return "stored"
    searcher = open_searcher(ws, index, progress, device=config.device)

    def search_all(path: Path) -> None:
        with open(path / STORED_RUN, "w", encoding="utf-8") as stored:
            for group in _groups(list(queries)):
                run = rank(searcher.search({q: queries[q] for q in group}, config.depth + (1 if drop_self else 0)))
                # Full-precision scores: the TREC file's six decimals could tie documents.
                stored.writelines(json.dumps([q, hits]) + "\n" for q, hits in run.items())
                scoring.take(run, group, tag)

    entry.store({"index": index.ref, "split": config.split}, search_all)
    return "retrieved"


def _write_scores(folder: Path, data: datasets.Dataset, config: EvaluateConfig, scoring: Scoring, drop_self: bool,
                  measures: dict[str, Any], progress: Progress) -> dict[str, float]:
    """per_query.tsv and metrics.json from what ``scoring`` took; the aggregate values."""
    progress("score", 0, None)
    aggregate, per_query_values = scoring.result()
    progress("score", 1, 1)
    with open(folder / "per_query.tsv", "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerow(["query_id", "measure", "value"])
        writer.writerows((q, m, f"{v:.6f}") for q, m, v in per_query_values)
    metrics = {
        "dataset": data.name,
        "split": config.split,
        "queries": len(scoring.qrels),
        "queries_without_results": len(scoring.qrels) - scoring.answered,
        "relevance_level": data.level(config.split),
        "self_hits": "dropped" if drop_self else "kept",
        "measures": {k: str(v) for k, v in measures.items()},
        "aggregate": aggregate,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return aggregate


def _run_file_warnings(run: Run, unknown: list[str], data: datasets.Dataset, split: str) -> list[str]:
    """What a run file holds that the dataset does not, counted: queries of no split evaluated
    (ignored) and documents not in the corpus (scored as unjudged), each with an example."""
    said = []
    if unknown:
        said.append(f"{len(unknown)} query ids in the run are not {split} queries of '{data.name}' and were ignored (e.g. '{unknown[0]}')")
    strange = sorted({doc for hits in run.values() for doc, _ in hits if doc not in data.corpus})
    if strange:
        said.append(f"{len(strange)} document ids in the run are not in the corpus of '{data.name}' (e.g. '{strange[0]}')")
    return said


def _fused_dataset(ws: Workspace, fuse: list[Artifact], dataset: Artifact | None, split: str) -> Artifact:
    """The dataset the evaluations to fuse share, on the split they ranked; an error names the odd one."""
    seen: set[Path] = set()
    for ev in fuse:  # one ranking twice would weigh it double and count as two systems
        if ev.path in seen:
            raise InputError(f"'{ev.ref}' is given twice: fuse distinct evaluations", field="fuse")
        seen.add(ev.path)
    own = [ws.inputs_of(ev).get("dataset") for ev in fuse]
    first = own[0]
    for ev, data in zip(fuse, own):
        if data is None or first is None or data.version != first.version:
            raise InputError(f"'{ev.ref}' evaluated '{data.ref if data else '?'}', not '{first.ref if first else '?'}': fuse evaluations of one dataset", field="fuse")
        if ev.config.get("split") != split:
            raise InputError(f"'{ev.ref}' ranked split '{ev.config.get('split')}', not '{split}': fuse rankings of the split evaluated (--split)", field="fuse")
    assert first is not None
    if dataset is not None and dataset.version != first.version:
        raise InputError(f"the evaluations to fuse ranked '{first.ref}', not '{dataset.ref}'", field="dataset")
    return first


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
