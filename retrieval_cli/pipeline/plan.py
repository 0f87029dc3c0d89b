"""The comparison planner: a recipe turned into steps (dataset, indexes, one mine -> train ->
index -> evaluate branch per strategy, the untrained and BM25 baselines, the report), each calling
the library function its command calls. Planning touches no files, so ``recipe.load`` can check a
recipe by planning it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from retrieval_cli import data as datasets
from retrieval_cli import evaluate as evaluation
from retrieval_cli import index as indexing
from retrieval_cli import mining, models, training
from retrieval_cli.data import irds, synthetic
from retrieval_cli.derive import pseudo_queries as generation
from retrieval_cli.errors import InputError
from retrieval_cli.pipeline import expect
from retrieval_cli.pipeline.dag import Step, hashed, ordered
from retrieval_cli.pipeline.recipe import Recipe, config_from, read
from retrieval_cli.report import reporting
from retrieval_cli.store import Artifact, BuildResult, Workspace, check_name
from retrieval_cli.training import clustering

RESERVED = ("untrained", "bm25-retrieval", "hybrid")  # the baseline systems every recipe evaluates


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
    for suffix in ("untrained", "teacher-ce", "bm25-retrieval", "hybrid"):
        artifact_name(path, "name", f"{name}-{suffix}")
    steps: list[Step] = []

    def add(step: Step) -> Step:
        steps.append(step)
        return step

    base = Path(path).parent
    # Where every model of the recipe runs (a section's own ``device`` wins); never part of a step's
    # spec, so moving a recipe to a GPU machine reruns nothing.
    device = s.get("device", "auto")
    try:
        models.check_device(device if isinstance(device, str) else "")
    except InputError:
        raise InputError(f"{path}: device: give {models.DEVICES}, got {device!r}") from None
    on_device = lambda fragment: {"device": device, **(fragment or {})}  # noqa: E731
    # A recipe without strategies and with targets of its own (a BM25 regression over BEIR sets)
    # needs no training collection: no dataset section, no dataset step.
    home = s.get("dataset")
    if home is not None:
        add(Step("dataset", "datasets", _source_spec(home), [], dataset_maker(path, "dataset", home, base, name),
                 reads=source_reads("dataset", home, base)))

    # Training queries: the dataset's own split, or generated ones (title, ict, llm).
    queries = dict(s.get("train_queries") or {"split": "train"})
    split = str(split_by_id(path, "train_queries.split", queries.get("split", "train"), home))
    train_data = "dataset"
    if "method" in queries:
        gen = config_from(path, "train_queries", on_device(queries), generation.QueryGenConfig)
        add(Step("queries", "datasets", queries, ["dataset"], lambda ws, a: generation.generate_queries(ws, a["dataset"], gen)))
        train_data, split = "queries", gen.split
    elif set(queries) - {"split"}:
        raise InputError(f"{path}: train_queries: give split (the dataset's own) or method (title, ict, llm)")

    if home is not None:
        add(Step("index:bm25", "indexes", {}, [train_data], lambda ws, a: indexing.build_bm25(ws, a[train_data], indexing.BM25Config())))

    train_fragment = dict(s.get("train") or {})
    seeds = _seeds(path, train_fragment.pop("seeds", None))
    # How to survive an interruption, not what is trained: no part of a step's spec.
    checkpoint_steps = _whole(path, "train.checkpoint_steps", train_fragment.pop("checkpoint_steps", training.CHECKPOINT_STEPS))
    checkpoint_minutes = _minutes(path, train_fragment.pop("checkpoint_minutes", training.CHECKPOINT_MINUTES))
    trainer = config_from(path, "train", on_device(train_fragment), training.BiEncoderTrainConfig)
    needs_clusters = trainer.sampler in training.TOPIC_SAMPLERS and bool(s["strategies"])
    if needs_clusters:
        clusters_cfg = config_from(path, "clusters", on_device({"split": split, **(s.get("clusters") or {})}), clustering.ClusterConfig)
        add(Step("clusters", "clusters", clusters_cfg.versioned(), [train_data],
                 lambda ws, a: clustering.cluster_queries(ws, a[train_data], clusters_cfg)))

    # An optional cross-encoder, trained on one strategy's negatives, for strategies that need a teacher.
    ce_fragment = s.get("cross_encoder")
    strategies = s["strategies"]
    if ce_fragment is not None:
        ce_fragment = dict(ce_fragment)
        ce_source = str(ce_fragment.pop("negatives", ""))
        if ce_source not in strategies:
            raise InputError(f"{path}: cross_encoder.negatives: name one of the strategies ({', '.join(strategies)})")
        ce_cfg = config_from(path, "cross_encoder", on_device(ce_fragment), training.CrossEncoderTrainConfig)

    evaluate_cfg = config_from(path, "evaluate", on_device(s.get("evaluate")), evaluation.EvaluateConfig, drop=("rerank", "rerank_depth", "rerank_batch_size"))
    targets = _targets(path, s.get("evaluate_on"), evaluate_cfg, base, name, home)
    evaluated: list[str] = []

    def evaluate_step(run: str, index_step: str, target: _Target) -> None:
        """``run`` names the step and its artifact: a seed's own, so `report --all` sees every seed
        (the report folds them back into one system: their models share one name)."""
        step = f"evaluate:{run}{target.suffix}"
        artifact = f"{name}-{run}{target.tag}"
        add(Step(step, "evaluations", target.config.versioned(), [index_step],
                 lambda ws, a, cfg=target.config: evaluation.evaluate(ws, index=a[index_step], config=cfg, name=artifact)))
        evaluated.append(step)

    baselines = _baselines(path, s.get("baselines"))
    # Targets on one corpus (splits of the training collection: MS MARCO's dl19, dl20 and dev)
    # share each model's dense index, made once under the first such target's name: an index of
    # 8.8M passages is 20 GB, not to be written once per split.
    corpus_suffix: dict[str, str] = {}
    for target in targets:
        corpus_suffix.setdefault(target.step, target.suffix)
    for target in targets:
        if target.step != "dataset":
            add(Step(target.step, "datasets", target.spec, [], target.make, reads=target.reads))
        if "untrained" in baselines:
            index_step = f"index:untrained{corpus_suffix[target.step]}"
            if corpus_suffix[target.step] == target.suffix:
                add(Step(index_step, "indexes", {"model": trainer.base}, [target.step],
                         lambda ws, a, t=target: indexing.build_dense(ws, a[t.step], indexing.DenseConfig(model=trainer.base, device=device), name=f"{name}-untrained{t.tag}")))
            evaluate_step("untrained", index_step, target)
        if "bm25-retrieval" in baselines:
            retrieval_index = "index:bm25"
            if train_data != "dataset" or target.step != "dataset":  # a BM25 index of the target's own corpus
                retrieval_index = f"index:bm25-retrieval{target.suffix}"
                add(Step(retrieval_index, "indexes", {}, [target.step], lambda ws, a, t=target: indexing.build_bm25(ws, a[t.step], indexing.BM25Config())))
            evaluate_step("bm25-retrieval", retrieval_index, target)
        if "hybrid" not in baselines:
            continue
        # The hybrid baseline: the two runs above fused by reciprocal rank (no retrieval of its own).
        pair = [f"evaluate:untrained{target.suffix}", f"evaluate:bm25-retrieval{target.suffix}"]
        fused_cfg = dataclasses.replace(target.config, fusion="rrf")
        add(Step(f"evaluate:hybrid{target.suffix}", "evaluations", fused_cfg.versioned(), pair,
                 lambda ws, a, cfg=fused_cfg, pair=pair, t=target: evaluation.evaluate(ws, fuse=[a[x] for x in pair], config=cfg, name=f"{name}-hybrid{t.tag}")))
        evaluated.append(f"evaluate:hybrid{target.suffix}")

    ce_model_step = None
    for label, fragment in strategies.items():
        label = str(label)
        if label in RESERVED:
            raise InputError(f"{path}: strategies: '{label}' names a baseline system; pick another name")
        longest = max((t.tag for t in targets), key=len)
        for suffix in ("-dense", *(f"-s{seed}" for seed in seeds)):  # the longest names it gives
            artifact_name(path, f"strategies.{label}", f"{name}-{label}{suffix}{longest}")
        fragment = dict(fragment or {})
        # Rounds (ANCE, RocketQA's second stage): mine with the model another strategy trained
        # (``model: trained:OTHER``) and start training from it (``base: trained:OTHER``), seed by seed.
        mined_with = _trained_ref(path, label, "model", fragment.get("model"), strategies)
        started_from = _trained_ref(path, label, "base", fragment.pop("base", None), strategies)
        if mined_with:
            fragment["model"] = "placeholder"  # replaced by the round before's model reference
        uses_ce = fragment.get("cross_encoder") == "trained"
        if uses_ce:
            if ce_fragment is None:
                raise InputError(f"{path}: strategies.{label}: cross_encoder: trained needs a cross_encoder section")
            fragment["cross_encoder"] = "placeholder"  # replaced by the trained model's reference
        mine_cfg = config_from(path, f"strategies.{label}", on_device({"split": split, **fragment}), mining.MiningConfig)
        if mined_with and not mine_cfg.engines() & {"dense"}:
            raise InputError(f"{path}: strategies.{label}: model: trained:{mined_with} needs a dense or hybrid strategy (it mines with that model)")
        deps = [train_data, "index:bm25"] + (["model:cross-encoder"] if uses_ce else [])
        spec = {"split": split, **{k: v for k, v in fragment.items() if k not in ("cross_encoder", "model", "device")}, "teacher": uses_ce}
        if "model" in fragment:
            spec["model"] = f"trained:{mined_with}" if mined_with else fragment["model"]
        if started_from:
            spec["base"] = f"trained:{started_from}"
        # A strategy mined with a trained model mines once per seed: seed s uses round-before seed s.
        per_seed = bool(mined_with)

        def mine_step(seed: int | None) -> str:
            return f"mine:{label}-s{seed}" if per_seed and seeds else f"mine:{label}"

        def trained_step(other: str, seed: int | None) -> str:
            return f"train:{other}-s{seed}" if seeds else f"train:{other}"

        for seed in (seeds or [None]) if per_seed else [None]:
            model_dep = [trained_step(mined_with, seed)] if mined_with else []

            def mine(ws: Workspace, a: dict[str, Artifact], cfg: mining.MiningConfig = mine_cfg, label: str = label, uses_ce: bool = uses_ce,
                     model_dep: list[str] = model_dep) -> BuildResult:
                if uses_ce:
                    cfg = dataclasses.replace(cfg, cross_encoder=a["model:cross-encoder"].ref)
                if model_dep:
                    cfg = dataclasses.replace(cfg, model=a[model_dep[0]].ref)
                indexes = indexing.ensure(ws, a[train_data], cfg.engines(), given=[a["index:bm25"]], model=cfg.model, device=cfg.device)
                return mining.mine_negatives(ws, a[train_data], cfg, indexes=indexes, name=f"{name}-{label}")

            add(Step(mine_step(seed), "negatives", spec, deps + model_dep, mine))
        if ce_fragment is not None and label == ce_source and ce_model_step is None:
            if uses_ce:
                raise InputError(f"{path}: cross_encoder.negatives: '{label}' itself needs the cross-encoder")
            if per_seed and seeds:
                raise InputError(f"{path}: cross_encoder.negatives: '{label}' is mined once per seed (a round); name a strategy mined once")
            ce_model_step = add(Step("model:cross-encoder", "models", ce_cfg.versioned(), [f"mine:{label}"],
                                     lambda ws, a, src=f"mine:{label}": training.train_cross_encoder(ws, a[src], ce_cfg, name=f"{name}-teacher-ce")))
        for seed in seeds or [trainer.seed]:
            run = f"{label}-s{seed}" if seeds else label  # a seed's steps; one name for every seed's model
            seeded = dataclasses.replace(trainer, seed=seed)
            negatives_step = mine_step(seed)
            start = [trained_step(started_from, seed)] if started_from else []
            train_deps = [negatives_step] + (["clusters"] if needs_clusters else []) + start
            what = {k: v for k, v in train_fragment.items() if k != "device"}  # where it runs is no part of the spec
            train_spec = {**what, "seed": seed} if seeds else what
            if started_from:
                train_spec["base"] = f"trained:{started_from}"

            def train(ws: Workspace, a: dict[str, Artifact], cfg: training.BiEncoderTrainConfig = seeded, src: str = negatives_step,
                      start: list[str] = start, label: str = label) -> BuildResult:
                if start:
                    cfg = dataclasses.replace(cfg, base=a[start[0]].ref)
                return training.train_bi_encoder(ws, a[src], cfg, clusters=a.get("clusters"), name=f"{name}-{label}",
                                                 checkpoint_steps=checkpoint_steps, checkpoint_minutes=checkpoint_minutes)

            add(Step(f"train:{run}", "models", train_spec, train_deps, train))
            for target in targets:
                index_step = f"index:model-{run}{corpus_suffix[target.step]}"
                if corpus_suffix[target.step] == target.suffix:
                    add(Step(index_step, "indexes", {}, [target.step, f"train:{run}"],
                             lambda ws, a, run=run, t=target, label=label: indexing.build_dense(
                                 ws, a[t.step], indexing.DenseConfig(model=a[f"train:{run}"].ref, device=device), name=f"{name}-{label}-dense{t.tag}")))
                evaluate_step(run, index_step, target)

    # A strategy mined with the trained cross-encoder depends on a step added after it: order them.
    steps = ordered(steps, path)
    report_fragment = dict(s.get("report") or {})
    expect.from_recipe(path, report_fragment)  # checked here; read by run_checked after the run
    for key in ("expect", "tolerance", "okish"):
        report_fragment.pop(key, None)
    baseline = str(report_fragment.pop("baseline", "untrained"))
    # A seeded strategy as baseline is every seed's evaluation on each target: the report folds them
    # into one row and tests per-query scores averaged over the seeds, as for any seeded system.
    seeded = [f"{baseline}-s{seed}" for seed in seeds]
    runs = seeded if seeded and f"evaluate:{seeded[0]}{targets[0].suffix}" in evaluated else [baseline]
    baseline_steps = [f"evaluate:{run}{t.suffix}" for t in targets for run in runs]
    if any(step not in evaluated for step in baseline_steps):
        raise InputError(f"{path}: report.baseline: name untrained, bm25-retrieval, hybrid or a strategy, got '{baseline}'")
    report_cfg = config_from(path, "report", report_fragment, reporting.ReportConfig, drop=("baseline", "suites"))
    suites: dict[str, list[str]] = {}
    for target in targets:  # each suite's datasets, as the report names them (the artifacts' names)
        if target.suite:
            suites.setdefault(target.suite, []).append(f"{name}{target.tag}")
    report_cfg = dataclasses.replace(report_cfg, suites=suites)

    def make_report(ws: Workspace, a: dict[str, Artifact]) -> BuildResult:
        cfg = dataclasses.replace(report_cfg, baseline=a[baseline_steps[0]].ref)
        return reporting.report(ws, [a[e] for e in evaluated], cfg, name=name, baselines=[a[b] for b in baseline_steps])

    spec = {"baseline": baseline, **report_fragment, **({"suites": suites} if suites else {})}
    steps.append(Step("report", "reports", spec, evaluated, make_report))
    return hashed(steps)


def _baselines(path: Path, value: Any) -> tuple[str, ...]:
    """``baselines``: which baseline systems every target gets (all three by default); a BEIR BM25
    regression needs only ``bm25-retrieval``. The hybrid fuses the other two, so it needs both."""
    if value is None:
        return RESERVED
    if not isinstance(value, list) or not value or any(v not in RESERVED for v in value):
        raise InputError(f"{path}: baselines: give a list of {', '.join(RESERVED)}, got {value!r}")
    if "hybrid" in value and not {"untrained", "bm25-retrieval"} <= set(value):
        raise InputError(f"{path}: baselines: hybrid fuses untrained and bm25-retrieval; list both")
    return tuple(v for v in RESERVED if v in value)


def _trained_ref(path: Path, label: str, key: str, value: Any, strategies: dict[str, Any]) -> str | None:
    """``trained:OTHER`` in a strategy's ``model`` or ``base``: the strategy OTHER, checked; None otherwise."""
    if not isinstance(value, str) or not value.startswith("trained:"):
        if key == "base" and value is not None:
            raise InputError(f"{path}: strategies.{label}.base: give trained:STRATEGY (the train section sets the base for all)")
        return None
    other = value.split(":", 1)[1]
    if other == label or other not in strategies:
        known = ", ".join(str(s) for s in strategies if s != label)
        raise InputError(f"{path}: strategies.{label}.{key}: trained:{other} names no other strategy (strategies: {known})")
    return other


