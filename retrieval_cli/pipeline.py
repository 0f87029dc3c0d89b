"""Recipes: a negative-mining comparison as a DAG of steps, run through the library functions.

A recipe (YAML) names a dataset, how training queries are made, the mining strategies to
compare, one training budget for all of them, and how to evaluate and report. ``plan`` turns it
into steps (dataset, indexes, one mine -> train -> index -> evaluate branch per strategy, the
untrained and BM25 baselines, the report), each calling the same function its command calls.

Reruns follow weasel's idea: each step's *spec hash* covers its recipe fragment and its inputs'
hashes, and ``<workspace>/pipelines/<recipe>/<step>.json`` (one lock file per step, so parallel
``make -j`` steps never write the same file) records the hash and artifact the step last produced.
A step whose hash matches its lock and whose artifact still exists is done; ``status`` and
``--dry-run`` read only that. A full run calls the library for every step anyway, whose artifact
versions make it a cache hit when nothing changed, so the lock decides what is *shown*, never
what is correct.

``makefile`` writes the same DAG for make: one target per step (its lock file), depending on its
inputs' lock files and on a ``<step>.spec`` file holding its hash, rewritten only when the hash
changes, so make reruns exactly the steps ``status`` calls changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from retrieval_cli import clustering, datasets, evaluation, generation, indexing, mining, reporting, synthetic, training
from retrieval_cli.artifacts import Artifact, BuildResult, Workspace, atomic_write_text
from retrieval_cli.errors import InputError
from retrieval_cli.progress import Progress, silent

RESERVED = ("untrained", "bm25-retrieval")  # the baseline systems every recipe evaluates
SECTIONS = ("name", "dataset", "train_queries", "cross_encoder", "strategies", "clusters", "train", "evaluate", "report")


@dataclass
class Step:
    """One node of the DAG: what it is, what it needs, and how to make its artifact."""

    name: str
    kind: str
    spec: dict[str, Any]
    deps: list[str]
    make: Callable[[dict[str, Artifact]], BuildResult]
    hash: str = ""


@dataclass
class Recipe:
    """A parsed recipe: the raw sections, checked, and where it came from."""

    name: str
    path: Path
    sections: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)  # --set values applied to the file's


def _fields(path: Path, where: str, fragment: Any, cls: type, drop: tuple[str, ...] = ()) -> Any:
    """Build dataclass ``cls`` from a recipe fragment; unknown or mistyped fields name the place."""
    if fragment is None:
        fragment = {}
    if not isinstance(fragment, dict):
        raise InputError(f"{path}: {where}: expected a mapping, got {type(fragment).__name__}")
    known = {f.name for f in dataclasses.fields(cls) if f.init} - set(drop)
    for key in fragment:
        if key not in known:
            raise InputError(f"{path}: {where}: unknown field '{key}' (known: {', '.join(sorted(known))})")
    try:
        config = cls(**fragment)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: {where}: {exc}") from None
    if hasattr(config, "check"):
        try:
            config.check()
        except InputError as exc:
            raise InputError(f"{path}: {where}: {exc}") from None
    return config


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``KEY.PATH=VALUE`` strings (values read as YAML) into {dotted key: value}. A value naming an
    existing file or folder is taken relative to the current directory, not the recipe's."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. train.epochs=2")
        try:
            value = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            value = text
        if isinstance(value, str) and value and Path(value).exists():
            value = str(Path(value).resolve())
        out[key.strip()] = value
    return out


def _override(raw: dict[str, Any], overrides: dict[str, Any], path: Path) -> None:
    for key, value in overrides.items():
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise InputError(f"{path}: --set {key}: '{part}' is not a section")
            node = child
        node[leaf] = value


def load(path: Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read and check a recipe file, with ``overrides`` ({"train.epochs": 2}) applied; errors name
    the file and the section."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"recipe not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a recipe is a mapping of sections ({', '.join(SECTIONS)})")
    _override(raw, overrides or {}, path)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise InputError(f"{path}: unknown section '{unknown[0]}' (known: {', '.join(SECTIONS)})")
    for required in ("name", "dataset", "strategies"):
        if required not in raw:
            raise InputError(f"{path}: missing section '{required}'")
    if not isinstance(raw["strategies"], dict) or not raw["strategies"]:
        raise InputError(f"{path}: strategies: give at least one named strategy")
    recipe = Recipe(name=str(raw["name"]), path=path, sections=raw, overrides=dict(overrides or {}))
    plan(Workspace(Path(os.devnull)), recipe)  # builds every config (touching no files): errors surface before any work
    return recipe


def _hash(spec: dict[str, Any], deps: list[str], hashes: dict[str, str]) -> str:
    text = json.dumps({"spec": spec, "deps": [hashes[d] for d in deps]}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def plan(ws: Workspace, recipe: Recipe) -> list[Step]:
    """The recipe's steps in dependency order, with their spec hashes."""
    path, s = recipe.path, recipe.sections
    name = recipe.name
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
        synth = _fields(path, "dataset.synth", args, synthetic.SynthConfig)
        make_data = lambda _: datasets.save(ws, synthetic.generate(synth), name, {"source": "synth", **dataclasses.asdict(synth)})  # noqa: E731
    elif how == "beir":
        folder = (base / str(args if not isinstance(args, dict) else args.get("path", ""))).resolve()
        level = int(args.get("relevance_level", 1)) if isinstance(args, dict) else 1
        make_data = lambda _: datasets.import_beir(ws, folder, name, relevance_level=level)  # noqa: E731
    elif how == "trec-dl":
        if not isinstance(args, dict) or not {"collection", "topics", "qrels"} <= set(args):
            raise InputError(f"{path}: dataset.trec-dl: needs collection, topics and qrels")
        files = {k: (base / str(args[k])).resolve() for k in ("collection", "topics", "qrels")}
        make_data = lambda _: datasets.import_trec_dl(ws, files["collection"], files["topics"], files["qrels"], name)  # noqa: E731
    elif how == "ref":
        make_data = lambda _: BuildResult(ws.resolve(str(args), kind="datasets"), reused=True)  # noqa: E731
    else:
        raise InputError(f"{path}: dataset: unknown source '{how}' (synth, beir, trec-dl, ref)")
    add(Step("dataset", "datasets", {how: args if not isinstance(args, Path) else str(args)}, [], make_data))

    # Training queries: the dataset's own split, or generated ones (title, ict, llm).
    queries = dict(s.get("train_queries") or {"split": "train"})
    split = str(queries.get("split", "train"))
    train_data = "dataset"
    if "method" in queries:
        gen = _fields(path, "train_queries", queries, generation.QueryGenConfig)
        add(Step("queries", "datasets", queries, ["dataset"], lambda a: generation.generate_queries(ws, a["dataset"], gen)))
        train_data, split = "queries", gen.split
    elif set(queries) - {"split"}:
        raise InputError(f"{path}: train_queries: give split (the dataset's own) or method (title, ict, llm)")

    add(Step("index:bm25", "indexes", {}, [train_data], lambda a: indexing.build_bm25(ws, a[train_data], indexing.BM25Config())))

    train_fragment = dict(s.get("train") or {})
    trainer = _fields(path, "train", train_fragment, training.BiEncoderTrainConfig)
    needs_clusters = trainer.sampler in training.TOPIC_SAMPLERS
    if needs_clusters:
        clusters_cfg = _fields(path, "clusters", {"split": split, **(s.get("clusters") or {})}, clustering.ClusterConfig)
        add(Step("clusters", "clusters", dataclasses.asdict(clusters_cfg), [train_data],
                 lambda a: clustering.cluster_queries(ws, a[train_data], clusters_cfg)))

    # An optional cross-encoder, trained on one strategy's negatives, for strategies that need a teacher.
    ce_fragment = s.get("cross_encoder")
    strategies = s["strategies"]
    if ce_fragment is not None:
        ce_fragment = dict(ce_fragment)
        ce_source = str(ce_fragment.pop("negatives", ""))
        if ce_source not in strategies:
            raise InputError(f"{path}: cross_encoder.negatives: name one of the strategies ({', '.join(strategies)})")
        ce_cfg = _fields(path, "cross_encoder", ce_fragment, training.CrossEncoderTrainConfig)

    evaluate_cfg = _fields(path, "evaluate", s.get("evaluate"), evaluation.EvaluateConfig, drop=("rerank", "rerank_depth", "rerank_batch_size"))
    evaluated: list[str] = []

    def evaluate_step(label: str, index_step: str, dep_extra: list[str] | None = None) -> None:
        step = f"evaluate:{label}"
        add(Step(step, "evaluations", dataclasses.asdict(evaluate_cfg), [index_step, *(dep_extra or [])],
                 lambda a: evaluation.evaluate(ws, index=a[index_step], config=evaluate_cfg, name=f"{name}-{label}")))
        evaluated.append(step)

    add(Step("index:untrained", "indexes", {"model": trainer.base}, ["dataset"],
             lambda a: indexing.build_dense(ws, a["dataset"], indexing.DenseConfig(model=trainer.base), name=f"{name}-untrained")))
    evaluate_step("untrained", "index:untrained")
    retrieval_index = "index:bm25"
    if train_data != "dataset":  # generated queries live in their own dataset artifact
        retrieval_index = "index:bm25-retrieval"
        add(Step(retrieval_index, "indexes", {}, ["dataset"], lambda a: indexing.build_bm25(ws, a["dataset"], indexing.BM25Config())))
    evaluate_step("bm25-retrieval", retrieval_index)

    ce_model_step = None
    for label, fragment in strategies.items():
        label = str(label)
        if label in RESERVED:
            raise InputError(f"{path}: strategies: '{label}' names a baseline system; pick another name")
        fragment = dict(fragment or {})
        uses_ce = fragment.get("cross_encoder") == "trained"
        if uses_ce:
            if ce_fragment is None:
                raise InputError(f"{path}: strategies.{label}: cross_encoder: trained needs a cross_encoder section")
            fragment["cross_encoder"] = "placeholder"  # replaced by the trained model's reference
        mine_cfg = _fields(path, f"strategies.{label}", {"split": split, **fragment}, mining.MiningConfig)
        deps = [train_data, "index:bm25"] + (["model:cross-encoder"] if uses_ce else [])

        def mine(a: dict[str, Artifact], cfg: mining.MiningConfig = mine_cfg, label: str = label, uses_ce: bool = uses_ce) -> BuildResult:
            if uses_ce:
                cfg = dataclasses.replace(cfg, cross_encoder=a["model:cross-encoder"].ref)
            return mining.mine_negatives(ws, a[train_data], cfg, indexes=[a["index:bm25"]], name=f"{name}-{label}")

        add(Step(f"mine:{label}", "negatives", {"split": split, **{k: v for k, v in fragment.items() if k != "cross_encoder"}, "teacher": uses_ce}, deps, mine))
        if ce_fragment is not None and label == ce_source and ce_model_step is None:
            if uses_ce:
                raise InputError(f"{path}: cross_encoder.negatives: '{label}' itself needs the cross-encoder")
            ce_model_step = add(Step("model:cross-encoder", "models", dataclasses.asdict(ce_cfg), [f"mine:{label}"],
                                     lambda a, src=f"mine:{label}": training.train_cross_encoder(ws, a[src], ce_cfg, name=f"{name}-teacher-ce")))
        train_deps = [f"mine:{label}"] + (["clusters"] if needs_clusters else [])
        add(Step(f"train:{label}", "models", train_fragment, train_deps,
                 lambda a, label=label: training.train_bi_encoder(ws, a[f"mine:{label}"], trainer, clusters=a.get("clusters"), name=f"{name}-{label}")))
        add(Step(f"index:model-{label}", "indexes", {}, ["dataset", f"train:{label}"],
                 lambda a, label=label: indexing.build_dense(ws, a["dataset"], indexing.DenseConfig(model=a[f"train:{label}"].ref), name=f"{name}-{label}-dense")))
        evaluate_step(label, f"index:model-{label}")

    # A strategy mined with the trained cross-encoder depends on a step added after it: order them.
    steps = _ordered(steps, path)
    report_fragment = dict(s.get("report") or {})
    baseline = str(report_fragment.pop("baseline", "untrained"))
    if f"evaluate:{baseline}" not in evaluated:
        raise InputError(f"{path}: report.baseline: name untrained, bm25-retrieval or a strategy, got '{baseline}'")
    report_cfg = _fields(path, "report", report_fragment, reporting.ReportConfig, drop=("baseline",))

    def make_report(a: dict[str, Artifact]) -> BuildResult:
        cfg = dataclasses.replace(report_cfg, baseline=a[f"evaluate:{baseline}"].ref)
        return reporting.report(ws, [a[e] for e in evaluated], cfg, name=name)

    steps.append(Step("report", "reports", {"baseline": baseline, **report_fragment}, evaluated, make_report))
    hashes: dict[str, str] = {}
    for step in steps:
        step.hash = hashes[step.name] = _hash(step.spec, step.deps, hashes)
    return steps


