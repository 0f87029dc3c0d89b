"""Report artifacts: systems x datasets x metrics, each system described by its lineage.

The table is long-form underneath (one row per system, dataset, measure) so later columns
(deltas, p-values, significance marks) slot in without changing how systems are described.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from retrieval_cli import evaluation
from retrieval_cli.artifacts import Artifact, BuildResult, Workspace
from retrieval_cli.errors import InputError
from retrieval_cli.progress import Progress, silent


@dataclass
class System:
    """How one evaluated system was made, read from its artifact lineage."""

    label: str
    retriever: str
    model: str = ""
    negatives: str = ""
    training: str = ""
    rerank: str = ""


def describe(ws: Workspace, evaluation_artifact: Artifact) -> System:
    """Describe the system behind an evaluation: retriever, model, negatives, training, reranker."""
    inputs = ws.inputs_of(evaluation_artifact)
    cfg = evaluation_artifact.config
    rerank = cfg.get("rerank") or ""
    index = inputs.get("index")
    if index is None:
        run = cfg.get("run_file", {}).get("path", "run")
        retriever, model = f"run:{Path(run).stem}", ""
    elif index.config.get("kind") == "bm25":
        ic = index.config
        stemmer = "" if ic.get("stemmer", "porter") == "porter" else f" stemmer={ic['stemmer']}"
        retriever, model = f"BM25 k1={ic['k1']} b={ic['b']}{stemmer}", ""
    else:
        ic = index.config
        retriever, model = f"dense {ic['faiss']}", ic["model"]
    negatives = training = ""
    model_artifact = ws.inputs_of(index).get("model") if index is not None else None
    if model_artifact is not None:
        mc = model_artifact.config
        training = ", ".join(f"{k}={mc[k]}" for k in ("loss", "sampler", "epochs") if k in mc)
        neg = ws.inputs_of(model_artifact).get("negatives")
        if neg is not None:
            negatives = str(neg.config.get("strategy", neg.name))
    label = f"{model} ({retriever})" if model else retriever
    if negatives:
        label += f" neg={negatives}"
    if model_artifact is not None:
        mc = model_artifact.config
        label += "".join(f" {k}={mc[k]}" for k in ("loss", "sampler") if k in mc)
    if rerank:
        label += f" + rerank {rerank}"
    return System(label=label, retriever=retriever, model=model, negatives=negatives, training=training, rerank=rerank)


def build_table(ws: Workspace, evaluations: list[Artifact]) -> pd.DataFrame:
    """Long table: system, dataset, split, measure, value, plus the lineage columns."""
    rows = []
    described = [(ev, describe(ws, ev), evaluation.metrics(ev)) for ev in evaluations]
    # Two evaluations that describe alike on one dataset would collapse into one cell of the
    # table; name their artifacts so both stay visible.
    seen = Counter((system.label, m["dataset"]) for _, system, m in described)
    for ev, system, m in described:
        label = system.label
        if seen[(label, m["dataset"])] > 1:
            label += f" [{ev.name}@{ev.version[:6]}]"
        for measure, value in m["aggregate"].items():
            rows.append({
                "system": label, "dataset": m["dataset"], "split": m["split"], "measure": measure,
                "value": value, "queries": m["queries"], "evaluation": ev.ref, "retriever": system.retriever,
                "model": system.model, "negatives": system.negatives, "training": system.training,
                "rerank": system.rerank,
            })
    return pd.DataFrame(rows)


def wide(table: pd.DataFrame) -> pd.DataFrame:
    """Systems as rows, (dataset, measure) as columns, in first-seen order."""
    columns = list(dict.fromkeys(zip(table["dataset"], table["measure"])))
    systems = list(dict.fromkeys(table["system"]))
    pivot = table.pivot_table(index="system", columns=["dataset", "measure"], values="value", aggfunc="first")
    return pivot.reindex(index=systems, columns=pd.MultiIndex.from_tuples(columns, names=["dataset", "measure"]))


def to_markdown(table: pd.DataFrame) -> str:
    grid = wide(table)
    headers = ["system"] + [f"{d} {m}" for d, m in grid.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for system, row in grid.iterrows():
        cells = ["" if pd.isna(v) else f"{v:.4f}" for v in row.tolist()]
        lines.append("| " + " | ".join([str(system), *cells]) + " |")
    return "\n".join(lines) + "\n"


def report(
    ws: Workspace,
    evaluations: list[Artifact],
    *,
    name: str = "report",
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Write a report artifact (Markdown, CSV, JSON) over the given evaluation artifacts."""
    if not evaluations:
        raise InputError("no evaluations to report: give evaluation references or --all")
    for ev in evaluations:
        if ev.kind != "evaluations":
            raise InputError(f"'{ev.ref}' is a {ev.kind} artifact, expected evaluations")
    inputs = {f"evaluation{i}": ev for i, ev in enumerate(evaluations)}

    def build(folder: Path) -> dict[str, Any]:
        progress("report", 0, None)
        table = build_table(ws, evaluations)
        grid = wide(table)
        (folder / "report.md").write_text(to_markdown(table), encoding="utf-8")
        grid.to_csv(folder / "report.csv", float_format="%.6f")
        table.to_csv(folder / "long.csv", index=False, float_format="%.6f")
        records = table.to_dict(orient="records")
        (folder / "table.json").write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
        progress("report", 1, 1)
        return {"systems": int(table["system"].nunique()), "datasets": int(table["dataset"].nunique())}

    return ws.build("reports", name, {"evaluations": len(evaluations)}, inputs, build, force=force)


def load_table(report_artifact: Artifact) -> pd.DataFrame:
    return pd.DataFrame(json.loads(report_artifact.file("table.json").read_text(encoding="utf-8")))
