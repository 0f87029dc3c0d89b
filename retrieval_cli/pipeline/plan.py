"""The comparison planner: a recipe turned into steps (dataset, indexes, one mine -> train ->
index -> evaluate branch per strategy, the untrained and BM25 baselines, the report), each calling
the library function its command calls. Planning touches no files, so ``recipe.load`` can check a
recipe by planning it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from retrieval_cli import data as datasets
from retrieval_cli import evaluate as evaluation
from retrieval_cli import index as indexing
from retrieval_cli import mining, training
from retrieval_cli.data import synthetic
from retrieval_cli.derive import pseudo_queries as generation
from retrieval_cli.errors import InputError
from retrieval_cli.pipeline.dag import Step, hashed, ordered
from retrieval_cli.pipeline.recipe import Recipe, config_from, read
from retrieval_cli.report import reporting
from retrieval_cli.store import Artifact, BuildResult, Workspace, check_name
from retrieval_cli.training import clustering

RESERVED = ("untrained", "bm25-retrieval")  # the baseline systems every recipe evaluates


def load(path: Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read a recipe and check it whole: planning builds every config (touching no files), so
    errors surface before any work."""
    recipe = read(path, overrides)
    plan(recipe)
    return recipe


def artifact_name(path: Path, where: str, name: str) -> str:
    """A name the recipe will give an artifact, checked while planning (before anything is written)."""
    try:
        return check_name(name)
    except InputError as exc:
        raise InputError(f"{path}: {where}: {exc}") from None