def _ordered(steps: list[Step], path: Path) -> list[Step]:
    """Topological order (stable): every step after the steps it depends on."""
    by_name = {s.name: s for s in steps}
    done: list[Step] = []
    seen: set[str] = set()

    def visit(step: Step, trail: tuple[str, ...]) -> None:
        if step.name in seen:
            return
        if step.name in trail:
            raise InputError(f"{path}: steps depend on each other in a cycle: {' -> '.join(trail + (step.name,))}")
        for dep in step.deps:
            visit(by_name[dep], trail + (step.name,))
        seen.add(step.name)
        done.append(step)

    for step in steps:
        visit(step, ())
    return done


def lock_dir(ws: Workspace, recipe: Recipe) -> Path:
    """Where the recipe's per-step lock and spec files live."""
    return ws.root / "pipelines" / recipe.name


def step_file(step: str) -> str:
    """A step's file stem: its name with ':' (awkward in make targets) as '.'."""
    return step.replace(":", ".")


def _read_entry(ws: Workspace, recipe: Recipe, step: str) -> dict[str, str] | None:
    path = lock_dir(ws, recipe) / f"{step_file(step)}.json"
    if not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a damaged lock only means the step is shown as missing; the library decides reuse
    return entry if isinstance(entry, dict) and {"hash", "artifact"} <= set(entry) else None


