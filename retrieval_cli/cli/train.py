"""``retrieval-cli train``: train a model from a negatives artifact."""

from __future__ import annotations

from typing import Annotated

import typer

from retrieval_cli.cli import console
from retrieval_cli.cli.options import ForceOpt, NameOpt, QuietOpt, WorkspaceOpt, workspace


def train_cli(
    negatives_ref: Annotated[str, typer.Argument(metavar="NEGATIVES", help="Negatives artifact to train on.")],
    kind: Annotated[str, typer.Option("--kind", help="What to train: cross-encoder (a reranker and mining teacher).")] = "cross-encoder",
    base: Annotated[str, typer.Option(help="Starting model: alias (minilm), models/NAME, folder or hub id.")] = "minilm",
    loss: Annotated[str, typer.Option(help="bce (pointwise, positives up-weighted), listnet or lambda (listwise).")] = "bce",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Examples per step.")] = 16,
    learning_rate: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 2e-5,
    warmup_ratio: Annotated[float, typer.Option(help="Share of steps with linear warm-up.")] = 0.1,
    max_length: Annotated[int, typer.Option(help="Tokens per (query, document) pair.")] = 256,
    seed: Annotated[int, typer.Option(help="Seed for the new head, shuffling and dropout.")] = 13,
    name: NameOpt = None,
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fine-tune a model on mined negatives; the result is a models artifact."""
    from retrieval_cli import training
    from retrieval_cli.errors import InputError

    if kind != "cross-encoder":
        raise InputError(f"--kind must be cross-encoder, got {kind!r}", field="kind")
    ws = workspace(workspace_path)
    source = ws.resolve(negatives_ref, kind="negatives")
    config = training.CrossEncoderTrainConfig(
        base=base, loss=loss, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
        warmup_ratio=warmup_ratio, max_length=max_length, seed=seed,
    )
    with console.progress(quiet) as bar:
        result = training.train_cross_encoder(ws, source, config, name=name, force=force, progress=bar)
    console.built(result, "model")
    summary = result.artifact.summary
    console.out.print(f"{summary['examples']} examples, {summary['steps']} steps, final training loss {summary['train_loss']}", highlight=False)
