"""The comparison planner: a recipe turned into steps (dataset, indexes, one mine -> train ->
index -> evaluate branch per strategy, the untrained and BM25 baselines, the report), each calling
the library function its command calls. The step builders (``builders``) make the steps; this
module calls them in order. Planning touches no files, so ``recipe.load`` can check a recipe by
planning it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrieval_cli import evaluate as evaluation
from retrieval_cli import models
from retrieval_cli.errors import InputError
from retrieval_cli.pipeline import builders, names
from retrieval_cli.pipeline.dag import Step, hashed, ordered
from retrieval_cli.pipeline.recipe import Recipe, baselines_of, config_from, read
from retrieval_cli.pipeline.targets import targets_of

def load(path: Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read a recipe and check it whole: planning builds every config (touching no files), so
    errors surface before any work."""
    recipe = read(path, overrides)
    plan(recipe)
    return recipe


def plan(recipe: Recipe) -> list[Step]:
    """The recipe's steps in dependency order, with their spec hashes: the training collection
    and queries, each target with its baselines, each strategy's mine -> train -> index ->
    evaluate branch (per seed), the report."""
    path, s = recipe.path, recipe.sections
    for suffix in ("untrained", "teacher-ce", "bm25-retrieval", "hybrid"):
        names.artifact(path, "name", f"{recipe.name}-{suffix}")
    p = builders.Planning(path, recipe.name, _device(path, s.get("device", "auto")), s.get("dataset"))
    builders.dataset_step(p)
    builders.training_queries(p, s.get("train_queries"))
    strategies = s["strategies"]
    tr = builders.training_plan(p, s.get("train"), strategies, s.get("clusters"))
    teacher = builders.teacher_plan(p, s.get("cross_encoder"), strategies)
    evaluate_cfg = config_from(path, "evaluate", p.on_device(s.get("evaluate")), evaluation.EvaluateConfig, drop=("rerank", "rerank_depth", "rerank_batch_size"))
    targets = targets_of(path, s.get("evaluate_on"), evaluate_cfg, p.base, recipe.name, p.home)
    baselines = baselines_of(path, s.get("baselines"))
    for target in targets:
        builders.target_steps(p, target, baselines, tr.config.base)
    taught = False
    for label, fragment in strategies.items():
        st = builders.strategy_plan(p, str(label), fragment, strategies, teacher, tr.seeds, targets)
        builders.mine_steps(p, st, tr.seeds)
        if teacher is not None and st.label == teacher.source and not taught:
            builders.teacher_step(p, st, teacher, tr.seeds)
            taught = True
        for seed in tr.seeds or [tr.config.seed]:
            builders.trained_steps(p, st, tr, seed, targets)
    # A strategy mined with the trained cross-encoder depends on a step added after it: order them.
    steps = ordered(p.steps, path)
    steps.append(builders.report_step(p, s.get("report"), tr.seeds, targets))
    return hashed(steps)


def _device(path: Path, device: Any) -> str:
    """Where every model of the recipe runs (a section's own ``device`` wins); never part of a
    step's spec, so moving a recipe to a GPU machine reruns nothing."""
    try:
        models.check_device(device if isinstance(device, str) else "")
    except InputError:
        raise InputError(f"{path}: device: give {models.DEVICES}, got {device!r}") from None
    return device
