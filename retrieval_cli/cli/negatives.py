"""``retrieval-cli negatives``: work with negatives artifacts (export to training columns)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from retrieval_cli.cli import console
from retrieval_cli.cli.options import WorkspaceOpt, workspace

app = typer.Typer(no_args_is_help=True, help="Export negatives artifacts as sentence-transformers training data.")


@app.command("export")
def export_cli(
    negatives_ref: Annotated[str, typer.Argument(metavar="NEGATIVES", help="Negatives artifact reference.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write: .jsonl or .parquet.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="triplet | triplet-scores | n-tuple | n-tuple-scores | n-tuple-teacher | labeled-pair | labeled-list (-scores: the teacher's margins; -teacher: its scores, positive first).")] = "triplet",
    num_negatives: Annotated[Optional[int], typer.Option(help="n-tuple width \\[default: negatives per query mined].")] = None,
    workspace_path: WorkspaceOpt = None,
) -> None:
    """Write columns sentence-transformers losses take directly, one format per loss:

    - triplet: anchor, positive, negative (MultipleNegativesRankingLoss)
    - triplet-scores: a triplet plus label = teacher(pos) - teacher(neg) (MarginMSELoss, one negative)
    - n-tuple: anchor, positive, negative_1..n (CachedMultipleNegativesRankingLoss)
    - n-tuple-scores: an n-tuple plus the teacher margins (MarginMSELoss)
    - labeled-pair: anchor, text, label (a cross-encoder's BinaryCrossEntropyLoss)
    - labeled-list: query, docs, labels (a cross-encoder's listwise losses)
    """
    from retrieval_cli.mining import records as negatives

    ws = workspace(workspace_path)
    artifact = ws.resolve(negatives_ref, kind="negatives")
    result = negatives.export(ws, artifact, fmt, output, num_negatives)
    skipped = f", {result.skipped_short} queries short of negatives skipped" if result.skipped_short else ""
    console.err.print(f"wrote {result.rows} {fmt} rows from {result.queries} queries to {result.path}{skipped}", highlight=False)
    console.out.print(f"columns: {', '.join(result.columns)}", highlight=False)