def _write_if_changed(path: Path, text: str) -> None:
    """Atomic write that leaves the file (and its mtime, which make reads) alone when unchanged."""
    if not (path.is_file() and path.read_text(encoding="utf-8") == text):
        atomic_write_text(path, text)


def _write_entry(ws: Workspace, recipe: Recipe, step: Step, artifact: Artifact, touch: bool = False) -> None:
    path = lock_dir(ws, recipe) / f"{step_file(step.name)}.json"
    _write_if_changed(path, json.dumps({"hash": step.hash, "artifact": artifact.ref}, sort_keys=True) + "\n")
    if touch:  # make ran this step: its target must now be newer than what it depends on
        os.utime(path)


def _done(ws: Workspace, recipe: Recipe, step: Step) -> tuple[str, str, Artifact | None]:
    """(state, ref, artifact): done when the lock's hash matches and its artifact resolves."""
    entry = _read_entry(ws, recipe, step.name)
    if entry is None:
        return "missing", "", None
    if entry["hash"] != step.hash:
        return "changed", entry["artifact"], None
    try:
        artifact = ws.resolve(entry["artifact"])
    except Exception:  # noqa: BLE001 - any failure to resolve means the artifact is gone
        return "missing", entry["artifact"], None
    return "done", entry["artifact"], artifact


