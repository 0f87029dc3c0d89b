"""Where every system is tested: a recipe's ``evaluate_on`` as targets (a dataset step, a split,
measures), suites expanded to one target per dataset (NanoBEIR, a BEIR list), and splits named by
the ir_datasets id they came from resolved to the split they became."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from retrieval_cli import evaluate as evaluation
from retrieval_cli.data import irds
from retrieval_cli.errors import InputError
from retrieval_cli.pipeline import names
from retrieval_cli.pipeline.recipe import config_from
from retrieval_cli.pipeline.sources import dataset_maker, irds_splits, source_reads, source_spec, split_by_id
from retrieval_cli.store import Artifact, BuildResult, Workspace


@dataclass
class Target:
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


def targets_of(path: Path, section: Any, evaluate_cfg: evaluation.EvaluateConfig, base: Path, name: str, home: Any) -> list[Target]:
    """``evaluate_on`` (target name -> dataset, split, measures, or a suite of datasets): every
    system is evaluated on each. Without it, the training collection's own split, as one target
    with today's step names. ``home`` is the recipe's dataset section (``dataset: same``)."""
    if section is None:
        return [Target(names.DATASET, "", "", evaluate_cfg)]
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
            home: Any, suite: str | None = None) -> Target:
    """One target: a dataset (the training one, ``same``, or a source of its own) and its split,
    which may be given as the ir_datasets id it came from; one irds id alone is its own split."""
    where = f"evaluate_on.{label}"
    names.artifact(path, where, f"{name}-{label}")
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
        return Target(names.DATASET, f"@{label}", f"-{label}", cfg, suite=suite)
    maker = dataset_maker(path, f"{where}.dataset", source, base, f"{name}-{label}")
    return Target(names.target(label), f"@{label}", f"-{label}", cfg, source_spec(source), maker,
                   source_reads(f"{where}.dataset", source, base), suite=suite)


def _suite(path: Path, label: str, fragment: dict[str, Any], evaluate_cfg: evaluation.EvaluateConfig, base: Path, name: str) -> list[Target]:
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