def plan(recipe: Recipe) -> list[Step]:
    """The recipe's steps in dependency order, with their spec hashes."""
    path, s = recipe.path, recipe.sections
    name = recipe.name
    for suffix in ("untrained", "teacher-ce", "bm25-retrieval"):
        artifact_name(path, "name", f"{name}-{suffix}")
    steps: list[Step] = []

    def add(step: Step) -> Step:
        steps.append(step)
        return step

    # Dataset: synthetic, a BEIR folder, TREC-DL files, or an artifact already in the workspace.
    source = s["dataset"]
    if not isinstance(source, dict) or len(source) != 1:
        raise InputError(f"{path}: dataset: give exactly one of synth, beir, trec-dl, ref")
    (how, args), = source.items()
    base = Path(path).parent
    if how == "synth":
        synth = config_from(path, "dataset.synth", args, synthetic.SynthConfig)
        make_data = lambda ws, _: datasets.save(ws, synthetic.generate(synth), name, {"source": "synth", **dataclasses.asdict(synth)})  # noqa: E731
    elif how == "beir":
        folder = (base / str(args if not isinstance(args, dict) else args.get("path", ""))).resolve()
        level = int(args.get("relevance_level", 1)) if isinstance(args, dict) else 1
        make_data = lambda ws, _: datasets.import_beir(ws, folder, name, relevance_level=level)  # noqa: E731
    elif how == "trec-dl":
        if not isinstance(args, dict) or not {"collection", "topics", "qrels"} <= set(args):
            raise InputError(f"{path}: dataset.trec-dl: needs collection, topics and qrels")
        files = {k: (base / str(args[k])).resolve() for k in ("collection", "topics", "qrels")}
        make_data = lambda ws, _: datasets.import_trec_dl(ws, files["collection"], files["topics"], files["qrels"], name)  # noqa: E731
    elif how == "ref":
        make_data = lambda ws, _: BuildResult(ws.resolve(str(args), kind="datasets"), reused=True)  # noqa: E731
    else:
        raise InputError(f"{path}: dataset: unknown source '{how}' (synth, beir, trec-dl, ref)")
    add(Step("dataset", "datasets", {how: args if not isinstance(args, Path) else str(args)}, [], make_data))

    # Training queries: the dataset's own split, or generated ones (title, ict, llm).
    queries = dict(s.get("train_queries") or {"split": "train"})
    split = str(queries.get("split", "train"))
    train_data = "dataset"
    if "method" in queries:
        gen = config_from(path, "train_queries", queries, generation.QueryGenConfig)
        add(Step("queries", "datasets", queries, ["dataset"], lambda ws, a: generation.generate_queries(ws, a["dataset"], gen)))
        train_data, split = "queries", gen.split
    elif set(queries) - {"split"}:
        raise InputError(f"{path}: train_queries: give split (the dataset's own) or method (title, ict, llm)")

    add(Step("index:bm25", "indexes", {}, [train_data], lambda ws, a: indexing.build_bm25(ws, a[train_data], indexing.BM25Config())))

    train_fragment = dict(s.get("train") or {})
    trainer = config_from(path, "train", train_fragment, training.BiEncoderTrainConfig)
    needs_clusters = trainer.sampler in training.TOPIC_SAMPLERS
    if needs_clusters:
        clusters_cfg = config_from(path, "clusters", {"split": split, **(s.get("clusters") or {})}, clustering.ClusterConfig)
        add(Step("clusters", "clusters", dataclasses.asdict(clusters_cfg), [train_data],
                 lambda ws, a: clustering.cluster_queries(ws, a[train_data], clusters_cfg)))

    # An optional cross-encoder, trained on one strategy's negatives, for strategies that need a teacher.
    ce_fragment = s.get("cross_encoder")
    strategies = s["strategies"]
    if ce_fragment is not None:
        ce_fragment = dict(ce_fragment)
        ce_source = str(ce_fragment.pop("negatives", ""))
        if ce_source not in strategies:
            raise InputError(f"{path}: cross_encoder.negatives: name one of the strategies ({', '.join(strategies)})")
        ce_cfg = config_from(path, "cross_encoder", ce_fragment, training.CrossEncoderTrainConfig)

    evaluate_cfg = config_from(path, "evaluate", s.get("evaluate"), evaluation.EvaluateConfig, drop=("rerank", "rerank_depth", "rerank_batch_size"))
    evaluated: list[str] = []

    def evaluate_step(label: str, index_step: str, dep_extra: list[str] | None = None) -> None:
        step = f"evaluate:{label}"
        add(Step(step, "evaluations", dataclasses.asdict(evaluate_cfg), [index_step, *(dep_extra or [])],
                 lambda ws, a: evaluation.evaluate(ws, index=a[index_step], config=evaluate_cfg, name=f"{name}-{label}")))
        evaluated.append(step)

    add(Step("index:untrained", "indexes", {"model": trainer.base}, ["dataset"],
             lambda ws, a: indexing.build_dense(ws, a["dataset"], indexing.DenseConfig(model=trainer.base), name=f"{name}-untrained")))
    evaluate_step("untrained", "index:untrained")
    retrieval_index = "index:bm25"
    if train_data != "dataset":  # generated queries live in their own dataset artifact
        retrieval_index = "index:bm25-retrieval"
        add(Step(retrieval_index, "indexes", {}, ["dataset"], lambda ws, a: indexing.build_bm25(ws, a["dataset"], indexing.BM25Config())))
    evaluate_step("bm25-retrieval", retrieval_index)

    ce_model_step = None
    for label, fragment in strategies.items():
        label = str(label)
        if label in RESERVED:
            raise InputError(f"{path}: strategies: '{label}' names a baseline system; pick another name")
        artifact_name(path, f"strategies.{label}", f"{name}-{label}-dense")  # the longest name it gives
        fragment = dict(fragment or {})
        uses_ce = fragment.get("cross_encoder") == "trained"
        if uses_ce:
            if ce_fragment is None:
                raise InputError(f"{path}: strategies.{label}: cross_encoder: trained needs a cross_encoder section")
            fragment["cross_encoder"] = "placeholder"  # replaced by the trained model's reference
        mine_cfg = config_from(path, f"strategies.{label}", {"split": split, **fragment}, mining.MiningConfig)
        deps = [train_data, "index:bm25"] + (["model:cross-encoder"] if uses_ce else [])

        def mine(ws: Workspace, a: dict[str, Artifact], cfg: mining.MiningConfig = mine_cfg, label: str = label, uses_ce: bool = uses_ce) -> BuildResult:
            if uses_ce:
                cfg = dataclasses.replace(cfg, cross_encoder=a["model:cross-encoder"].ref)
            indexes = indexing.ensure(ws, a[train_data], cfg.engines(), given=[a["index:bm25"]], model=cfg.model)
            return mining.mine_negatives(ws, a[train_data], cfg, indexes=indexes, name=f"{name}-{label}")

        add(Step(f"mine:{label}", "negatives", {"split": split, **{k: v for k, v in fragment.items() if k != "cross_encoder"}, "teacher": uses_ce}, deps, mine))
        if ce_fragment is not None and label == ce_source and ce_model_step is None:
            if uses_ce:
                raise InputError(f"{path}: cross_encoder.negatives: '{label}' itself needs the cross-encoder")
            ce_model_step = add(Step("model:cross-encoder", "models", dataclasses.asdict(ce_cfg), [f"mine:{label}"],
                                     lambda ws, a, src=f"mine:{label}": training.train_cross_encoder(ws, a[src], ce_cfg, name=f"{name}-teacher-ce")))
        train_deps = [f"mine:{label}"] + (["clusters"] if needs_clusters else [])
        add(Step(f"train:{label}", "models", train_fragment, train_deps,
                 lambda ws, a, label=label: training.train_bi_encoder(ws, a[f"mine:{label}"], trainer, clusters=a.get("clusters"), name=f"{name}-{label}")))
        add(Step(f"index:model-{label}", "indexes", {}, ["dataset", f"train:{label}"],
                 lambda ws, a, label=label: indexing.build_dense(ws, a["dataset"], indexing.DenseConfig(model=a[f"train:{label}"].ref), name=f"{name}-{label}-dense")))
        evaluate_step(label, f"index:model-{label}")

    # A strategy mined with the trained cross-encoder depends on a step added after it: order them.
    steps = ordered(steps, path)
    report_fragment = dict(s.get("report") or {})
    baseline = str(report_fragment.pop("baseline", "untrained"))
    if f"evaluate:{baseline}" not in evaluated:
        raise InputError(f"{path}: report.baseline: name untrained, bm25-retrieval or a strategy, got '{baseline}'")
    report_cfg = config_from(path, "report", report_fragment, reporting.ReportConfig, drop=("baseline",))

    def make_report(ws: Workspace, a: dict[str, Artifact]) -> BuildResult:
        cfg = dataclasses.replace(report_cfg, baseline=a[f"evaluate:{baseline}"].ref)
        return reporting.report(ws, [a[e] for e in evaluated], cfg, name=name)

    steps.append(Step("report", "reports", {"baseline": baseline, **report_fragment}, evaluated, make_report))
    return hashed(steps)
