"""The long table under every report: one row per system, dataset and measure, each system
described by its lineage. Evaluations of one system that differ only in the training seed are one
row: the mean over seeds, their standard deviation, and each seed's value."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from retrieval_cli import evaluate as evaluation
from retrieval_cli.mining import records as negatives_io
from retrieval_cli.store import Artifact, Workspace

SEP = ","  # a row's evaluation column: one reference, or a seed group's references joined
DEFAULT_SPLIT = "test"  # the split a target is named without: BEIR's evaluation split


@dataclass
class System:
    """How one evaluated system was made, read from its artifact lineage."""

    label: str
    retriever: str
    model: str = ""
    negatives: str = ""
    training: str = ""
    rerank: str = ""
    seed: int | None = None  # the training seed (None: untrained systems and runs)
    signature: str = ""  # what the system is apart from that seed: equal signatures are seeds of one system


def describe(ws: Workspace, evaluation_artifact: Artifact) -> System:
    """Describe the system behind an evaluation: retriever, model, negatives, training, reranker."""
    inputs = ws.inputs_of(evaluation_artifact)
    cfg = evaluation_artifact.config
    rerank = cfg.get("rerank") or ""
    index = inputs.get("index")
    fused = [inputs[k] for k in sorted(inputs) if k.startswith("fuse_")]
    if fused:
        how = f"RRF k={cfg.get('rrf_k')}" if cfg.get("fusion") == "rrf" else f"norm w={cfg.get('fusion_weight')}"
        retriever, model = f"{how} of " + " + ".join(describe(ws, ev).label for ev in fused), ""
    elif index is None:
        run = cfg.get("run_file", {}).get("path", "run")
        retriever, model = f"run:{Path(run).stem}", ""
    elif index.config.get("kind") == "bm25":
        ic = index.config
        stemmer = "" if ic.get("stemmer", "porter") == "porter" else f" stemmer={ic['stemmer']}"
        retriever, model = f"BM25 k1={ic['k1']} b={ic['b']}{stemmer}", ""
    else:
        ic = index.config
        retriever, model = f"dense {ic['faiss']}", ic["model"]
    negatives = training = signature = ""
    seed = None
    model_artifact = ws.inputs_of(index).get("model") if index is not None else None
    if model_artifact is not None:
        mc = model_artifact.config
        training = " · ".join(str(mc[k]) for k in ("loss", "sampler") if k in mc)
        neg = ws.inputs_of(model_artifact).get("negatives")
        if neg is not None:
            negatives = negatives_io.label(neg.config)
        elif "top_k" in mc:  # ADORE: its negatives are retrieved inside every step
            negatives = f"ADORE top-{mc['top_k']} in-step negatives"
        # Trained: "NAME: base + negatives · loss · sampler", the lineage a reader compares by.
        model = model_artifact.name
        if "seed" in mc:
            seed, signature = int(mc["seed"]), _signature(evaluation_artifact, index, model_artifact)
            model = model.removesuffix(f"-s{seed}")  # a recipe names each seed's model; the row is every seed's
        label = f"{model}: {mc.get('base', '?')}" + (f" + {negatives}" if negatives else "")
        label += f" · {training}" if training else ""
        if not retriever.startswith("dense flat"):
            label += f" ({retriever})"
    else:
        label = f"{model} ({retriever})" if model else retriever
    if rerank:
        label += f" + rerank {rerank}"
    return System(label=label, retriever=retriever, model=model, negatives=negatives, training=training, rerank=rerank,
                  seed=seed, signature=signature)


def _signature(ev: Artifact, index: Artifact, model: Artifact) -> str:
    """Everything behind an evaluation but the training seed (and the model that seed made)."""
    others = {k: v for k, v in model.config.items() if k != "seed"}
    index_config = {k: v for k, v in index.config.items() if k not in ("model", "model_fingerprint")}
    return json.dumps({"model": others, "inputs": model.manifest.get("inputs", {}), "index": index_config,
                       "evaluation": ev.config, "dataset": ev.manifest["inputs"].get("dataset")}, sort_keys=True, default=str)


def ranking_key(ev: Artifact) -> str:
    """What an evaluation ranked, apart from what it measured: its inputs and every setting but the
    measures. Evaluations with one key scored one ranking (``evaluate`` again with other measures)."""
    config = {k: v for k, v in ev.config.items() if k not in ("measures", "measures_resolved")}
    return json.dumps({"inputs": ev.manifest.get("inputs", {}), "config": config}, sort_keys=True, default=str)


@dataclass
class _Scored:
    """One ranking's measures, merged over the evaluations that scored it (newest first wins)."""

    evaluation: Artifact  # the newest
    metrics: dict[str, Any]  # its metrics.json, with every measure of the group in ``aggregate``
    refs: dict[str, str]  # measure -> the evaluation whose value it is
    members: list[str]  # every evaluation of the group


