"""The planner's step builders: each turns one part of a recipe into declared steps (name, kind,
spec, inputs, and how the step makes its artifact) and adds them to the plan. A step's ``make``
is a module-level function bound to explicit arguments (``functools.partial``), never a closure
over a loop's variables; step names come from ``names``. ``plan.plan`` calls the builders in
order; each can be called, and tested, on its own ``Planning``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from retrieval_cli import evaluate as evaluation
from retrieval_cli import index as indexing
from retrieval_cli import mining, training
from retrieval_cli.derive import pseudo_queries as generation
from retrieval_cli.errors import InputError
from retrieval_cli.pipeline import expect, names
from retrieval_cli.pipeline.dag import Step
from retrieval_cli.pipeline.recipe import BASELINES, config_from, minutes, seeds_of, trained_ref, whole_number
from retrieval_cli.pipeline.sources import dataset_maker, source_reads, source_spec, split_by_id
from retrieval_cli.pipeline.targets import Target
from retrieval_cli.progress import Progress, silent
from retrieval_cli.report import reporting
from retrieval_cli.store import Artifact, BuildResult, Workspace
from retrieval_cli.training import clustering


@dataclass
class Planning:
    """What the builders share: where the recipe is, its name and device, the training data's
    step and split, and the steps and evaluations planned so far."""

    path: Path
    name: str
    device: str
    home: Any  # the dataset section (None: a recipe of baselines on targets of their own)
    steps: list[Step] = field(default_factory=list)
    evaluated: list[str] = field(default_factory=list)  # evaluation steps, in the report's order
    train_data: str = names.DATASET  # the dataset step training queries come from
    split: str = "train"
    corpus_suffix: dict[str, str] = field(default_factory=dict)  # dataset step -> the first target's suffix on it
    base_model: str = ""  # the train section's base (ADORE's frozen index is the training corpus under it)

    @property
    def base(self) -> Path:
        return Path(self.path).parent

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def on_device(self, fragment: Any) -> dict[str, Any]:
        """A section's settings with the recipe's device (a section's own ``device`` wins)."""
        return {"device": self.device, **(fragment or {})}


@dataclass(frozen=True)
class Training:
    """The ``train`` section: one trainer config for every strategy, its seeds, and how to survive
    an interruption (checkpoints: no part of a step's spec)."""

    config: training.BiEncoderTrainConfig
    spec: dict[str, Any]  # the section as given, less its device: the train steps' spec
    seeds: list[int]
    checkpoint_steps: int
    checkpoint_minutes: float
    clusters: bool  # a topic sampler: the query clusters step feeds every training


@dataclass(frozen=True)
class Teacher:
    """The ``cross_encoder`` section: a cross-encoder trained on one strategy's negatives."""

    source: str
    config: training.CrossEncoderTrainConfig


@dataclass(frozen=True)
class Strategy:
    """One strategy, checked: its mining config, its spec, and how it chains to others (a round
    mines with another strategy's model and may start training from it)."""

    label: str
    config: mining.MiningConfig | None  # None: ADORE, whose negatives are retrieved inside training
    spec: dict[str, Any]
    mined_with: str | None
    started_from: str | None
    teacher: bool  # mined with the recipe's trained cross-encoder
    per_seed: bool  # mined with a trained model: once per seed
    adore: training.AdoreConfig | None = None
    train: dict[str, Any] = field(default_factory=dict)  # the strategy's own train settings, over the train section's


# ---- how steps make their artifacts (bound with functools.partial) -------------------------------

def _make_queries(ws: Workspace, a: dict[str, Artifact], *, config: generation.QueryGenConfig, progress: Progress = silent) -> BuildResult:
    return generation.generate_queries(ws, a[names.DATASET], config, progress=progress)


def _make_bm25(ws: Workspace, a: dict[str, Artifact], *, data: str, progress: Progress = silent) -> BuildResult:
    return indexing.build_bm25(ws, a[data], indexing.BM25Config(), progress=progress)


def _make_clusters(ws: Workspace, a: dict[str, Artifact], *, data: str, config: clustering.ClusterConfig, progress: Progress = silent) -> BuildResult:
    return clustering.cluster_queries(ws, a[data], config, progress=progress)


def _make_dense(ws: Workspace, a: dict[str, Artifact], *, data: str, model: str, device: str, name: str, trained: bool = False,
                progress: Progress = silent) -> BuildResult:
    """A dense index of ``data``'s corpus with ``model`` (a model name, or with ``trained`` the step whose model it is)."""
    config = indexing.DenseConfig(model=a[model].ref if trained else model, device=device)
    return indexing.build_dense(ws, a[data], config, name=name, progress=progress)


def _make_evaluate(ws: Workspace, a: dict[str, Artifact], *, index: str, config: evaluation.EvaluateConfig, name: str,
                   progress: Progress = silent) -> BuildResult:
    return evaluation.evaluate(ws, index=a[index], config=config, name=name, progress=progress)


def _make_fused(ws: Workspace, a: dict[str, Artifact], *, pair: list[str], config: evaluation.EvaluateConfig, name: str,
                progress: Progress = silent) -> BuildResult:
    return evaluation.evaluate(ws, fuse=[a[x] for x in pair], config=config, name=name, progress=progress)


def _make_mine(ws: Workspace, a: dict[str, Artifact], *, config: mining.MiningConfig, data: str, teacher: bool, model_step: str | None,
               name: str, progress: Progress = silent) -> BuildResult:
    if teacher:
        config = dataclasses.replace(config, cross_encoder=a[names.TEACHER].ref)
    if model_step:
        config = dataclasses.replace(config, model=a[model_step].ref)
    indexes = indexing.ensure(ws, a[data], config.engines(), given=[a[names.BM25]], model=config.model, device=config.device, progress=progress)
    return mining.mine_negatives(ws, a[data], config, indexes=indexes, name=name, progress=progress)


def _make_teacher(ws: Workspace, a: dict[str, Artifact], *, source: str, config: training.CrossEncoderTrainConfig, name: str,
                  progress: Progress = silent) -> BuildResult:
    return training.train_cross_encoder(ws, a[source], config, name=name, progress=progress)


def _make_train(ws: Workspace, a: dict[str, Artifact], *, config: training.BiEncoderTrainConfig, source: str, start: str | None, name: str,
                checkpoint_steps: int, checkpoint_minutes: float, progress: Progress = silent) -> BuildResult:
    if start:
        config = dataclasses.replace(config, base=a[start].ref)
    return training.train_bi_encoder(ws, a[source], config, clusters=a.get(names.CLUSTERS), name=name,
                                     checkpoint_steps=checkpoint_steps, checkpoint_minutes=checkpoint_minutes, progress=progress)


def _make_adore(ws: Workspace, a: dict[str, Artifact], *, config: training.AdoreConfig, index: str, name: str,
                progress: Progress = silent) -> BuildResult:
    return training.train_adore(ws, a[index], config, name=name, progress=progress)


def _make_report(ws: Workspace, a: dict[str, Artifact], *, config: reporting.ReportConfig, evaluated: list[str], baselines: list[str],
                 name: str, progress: Progress = silent) -> BuildResult:
    config = dataclasses.replace(config, baseline=a[baselines[0]].ref)
    return reporting.report(ws, [a[e] for e in evaluated], config, name=name, baselines=[a[b] for b in baselines], progress=progress)


# ---- builders -------------------------------------------------------------------------------------

def dataset_step(p: Planning) -> None:
    """The training collection, when the recipe has one."""
    if p.home is not None:
        p.add(Step(names.DATASET, "datasets", source_spec(p.home), [], dataset_maker(p.path, "dataset", p.home, p.base, p.name),
                   reads=source_reads("dataset", p.home, p.base)))


def training_queries(p: Planning, section: Any) -> None:
    """Training queries: the dataset's own split (by name or ir_datasets id), or generated ones
    (title, ict, llm) as a dataset step of their own."""
    queries = dict(section or {"split": "train"})
    p.split = str(split_by_id(p.path, "train_queries.split", queries.get("split", "train"), p.home))
    if "method" in queries:
        config = config_from(p.path, "train_queries", p.on_device(queries), generation.QueryGenConfig)
        p.add(Step(names.QUERIES, "datasets", queries, [names.DATASET], partial(_make_queries, config=config)))
        p.train_data, p.split = names.QUERIES, config.split
    elif set(queries) - {"split"}:
        raise InputError(f"{p.path}: train_queries: give split (the dataset's own) or method (title, ict, llm)")
    if p.home is not None:
        p.add(Step(names.BM25, "indexes", {}, [p.train_data], partial(_make_bm25, data=p.train_data)))


def training_plan(p: Planning, section: Any, strategies: dict[str, Any], clusters_section: Any) -> Training:
    """The ``train`` section checked, and the clusters step a topic sampler needs."""
    fragment = dict(section or {})
    seeds = seeds_of(p.path, fragment.pop("seeds", None))
    checkpoint_steps = whole_number(p.path, "train.checkpoint_steps", fragment.pop("checkpoint_steps", training.CHECKPOINT_STEPS))
    checkpoint_minutes = minutes(p.path, fragment.pop("checkpoint_minutes", training.CHECKPOINT_MINUTES))
    if "max_length" in fragment:  # the CLI's name for it (train --max-length): either, not both
        if "max_seq_length" in fragment:
            raise InputError(f"{p.path}: train: give max_seq_length or max_length (the same field), not both")
        fragment["max_seq_length"] = fragment.pop("max_length")
    config = config_from(p.path, "train", p.on_device(fragment), training.BiEncoderTrainConfig)
    clusters = config.sampler in training.TOPIC_SAMPLERS and bool(strategies)
    if clusters:
        cluster_config = config_from(p.path, "clusters", p.on_device({"split": p.split, **(clusters_section or {})}), clustering.ClusterConfig)
        p.add(Step(names.CLUSTERS, "clusters", cluster_config.versioned(), [p.train_data],
                   partial(_make_clusters, data=p.train_data, config=cluster_config)))
    spec = {k: v for k, v in fragment.items() if k != "device"}  # where it runs is no part of the spec
    p.base_model = config.base
    return Training(config, spec, seeds, checkpoint_steps, checkpoint_minutes, clusters)


def teacher_plan(p: Planning, section: Any, strategies: dict[str, Any]) -> Teacher | None:
    """The optional cross-encoder, trained on one strategy's negatives, for strategies that need a teacher."""
    if section is None:
        return None
    fragment = dict(section)
    source = str(fragment.pop("negatives", ""))
    if source not in strategies:
        raise InputError(f"{p.path}: cross_encoder.negatives: name one of the strategies ({', '.join(strategies)})")
    return Teacher(source, config_from(p.path, "cross_encoder", p.on_device(fragment), training.CrossEncoderTrainConfig))


def evaluate_step(p: Planning, system: str, index_step: str, target: Target) -> None:
    """``system`` evaluated on ``target`` with ``index_step``. A seed's run names the step and its
    artifact, so `report --all` sees every seed (the report folds them back into one system)."""
    step = names.evaluate(system, target.suffix)
    p.add(Step(step, "evaluations", target.config.versioned(), [index_step],
               partial(_make_evaluate, index=index_step, config=target.config, name=f"{p.name}-{system}{target.tag}")))
    p.evaluated.append(step)


def target_steps(p: Planning, target: Target, baselines: tuple[str, ...], base_model: str) -> None:
    """A target's own dataset step and its baselines: the untrained model, BM25 retrieval and
    their reciprocal-rank fusion (the hybrid). Targets on one corpus share its dense index."""
    if target.step != names.DATASET:
        p.add(Step(target.step, "datasets", target.spec, [], target.make, reads=target.reads))
    shared = p.corpus_suffix.setdefault(target.step, target.suffix)
    if "untrained" in baselines:
        index_step = names.untrained_index(shared)
        if shared == target.suffix:
            p.add(Step(index_step, "indexes", {"model": base_model}, [target.step],
                       partial(_make_dense, data=target.step, model=base_model, device=p.device, name=f"{p.name}{target.tag}-untrained")))
        evaluate_step(p, "untrained", index_step, target)
    if "bm25-retrieval" in baselines:
        retrieval_index = names.BM25
        if p.train_data != names.DATASET or target.step != names.DATASET:  # a BM25 index of the target's own corpus
            retrieval_index = names.bm25_index(target.suffix)
            p.add(Step(retrieval_index, "indexes", {}, [target.step], partial(_make_bm25, data=target.step)))
        evaluate_step(p, "bm25-retrieval", retrieval_index, target)
    if "hybrid" in baselines:
        pair = [names.evaluate("untrained", target.suffix), names.evaluate("bm25-retrieval", target.suffix)]
        fused = dataclasses.replace(target.config, fusion="rrf")
        step = names.evaluate("hybrid", target.suffix)
        p.add(Step(step, "evaluations", fused.versioned(), pair, partial(_make_fused, pair=pair, config=fused, name=f"{p.name}-hybrid{target.tag}")))
        p.evaluated.append(step)


def strategy_plan(p: Planning, label: str, fragment: Any, strategies: dict[str, Any], teacher: Teacher | None, seeds: list[int],
                  targets: list[Target]) -> Strategy:
    """One strategy checked: its name, the names it gives, its chain to other strategies (rounds:
    ``model: trained:OTHER`` mines with the model OTHER trained, ``base: trained:OTHER`` starts
    from it, seed by seed; ANCE, RocketQA's second stage), and its mining config and spec."""
    if label in BASELINES:
        raise InputError(f"{p.path}: strategies: '{label}' names a baseline system; pick another name")
    longest = max((t.tag for t in targets), key=len)
    for seed in seeds or [None]:  # the longest names it gives: its indexes'
        names.artifact(p.path, f"strategies.{label}", f"{p.name}{longest}-{names.run(label, seed)}")
    fragment = dict(fragment or {})
    own_train = fragment.pop("train", None) or {}
    if not isinstance(own_train, dict) or {"seeds", "base", "checkpoint_steps", "checkpoint_minutes", "device"} & set(own_train):
        raise InputError(f"{p.path}: strategies.{label}.train: give train settings for this strategy alone (not seeds, base, checkpoints or device)")
    if fragment.get("strategy") == ADORE:
        return _adore_strategy(p, label, fragment, own_train)
    mined_with = trained_ref(p.path, label, "model", fragment.get("model"), strategies)
    started_from = trained_ref(p.path, label, "base", fragment.pop("base", None), strategies)
    if mined_with:
        fragment["model"] = "placeholder"  # replaced by the round before's model reference
    uses_teacher = fragment.get("cross_encoder") == "trained"
    if uses_teacher:
        if teacher is None:
            raise InputError(f"{p.path}: strategies.{label}: cross_encoder: trained needs a cross_encoder section")
        fragment["cross_encoder"] = "placeholder"  # replaced by the trained model's reference
    config = config_from(p.path, f"strategies.{label}", p.on_device({"split": p.split, **fragment}), mining.MiningConfig)
    if mined_with and not config.engines() & {"dense"}:
        raise InputError(f"{p.path}: strategies.{label}: model: trained:{mined_with} needs a dense or hybrid strategy (it mines with that model)")
    spec = {"split": p.split, **{k: v for k, v in fragment.items() if k not in ("cross_encoder", "model", "device")}, "teacher": uses_teacher}
    if "model" in fragment:
        spec["model"] = f"trained:{mined_with}" if mined_with else fragment["model"]
    if started_from:
        spec["base"] = f"trained:{started_from}"
    return Strategy(label, config, spec, mined_with, started_from, uses_teacher, per_seed=bool(mined_with), train=own_train)


ADORE = "adore"  # no mining strategy: its negatives are retrieved inside every training step
ADORE_SHARED = ("epochs", "batch_size", "warmup_ratio", "scale")  # the train section's budget, the same for every strategy


def _adore_strategy(p: Planning, label: str, fragment: dict[str, Any], own_train: dict[str, Any]) -> Strategy:
    """An ADORE strategy: its query encoder trains against the training corpus's untrained dense
    index (``index:frozen``), with the train section's budget and its own ADORE settings."""
    if own_train:
        raise InputError(f"{p.path}: strategies.{label}: give adore's settings in the strategy itself, not under train")
    settings = {k: v for k, v in fragment.items() if k != "strategy"}
    config = config_from(p.path, f"strategies.{label}", p.on_device({"split": p.split, **settings}), training.AdoreConfig)
    return Strategy(label, None, {"strategy": ADORE, "split": p.split, **settings}, None, None, False, per_seed=False, adore=config)


def mine_steps(p: Planning, st: Strategy, seeds: list[int]) -> None:
    """A strategy's negatives: once, or once per seed for a round (seed s mines with the round
    before's seed-s model). ADORE mines nothing: its index of the training corpus, once."""
    if st.adore is not None:
        if not any(step.name == names.FROZEN for step in p.steps):
            p.add(Step(names.FROZEN, "indexes", {"model": p.base_model}, [p.train_data], partial(
                _make_dense, data=p.train_data, model=p.base_model, device=p.device, name=f"{p.name}-train-untrained")))
        return
    deps = [p.train_data, names.BM25] + ([names.TEACHER] if st.teacher else [])
    for seed in (seeds or [None]) if st.per_seed else [None]:
        model_step = names.train(st.mined_with, seed) if st.mined_with else None
        p.add(Step(names.mine(st.label, seed), "negatives", st.spec, deps + ([model_step] if model_step else []),
                   partial(_make_mine, config=st.config, data=p.train_data, teacher=st.teacher, model_step=model_step, name=f"{p.name}-{st.label}")))


def teacher_step(p: Planning, st: Strategy, teacher: Teacher, seeds: list[int]) -> None:
    """The cross-encoder teacher, trained on ``st``'s negatives (the strategy it names)."""
    if st.teacher:
        raise InputError(f"{p.path}: cross_encoder.negatives: '{st.label}' itself needs the cross-encoder")
    if st.per_seed and seeds:
        raise InputError(f"{p.path}: cross_encoder.negatives: '{st.label}' is mined once per seed (a round); name a strategy mined once")
    source = names.mine(st.label)
    p.add(Step(names.TEACHER, "models", teacher.config.versioned(), [source],
               partial(_make_teacher, source=source, config=teacher.config, name=f"{p.name}-teacher-ce")))


def trained_steps(p: Planning, st: Strategy, tr: Training, seed: int, targets: list[Target]) -> None:
    """One seed of a strategy: its training, and its model's index and evaluation on every target.
    Its steps and artifacts carry the seed (``models/R-bm25-s13``); an index is named for its
    target, then its system (``indexes/R-cacm-bm25-s13``)."""
    run = names.run(st.label, seed if tr.seeds else None)
    train_step = _adore_step(p, st, tr, seed, run) if st.adore is not None else _train_step(p, st, tr, seed, run)
    for target in targets:
        shared = p.corpus_suffix[target.step]
        index_step = names.model_index(run, shared)
        if shared == target.suffix:
            p.add(Step(index_step, "indexes", {}, [target.step, train_step], partial(
                _make_dense, data=target.step, model=train_step, trained=True, device=p.device, name=f"{p.name}{target.tag}-{run}")))
        evaluate_step(p, run, index_step, target)


def _train_step(p: Planning, st: Strategy, tr: Training, seed: int, run: str) -> str:
    """A seed's bi-encoder training on the strategy's negatives: the train section's settings,
    the strategy's own over them (``strategies.X.train``), from a round's model when it says so."""
    seeded = seed if tr.seeds else None
    start = names.train(st.started_from, seeded) if st.started_from else None
    deps = [names.mine(st.label, seeded if st.per_seed else None)] + ([names.CLUSTERS] if tr.clusters else []) + ([start] if start else [])
    spec = {**tr.spec, **st.train, **({"seed": seed} if tr.seeds else {})}
    if st.started_from:
        spec["base"] = f"trained:{st.started_from}"
    config = dataclasses.replace(tr.config, seed=seed)
    if st.train:
        config = config_from(p.path, f"strategies.{st.label}.train", {**dataclasses.asdict(config), **st.train}, training.BiEncoderTrainConfig)
    step = names.train(st.label, seeded)
    p.add(Step(step, "models", spec, deps, partial(
        _make_train, config=config, source=deps[0], start=start, name=f"{p.name}-{run}",
        checkpoint_steps=tr.checkpoint_steps, checkpoint_minutes=tr.checkpoint_minutes)))
    return step


def _adore_step(p: Planning, st: Strategy, tr: Training, seed: int, run: str) -> str:
    """A seed's ADORE training against the frozen index, with the train section's budget where
    the strategy does not set it."""
    assert st.adore is not None
    config = dataclasses.replace(st.adore, seed=seed, **{k: getattr(tr.config, k) for k in ADORE_SHARED if k not in st.spec})
    step = names.train(st.label, seed if tr.seeds else None)
    p.add(Step(step, "models", {**st.spec, **{k: getattr(config, k) for k in ADORE_SHARED}, "seed": seed}, [names.FROZEN],
               partial(_make_adore, config=config, index=names.FROZEN, name=f"{p.name}-{run}")))
    return step


def report_step(p: Planning, section: Any, seeds: list[int], targets: list[Target]) -> Step:
    """The report over every evaluation, against the baseline the recipe names on each target (a
    seeded strategy: every seed's evaluation, folded into one row), with the suites' means."""
    fragment = dict(section or {})
    expect.from_recipe(p.path, fragment)  # checked here; read by run_checked after the run
    for key in ("expect", "tolerance", "okish"):
        fragment.pop(key, None)
    baseline = str(fragment.pop("baseline", "untrained"))
    seeded = [names.run(baseline, seed) for seed in seeds]
    runs = seeded if seeded and names.evaluate(seeded[0], targets[0].suffix) in p.evaluated else [baseline]
    baseline_steps = [names.evaluate(run, t.suffix) for t in targets for run in runs]
    if any(step not in p.evaluated for step in baseline_steps):
        raise InputError(f"{p.path}: report.baseline: name untrained, bm25-retrieval, hybrid or a strategy, got '{baseline}'")
    config = config_from(p.path, "report", fragment, reporting.ReportConfig, drop=("baseline", "suites"))
    suites: dict[str, list[str]] = {}
    for target in targets:  # each suite's datasets, as the report names them (the artifacts' names)
        if target.suite:
            suites.setdefault(target.suite, []).append(f"{p.name}{target.tag}")
    config = dataclasses.replace(config, suites=suites)
    spec = {"baseline": baseline, **fragment, **({"suites": suites} if suites else {})}
    return Step(names.REPORT, "reports", spec, list(p.evaluated),
                partial(_make_report, config=config, evaluated=list(p.evaluated), baselines=baseline_steps, name=p.name))