def _source_spec(source: Any) -> dict[str, Any]:
    if isinstance(source, dict):
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in source.items()}
    return {"value": source}


def source_reads(where: str, source: Any, base: Path) -> tuple[tuple[str, Path], ...]:
    """The files and folders a dataset section imports, resolved against the recipe's folder."""
    if not isinstance(source, dict) or len(source) != 1:
        return ()
    (how, args), = source.items()
    if how == "beir":
        return ((f"{where}.beir", (base / str(args if not isinstance(args, dict) else args.get("path", ""))).resolve()),)
    if how == "trec-dl" and isinstance(args, dict):
        return tuple((f"{where}.trec-dl.{k}", (base / str(args[k])).resolve()) for k in ("collection", "topics", "qrels") if k in args)
    return ()


def dataset_maker(path: Path, where: str, source: Any, base: Path, artifact: str) -> Callable[[Workspace, dict[str, Artifact]], BuildResult]:
    """How a recipe's dataset section is made: synthetic, a BEIR folder, TREC-DL files, or an artifact
    already in the workspace (paths relative to the recipe)."""
    if not isinstance(source, dict) or len(source) != 1:
        raise InputError(f"{path}: {where}: give exactly one of synth, beir, trec-dl, ref")
    (how, args), = source.items()
    if how == "synth":
        synth = config_from(path, f"{where}.synth", args, synthetic.SynthConfig)
        return lambda ws, _: datasets.save(ws, synthetic.generate(synth), artifact, {"source": "synth", **dataclasses.asdict(synth)})
    if how == "beir":
        folder = (base / str(args if not isinstance(args, dict) else args.get("path", ""))).resolve()
        level = int(args.get("relevance_level", 1)) if isinstance(args, dict) else 1
        return lambda ws, _: datasets.import_beir(ws, folder, artifact, relevance_level=level)
    if how == "trec-dl":
        if not isinstance(args, dict) or not {"collection", "topics", "qrels"} <= set(args):
            raise InputError(f"{path}: {where}.trec-dl: needs collection, topics and qrels")
        files = {k: (base / str(args[k])).resolve() for k in ("collection", "topics", "qrels")}
        return lambda ws, _: datasets.import_trec_dl(ws, files["collection"], files["topics"], files["qrels"], artifact)
    if how == "irds":
        splits, query_field = irds_splits(path, f"{where}.irds", args)
        return lambda ws, _: irds.import_irds(ws, splits, artifact, query_field=query_field)
    if how == "ref":
        return lambda ws, _: BuildResult(ws.resolve(str(args), kind="datasets"), reused=True)
    raise InputError(f"{path}: {where}: unknown source '{how}' (synth, beir, trec-dl, irds, ref)")