def status(ws: Workspace, recipe: Recipe) -> list[tuple[Step, str, str]]:
    """Per step: (step, state, artifact ref). State: done (hash matches the lock and the artifact
    exists), changed (its spec or an input changed since the lock), missing (never run or gone).
    Only reads manifests: checksums are checked when a step uses an artifact, not to list it."""
    listing = dataclasses.replace(ws, verify_reads="none")
    return [(step, *_done(listing, recipe, step)[:2]) for step in plan(ws, recipe)]


def run(
    ws: Workspace,
    recipe: Recipe,
    *,
    steps: list[str] | None = None,
    progress: Progress = silent,
    on_step: Callable[[Step, str, Artifact | None], None] | None = None,
) -> dict[str, Artifact]:
    """Run the recipe; returns step name -> artifact. ``on_step(step, state, artifact)`` hears
    ``start`` and then ``reused`` or ``built`` for each step it runs; each step's lock is written
    when it finishes, so an interrupted run keeps what finished.

    ``steps`` runs only those steps (make's targets): their inputs come from the locks when done,
    and are run first otherwise."""
    planned = plan(ws, recipe)
    by_name = {s.name: s for s in planned}
    wanted = set(by_name)
    if steps is not None:
        unknown = [s for s in steps if s not in by_name]
        if unknown:
            raise InputError(f"{recipe.path}: no step '{unknown[0]}' (steps: {', '.join(by_name)})")
        wanted = set()
        todo = list(steps)
        while todo:  # the named steps and, for inputs not done, what they need
            name = todo.pop()
            if name in wanted:
                continue
            wanted.add(name)
            for dep in by_name[name].deps:
                if dep not in wanted and _done(ws, recipe, by_name[dep])[0] != "done":
                    todo.append(dep)
    made: dict[str, Artifact] = {}
    ordered = [s for s in planned if s.name in wanted]
    for index, step in enumerate(ordered):
        for dep in step.deps:
            if dep not in made:
                state, _, artifact = _done(ws, recipe, by_name[dep])
                if artifact is None:  # it was done when planned; something removed it since
                    raise InputError(f"{recipe.path}: step {step.name} needs {dep}, which is {state}: run it first")
                made[dep] = artifact
        if on_step:
            on_step(step, "start", None)
        result = step.make({d: made[d] for d in step.deps})
        artifact = made[step.name] = result.artifact
        _write_entry(ws, recipe, step, artifact, touch=steps is not None)
        if on_step:
            on_step(step, "reused" if result.reused else "built", artifact)
        progress("pipeline", index + 1, len(ordered))
    return made


