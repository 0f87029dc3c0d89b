"""``retrieval-cli evaluate``: retrieve (or read a run, or fuse evaluations' runs), rerank optionally, score with ir-measures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from retrieval_cli.cli import console
from retrieval_cli.cli.options import DeviceOpt, ForceOpt, JsonOpt, NameOpt, QuietOpt, SelfHitsOpt, WorkspaceOpt, workspace
from retrieval_cli.evaluate.evaluation import EvaluateConfig

_D = EvaluateConfig()  # the options' defaults are the config's


def evaluate_cli(
    index: Annotated[Optional[str], typer.Argument(help="Index reference (indexes/NAME[@VERSION]).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="Dataset reference \\[default: the index's dataset].")] = None,
    run: Annotated[Optional[Path], typer.Option("--run", help="Score this TREC run file instead of retrieving.")] = None,
    split: Annotated[str, typer.Option(help="Qrels split to evaluate on.")] = _D.split,
    measure: Annotated[Optional[list[str]], typer.Option("--measure", "-m", help="ir-measures measure; repeatable \\[default: nDCG@10, R@100].")] = None,
    depth: Annotated[int, typer.Option(help="Documents retrieved per query.")] = _D.depth,
    rerank: Annotated[Optional[str], typer.Option(help="Cross-encoder to rerank with (models/NAME, folder or hub id).")] = None,
    rerank_depth: Annotated[int, typer.Option(help="How many top documents the cross-encoder rescores.")] = _D.rerank_depth,
    rerank_batch_size: Annotated[int, typer.Option(help="Pairs the cross-encoder scores at once.")] = _D.rerank_batch_size,
    self_hits: SelfHitsOpt = _D.self_hits,
    fuse: Annotated[Optional[list[str]], typer.Option("--fuse", help="Evaluation whose run to fuse (repeat: two or more, e.g. a BM25 and a dense one) instead of retrieving.")] = None,
    fusion: Annotated[str, typer.Option(help="With --fuse: rrf (reciprocal-rank fusion, Cormack et al. 2009) or norm (min-max scores, weighted).")] = "rrf",
    rrf_k: Annotated[int, typer.Option(help="RRF's k in 1/(k + rank).")] = _D.rrf_k,
    fusion_weight: Annotated[float, typer.Option(help="norm: the first run's weight; the second gets 1 - weight.")] = _D.fusion_weight,
    device: DeviceOpt = _D.device,
    name: NameOpt = None,
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate an index (or a run file, or a fusion of evaluations' runs) on a dataset split and write an evaluation artifact."""
    from retrieval_cli import evaluate as evaluation

    ws = workspace(workspace_path)
    config = evaluation.EvaluateConfig(
        split=split, measures=list(measure or evaluation.DEFAULT_MEASURES), depth=depth,
        rerank=rerank, rerank_depth=rerank_depth, rerank_batch_size=rerank_batch_size, self_hits=self_hits,
        fusion=fusion if fuse else None, rrf_k=rrf_k, fusion_weight=fusion_weight, device=device,
    )
    fused = [ws.resolve(ref, kind="evaluations") for ref in fuse or []]
    index_artifact = ws.resolve(index, kind="indexes") if index else None
    dataset_artifact = ws.resolve(dataset, kind="datasets") if dataset else None
    with console.progress(quiet) as bar:
        result = evaluation.evaluate(
            ws, index=index_artifact, dataset=dataset_artifact, run_file=run, fuse=fused or None, config=config,
            name=name, force=force, progress=bar,
        )
    metrics = evaluation.metrics(result.artifact)
    if as_json:
        console.out.print_json(json.dumps({"artifact": result.artifact.ref, "reused": result.reused, **metrics}))
        return
    console.built(result, "evaluation")
    console.warnings(result.artifact.summary)
    stored = " (the stored ranking, scored again)" if result.artifact.summary.get("ranking") == "stored" and not result.reused else ""
    console.out.print(
        f"[bold]{result.artifact.name}[/]: {metrics['dataset']} / {metrics['split']}, {metrics['queries']} queries{stored}",
        highlight=False,
    )
    table = Table()
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in metrics["aggregate"].items():
        shown = metrics["measures"][label]
        table.add_row(label if shown == label else f"{label}  [dim]({shown})[/]", f"{value:.4f}")
    console.out.print(table)