def irds_splits(path: Path, where: str, args: Any) -> tuple[list[irds.IrdsSplit], str]:
    """An ``irds`` source: one id, a list of ``ID[=SPLIT[,LEVEL]]``, or a mapping with ``ids`` and
    ``query_field``; every id checked against ir_datasets' registry (nothing is downloaded)."""
    query_field = "text"
    if isinstance(args, dict):
        unknown = sorted(set(args) - {"ids", "query_field"})
        if unknown:
            raise InputError(f"{path}: {where}: unknown field '{unknown[0]}' (known: ids, query_field)")
        query_field = str(args.get("query_field", "text"))
        args = args.get("ids")
    ids = [args] if isinstance(args, str) else args
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise InputError(f"{path}: {where}: give ir_datasets ids, e.g. [msmarco-passage/train/judged, msmarco-passage/dev/small]")
    try:
        splits = [irds.IrdsSplit.parse(text) for text in ids]
        for split in splits:
            irds.load(split.id)
    except InputError as exc:
        raise InputError(f"{path}: {where}: {exc.problem}") from None
    return splits, query_field


def split_by_id(path: Path, where: str, split: Any, source: Any) -> Any:
    """A split given as an ir_datasets id (``msmarco-passage/trec-dl-2019/judged``) is the split
    that id became in the ``irds`` source it names; any other value is returned as it is."""
    if not isinstance(split, str) or "/" not in split:
        return split
    args = source.get("irds") if isinstance(source, dict) else None
    if args is None:
        raise InputError(f"{path}: {where}: '{split}' is an ir_datasets id, but the dataset is not an irds source")
    splits, _ = irds_splits(path, where, args)
    for one in splits:
        if one.id == split:
            return one.split
    raise InputError(f"{path}: {where}: '{split}' is not among the dataset's ids ({', '.join(s.id for s in splits)})")