def merge_rankings(evaluations: list[Artifact]) -> list[_Scored]:
    """Group evaluations of one ranking and take, per measure, the newest evaluation that has it,
    so re-evaluating with other measures adds columns instead of hiding the earlier ones."""
    groups: dict[str, list[Artifact]] = {}
    for ev in evaluations:
        groups.setdefault(ranking_key(ev), []).append(ev)
    out = []
    for members in groups.values():
        newest = sorted(members, key=lambda a: a.manifest.get("created", ""), reverse=True)
        read = [evaluation.metrics(ev) for ev in newest]
        metrics = dict(read[0])
        aggregate: dict[str, float] = {}
        refs: dict[str, str] = {}
        for ev, scored in zip(newest, read):
            for measure, value in scored["aggregate"].items():
                if measure not in aggregate:
                    aggregate[measure], refs[measure] = value, ev.ref
        metrics["aggregate"] = aggregate
        out.append(_Scored(newest[0], metrics, refs, [ev.ref for ev in members]))
    return out


def build_table(ws: Workspace, evaluations: list[Artifact]) -> pd.DataFrame:
    """Long table: system, dataset, split, measure, value, plus the lineage columns. Evaluations of
    one ranking with other measures merge into one system (``merge_rankings``). Systems that differ
    only in the training seed become one row per measure: ``value`` the mean over seeds, ``sd``
    their standard deviation, ``seed_values`` each seed's value, ``evaluation`` their refs (the
    ones holding that measure) and ``refs`` every evaluation behind the row."""
    described = []
    for scored in merge_rankings(evaluations):
        system = describe(ws, scored.evaluation)
        described.append((scored, system, scored.metrics, system.seed, system.signature))
    groups: dict[tuple[str, str, str], list[tuple]] = {}
    for item in described:
        groups.setdefault((item[1].label, item[2]["dataset"], item[2]["split"]), []).append(item)
    rows = []
    for (label, _, _), members in groups.items():
        seeds = [m[3] for m in members]
        if len(members) > 1 and None not in seeds and len(set(seeds)) == len(seeds) and len({m[4] for m in members}) == 1:
            rows.extend(_seed_rows(label, sorted(members, key=lambda m: m[3])))
            continue
        for scored, system, m, seed, _ in members:
            # Two rankings that describe alike on one dataset would collapse into one cell of
            # the table; name their artifacts so both stay visible.
            ev = scored.evaluation
            shown = label + (f" [{ev.name}@{ev.version[:6]}]" if len(members) > 1 else "")
            rows.extend(_rows(shown, system, m, scored.refs, SEP.join(scored.members),
                              {measure: [value] for measure, value in m["aggregate"].items()}, [seed]))
    return with_targets(pd.DataFrame(rows))


def aggregates(table: pd.DataFrame) -> pd.Series:
    """Which rows are means over targets (no split of their own), not one evaluation's values."""
    return table["split"].fillna("") == ""


def with_targets(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its ``target`` column: what every table, plot and test keys a value by, one
    per (dataset, split). A target is the dataset's name when the report holds that dataset on
    ``test`` alone, else ``dataset/split``, so two splits of one dataset are two columns and a
    split other than test is always named; the across-targets rows (no split) are ``mean``."""
    if table.empty:
        return table.assign(target=pd.Series(dtype=str))
    splits = table.groupby("dataset")["split"].agg(lambda s: set(s) - {""})
    labels = [
        dataset if not split or splits[dataset] == {DEFAULT_SPLIT} else f"{dataset}/{split}"
        for dataset, split in zip(table["dataset"], table["split"].fillna(""))
    ]
    return table.assign(target=labels)


def _seed_rows(label: str, members: list[tuple]) -> list[dict[str, Any]]:
    system, m = members[0][1], members[0][2]
    values = {measure: [item[2]["aggregate"].get(measure, 0.0) for item in members] for measure in m["aggregate"]}
    refs = {measure: SEP.join(item[0].refs.get(measure, item[0].evaluation.ref) for item in members) for measure in values}
    return _rows(label, system, m, refs, SEP.join(r for item in members for r in item[0].members), values, [item[3] for item in members])


def _rows(
    label: str, system: System, m: dict[str, Any], refs: dict[str, str], every: str, values: dict[str, list[float]],
    seeds: list[int | None],
) -> list[dict[str, Any]]:
    return [{
        "system": label, "dataset": m["dataset"], "split": m["split"], "measure": measure,
        "value": statistics.fmean(per_seed), "sd": statistics.stdev(per_seed) if len(per_seed) > 1 else float("nan"),
        "seeds": len(per_seed) if seeds[0] is not None else 0, "seed_values": per_seed if len(per_seed) > 1 else None,
        "queries": m["queries"], "evaluation": refs[measure], "refs": every, "retriever": system.retriever, "model": system.model,
        "negatives": system.negatives, "training": system.training, "rerank": system.rerank,
    } for measure, per_seed in values.items()]
