"""The bill before the run: each step still to run priced by the cost model (``cost``) at the sizes
it will work on. Sizes come from a dataset step's artifact when it is done, else from what the
recipe says: ir_datasets' published counts for an ``irds`` source (read offline, nothing is
downloaded), a synthetic collection's settings. A step whose sizes or stage are unknown (a BEIR
folder not yet imported, LLM negatives) gets no figure rather than a guess."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from retrieval_cli.pipeline import cost as costs
from retrieval_cli.pipeline.dag import Step
from retrieval_cli.pipeline.locks import done
from retrieval_cli.pipeline.plan import plan
from retrieval_cli.pipeline.sources import irds_splits
from retrieval_cli.pipeline.recipe import Recipe
from retrieval_cli.store import Workspace


@dataclass
class Sizes:
    """A collection's passages and the queries of each split (None: not known before it is made)."""

    passages: int | None = None
    queries: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Estimate:
    """One step's projection: the stages it runs, at which sizes, and their sum."""

    step: str
    state: str
    stages: tuple[str, ...]
    passages: int | None
    queries: int | None
    seconds: float | None
    peak_mb: float | None


def machine_of(device: str) -> str:
    """The cost table a recipe's device reads: ``gpu`` for a CUDA device, else 2 CPU cores (auto
    is priced as the CPU: a GPU the run finds makes it faster, not dearer)."""
    return "gpu" if device.startswith("cuda") else "cpu"


def estimate(ws: Workspace, recipe: Recipe, machine: str | None = None) -> list[Estimate]:
    """Every step's state and, for those still to run, their projected seconds and peak memory on
    ``machine`` (``cpu`` or ``gpu``; default: from the recipe's device)."""
    listing = dataclasses.replace(ws, verify_reads="none")
    steps = plan(recipe)
    table = costs.costs()[machine or machine_of(str(recipe.sections.get("device", "auto")))]
    by_name = {s.name: s for s in steps}
    states = {s.name: done(listing, recipe, s) for s in steps}
    sizes: dict[str, Sizes] = {}
    out = []
    for step in steps:
        state, _, artifact = states[step.name]
        if step.kind == "datasets":
            sizes[step.name] = _dataset_sizes(step, artifact, sizes)
        if state == "done":
            out.append(Estimate(step.name, state, (), None, None, 0.0, None))
            continue
        work = _work(step, by_name, sizes)
        table_of = [(table.get(stage), p, q) for stage, p, q in work]
        stages = tuple(stage for stage, _, _ in work)
        passages = max((p for _, p, _ in work if p is not None), default=None)
        queries = max((q for _, _, q in work if q is not None), default=None)
        if not work or any(c is None or p is None or q is None for c, p, q in table_of):
            out.append(Estimate(step.name, state, stages, passages, queries, None, None))
            continue
        seconds = sum(c.seconds(p, q) for c, p, q in table_of)
        peak = max(c.peak_mb(p, q) for c, p, q in table_of)
        out.append(Estimate(step.name, state, stages, passages, queries, seconds, peak))
    return out


def _dataset_sizes(step: Step, artifact: Any, known: dict[str, Sizes]) -> Sizes:
    if artifact is not None:
        summary = artifact.summary
        return Sizes(summary.get("documents"), {s: int(v.get("queries", 0)) for s, v in summary.get("splits", {}).items()})
    spec = step.spec
    if "irds" in spec:
        import ir_datasets

        splits, _ = irds_splits(step.name, "irds", spec["irds"])
        counts = {s.split: ir_datasets.load(s.id) for s in splits}
        first = next(iter(counts.values()))
        return Sizes(first.docs_count(), {split: int(ds.queries_count() or 0) for split, ds in counts.items()})
    if "synth" in spec and isinstance(spec["synth"], dict):
        synth = spec["synth"]
        return Sizes(int(synth.get("documents", 1500)), {"test": int(synth.get("test_queries", 150)), "train": int(synth.get("train_queries", 300))})
    if step.name == "queries":  # generated training queries over the dataset's corpus
        base = known.get("dataset", Sizes())
        wanted = spec.get("max_queries")
        return Sizes(base.passages, {str(spec.get("split", "train")): int(wanted)} if wanted else {})
    return Sizes()


def _corpus(step: Step, by_name: dict[str, Step]) -> str | None:
    """The dataset step whose corpus a step works on: its nearest dataset dependency."""
    for dep in step.deps:
        if by_name[dep].kind == "datasets":
            return dep
    for dep in step.deps:
        found = _corpus(by_name[dep], by_name)
        if found:
            return found
    return None


def _work(step: Step, by_name: dict[str, Step], sizes: dict[str, Sizes]) -> list[tuple[str, int | None, int | None]]:
    """The cost stages a step runs, each with its (passages, queries); a cross-encoder stage's
    "queries" are the pairs it scores (each query's first-stage depth)."""
    if step.kind == "reports":
        return [("report", 0, 0)]
    corpus = _corpus(step, by_name) if step.kind != "datasets" else step.name
    known = sizes.get(corpus or "", Sizes())
    split = str(step.spec.get("split", "train"))
    if step.kind == "datasets":
        return [("import", known.passages, 0)]
    if step.kind == "indexes":
        if step.name.startswith("index:bm25"):
            return [("bm25 index", known.passages, 0)]
        return [("encode", known.passages, 0), ("dense index", known.passages, 0)]
    if step.kind == "negatives":
        queries = known.queries.get(split)
        depth = int(step.spec.get("depth") or step.spec.get("range_max") or 100)
        return [(stage, known.passages, queries if stage != "cross-encoder" or queries is None else queries * depth)
                for stage in _mining_stages(step.spec)]
    if step.kind == "models":
        mined = next((by_name[d] for d in step.deps if by_name[d].kind == "negatives"), None)
        queries = known.queries.get(str(mined.spec.get("split", "train")) if mined else split)
        return [("train", 0, None if queries is None else queries * int(step.spec.get("epochs", 1)))]
    if step.kind == "evaluations":
        if step.spec.get("fusion"):
            return [("fuse", 0, 0)]
        index = next((by_name[d] for d in step.deps if by_name[d].kind == "indexes"), None)
        stage = "evaluate" if index is None or index.name.startswith("index:bm25") else "evaluate (dense)"
        return [(stage, known.passages, known.queries.get(split))]
    return []


def _mining_stages(spec: dict[str, Any]) -> list[str]:
    """The cost stages a mine step's strategy (or mixture, ``bm25:3,random:1``) runs, by what each
    strategy of it declares (the planner checked the spec): the first stages it ranks by, with the
    spec's ``candidates``; a cross-encoder's re-scoring; an LLM's writing or judging (priced
    nowhere: its speed is the backend's)."""
    from retrieval_cli import mining

    config = mining.MiningConfig(**{k: spec[k] for k in ("strategy", "candidates") if k in spec})
    if any(s.generated for s in config.variants):
        return ["llm"]
    engines = config.engines()
    stages = (["dense mining"] if "dense" in engines else []) + (["bm25 mining"] if "bm25" in engines else [])
    if any(s.rescored for s in config.variants):
        stages.append("cross-encoder")
    if spec.get("judge"):  # the LLM judge's verdicts: priced nowhere, as an LLM's writing
        stages.append("llm")
    return stages or ["bm25 mining"]  # random draws cost what BM25 mining's selection does