@dataclass
class _Target:
    """Where trained and baseline systems are tested: a dataset step, a split, measures."""

    step: str  # "dataset" (the training collection) or target:NAME
    suffix: str  # appended to step names ("" for the training collection alone)
    tag: str  # appended to artifact names
    config: evaluation.EvaluateConfig
    spec: dict[str, Any] = field(default_factory=dict)
    make: Callable[[Workspace, dict[str, Artifact]], BuildResult] | None = None
    reads: tuple[tuple[str, Path], ...] = ()
    suite: str | None = None  # the evaluate_on suite it belongs to (the report averages each suite)


TARGET_FIELDS = ("dataset", "split", "measures", "depth", "self_hits")
SUITE_FIELDS = ("suite", "datasets", "measures", "depth", "self_hits")


def _targets(path: Path, section: Any, evaluate_cfg: evaluation.EvaluateConfig, base: Path, name: str, home: Any) -> list[_Target]:
    """``evaluate_on`` (target name -> dataset, split, measures, or a suite of datasets): every
    system is evaluated on each. Without it, the training collection's own split, as one target
    with today's step names. ``home`` is the recipe's dataset section (``dataset: same``)."""
    if section is None:
        return [_Target("dataset", "", "", evaluate_cfg)]
    if not isinstance(section, dict) or not section:
        raise InputError(f"{path}: evaluate_on: give target names, each with a dataset (synth, beir, trec-dl, irds, ref or same) or a suite")
    targets = []
    for label, fragment in section.items():
        label, fragment = str(label), dict(fragment or {})
        if "suite" in fragment:
            targets.extend(_suite(path, label, fragment, evaluate_cfg, base, name))
        else:
            targets.append(_target(path, label, fragment, evaluate_cfg, base, name, home))
    return targets