def makefile(ws: Workspace, recipe: Recipe, *, cli: str = "retrieval-cli", output: Path | None = None) -> str:
    """The recipe as a Makefile: one target per step (its lock file), so ``make -j`` runs
    independent branches in parallel and reruns only steps whose spec or inputs changed.
    Writes each step's ``.spec`` file (only when its hash changed) and returns the Makefile text;
    given the ``output`` path, the Makefile also remakes itself when the recipe changes."""
    folder = lock_dir(ws, recipe)
    recipe_arg = " ".join([shlex.quote(str(recipe.path)), *(
        f"--set {shlex.quote(f'{key}={json.dumps(value)}')}" for key, value in recipe.overrides.items()
    )])
    ws_arg = shlex.quote(str(ws.root))
    var = f"{recipe.name.upper().replace('-', '_')}_DIR"
    lines = [
        f"# Generated by `retrieval-cli pipeline makefile {recipe.path}`: recipe {recipe.name}, one target per",
        f"# step; a target is the step's lock file under {folder}.",
        "#   make -f THIS -j2                 the whole DAG, independent branches in parallel",
        f"#   make -f THIS {recipe.name}/mine.NAME   one step and whatever it needs",
        "RETRIEVAL_CLI ?= " + cli,
        f"{var} := {folder}",
        "",
        f".PHONY: {recipe.name}",
        f"{recipe.name}: $({var})/report.json",
        "",
    ]
    if output is not None:  # make remakes an out-of-date makefile it read, then starts again with it
        out_arg = shlex.quote(str(output))
        lines += [
            f"{output}: {recipe.path}",
            f"\t$(RETRIEVAL_CLI) pipeline makefile {recipe_arg} --workspace {ws_arg} --cli '$(RETRIEVAL_CLI)' --output {out_arg}",
            "",
        ]
    for step in plan(ws, recipe):
        stem = step_file(step.name)
        _write_if_changed(folder / f"{stem}.spec", step.hash + "\n")
        deps = " ".join([f"$({var})/{stem}.spec", *(f"$({var})/{step_file(d)}.json" for d in step.deps)])
        lines += [
            f".PHONY: {recipe.name}/{stem}",
            f"{recipe.name}/{stem}: $({var})/{stem}.json",
            f"$({var})/{stem}.json: {deps}",
            f"\t$(RETRIEVAL_CLI) pipeline run {recipe_arg} --step {step.name} --workspace {ws_arg} --quiet",
            "",
        ]
    return "\n".join(lines)