def _target(path: Path, label: str, fragment: dict[str, Any], evaluate_cfg: evaluation.EvaluateConfig, base: Path, name: str,
            home: Any, suite: str | None = None) -> _Target:
    """One target: a dataset (the training one, ``same``, or a source of its own) and its split,
    which may be given as the ir_datasets id it came from; one irds id alone is its own split."""
    where = f"evaluate_on.{label}"
    artifact_name(path, where, f"{name}-{label}")
    unknown = sorted(set(fragment) - set(TARGET_FIELDS))
    if unknown:
        raise InputError(f"{path}: {where}: unknown field '{unknown[0]}' (known: {', '.join(TARGET_FIELDS)})")
    source = fragment.pop("dataset", "same")
    if source == "same" and home is None:
        raise InputError(f"{path}: {where}: dataset: same needs the recipe's dataset section; give the target a dataset of its own")
    of = home if source == "same" else source
    if "split" in fragment:
        fragment["split"] = split_by_id(path, f"{where}.split", fragment["split"], of)
    elif isinstance(source, dict) and "irds" in source:
        ids, _ = irds_splits(path, f"{where}.dataset.irds", source["irds"])
        if len(ids) == 1:
            fragment["split"] = ids[0].split
    inherited = {k: v for k, v in dataclasses.asdict(evaluate_cfg).items() if k in TARGET_FIELDS + ("device",)}
    cfg = config_from(path, where, {**inherited, **fragment}, evaluation.EvaluateConfig, drop=("rerank", "rerank_depth", "rerank_batch_size"))
    if source == "same":
        return _Target("dataset", f"@{label}", f"-{label}", cfg, suite=suite)
    maker = dataset_maker(path, f"{where}.dataset", source, base, f"{name}-{label}")
    return _Target(f"target:{label}", f"@{label}", f"-{label}", cfg, _source_spec(source), maker,
                   source_reads(f"{where}.dataset", source, base), suite=suite)


def _suite(path: Path, label: str, fragment: dict[str, Any], evaluate_cfg: evaluation.EvaluateConfig, base: Path, name: str) -> list[_Target]:
    """``{suite: nano-beir}`` (or ``{suite: beir, datasets: [scifact, ...]}``): one target per
    dataset of the suite, each imported by its ir_datasets id and tested on its test split, named
    LABEL-DATASET; the report adds their mean as LABEL-mean."""
    where = f"evaluate_on.{label}"
    unknown = sorted(set(fragment) - set(SUITE_FIELDS))
    if unknown:
        raise InputError(f"{path}: {where}: unknown field '{unknown[0]}' (a suite takes: {', '.join(SUITE_FIELDS)})")
    suite, listed = fragment.pop("suite"), fragment.pop("datasets", None)
    if not isinstance(suite, str) or (listed is not None and not (isinstance(listed, list) and all(isinstance(d, str) for d in listed))):
        raise InputError(f"{path}: {where}: give suite: NAME (nano-beir, beir) and, optionally, datasets: [NAME, ...]")
    try:
        ids = irds.suite_ids(suite, listed)
    except InputError as exc:
        raise InputError(f"{path}: {where}: {exc.problem}") from None
    return [_target(path, f"{label}-{irds.suite_member(one)}", {"dataset": {"irds": one}, **fragment}, evaluate_cfg, base, name, None, suite=label)
            for one in ids]


def _whole(path: Path, where: str, value: Any) -> int:
    """A whole number >= 0 (``train.checkpoint_steps``: a resumable checkpoint every N steps, 0 none)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(f"{path}: {where}: give a whole number >= 0 (0: no checkpoints), got {value!r}")
    return value


def _minutes(path: Path, value: Any) -> float:
    """``train.checkpoint_minutes``: a resumable checkpoint every M minutes of training (0: none)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
        raise InputError(f"{path}: train.checkpoint_minutes: give a number of minutes >= 0 (0: none), got {value!r}")
    return float(value)


def _seeds(path: Path, value: Any) -> list[int]:
    """``train.seeds``: each strategy is trained once per seed, everything else equal."""
    if value is None:
        return []
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise InputError(f"{path}: train.seeds: give a list of integers, e.g. [13, 14, 15], got {value!r}")
    if len(set(value)) != len(value):
        raise InputError(f"{path}: train.seeds: a seed repeats: {value}")
    return list(value)
