"""``retrieval-cli train``: fine-tune a bi-encoder (the retriever) or a cross-encoder from a negatives artifact."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from retrieval_cli.cli import console
from retrieval_cli.cli.options import DeviceOpt, DocumentPromptOpt, ForceOpt, NameOpt, QueryPromptOpt, QuietOpt, WorkspaceOpt, workspace
from retrieval_cli.training import CHECKPOINT_MINUTES, CHECKPOINT_STEPS, objectives

KINDS = ("bi-encoder", "cross-encoder")


def train_cli(
    negatives_ref: Annotated[str, typer.Option("--negatives", help="Negatives artifact to train on (negatives/NAME[@VERSION] or NAME).")],
    kind: Annotated[str, typer.Option("--kind", help="bi-encoder (a dense retriever) or cross-encoder (a reranker and mining teacher).")] = "bi-encoder",
    base: Annotated[str, typer.Option(help="Starting model: alias (minilm), models/NAME, folder or hub id.")] = "minilm",
    loss: Annotated[Optional[str], typer.Option(help=(
        "bi-encoder: " + "; ".join(f"{name} ({objectives.get(name).summary})" for name in objectives.names())
        + ". cross-encoder: bce, listnet, lambda. \\[default: mnrl / bce]"))] = None,
    sampler: Annotated[Optional[str], typer.Option(help=(
        "bi-encoder batches: random, no-duplicates, tas (one query cluster per batch), tas-balanced (tas + negatives "
        "drawn evenly over teacher-margin bins). \\[default: no-duplicates]"))] = None,
    clusters: Annotated[Optional[str], typer.Option(help="Clusters artifact (cluster-queries) for the tas samplers.")] = None,
    num_negatives: Annotated[Optional[int], typer.Option(help="Hard negatives per query used \\[default: all mined].")] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 1,
    batch_size: Annotated[Optional[int], typer.Option(help="Examples per step \\[default: 32 bi-encoder, 16 cross-encoder].")] = None,
    learning_rate: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 2e-5,
    warmup_ratio: Annotated[float, typer.Option(help="Share of steps with linear warm-up.")] = 0.1,
    max_length: Annotated[int, typer.Option(help="Tokens per text (bi-encoder) or per (query, document) pair (cross-encoder).")] = 256,
    seed: Annotated[int, typer.Option(help="Seed for initialisation, shuffling, sampling and dropout.")] = 13,
    scale: Annotated[Optional[float], typer.Option(help="A cosine model's scores are scale x cosine (mnrl, cached-mnrl, mw, margin-mse, tas-b; a dot model's are raw) \\[default: 20].")] = None,
    mini_batch_size: Annotated[Optional[int], typer.Option(help="cached-mnrl: examples per forward chunk (memory only) \\[default: 16].")] = None,
    guide: Annotated[Optional[str], typer.Option(help="gist: guide model; tas-b: in-batch teacher. Frozen bi-encoder \\[default: minilm].")] = None,
    inbatch_weight: Annotated[Optional[float], typer.Option(help="tas-b: weight of the in-batch teacher term \\[default: 0.75].")] = None,
    margin_bins: Annotated[Optional[int], typer.Option(help="tas-balanced: teacher-margin bins \\[default: 10].")] = None,
    eval_split: Annotated[str, typer.Option(help="Split evaluated after each epoch when the dataset has it; '' for none.")] = "dev",
    measure: Annotated[Optional[list[str]], typer.Option("--measure", "-m", help="Dev measures (ir-measures names) \\[default: nDCG@10, R@100].")] = None,
    precision: Annotated[str, typer.Option(help="auto (bf16/fp16 on a GPU, fp32 on CPU), fp32, fp16 or bf16.")] = "auto",
    query_prompt: QueryPromptOpt = "",
    document_prompt: DocumentPromptOpt = "",
    device: DeviceOpt = "auto",
    gradient_checkpointing: Annotated[Optional[bool], typer.Option("--gradient-checkpointing/--no-gradient-checkpointing", metavar="", help="bi-encoder: recompute activations in the backward pass instead of keeping them: the same model, a quarter of the memory, ~22% slower on CPU \\[default: on for CPU steps over 8,192 tokens (batch x texts per row x max length), off on a GPU].")] = None,
    checkpoint_steps: Annotated[int, typer.Option(help="Save a resumable checkpoint every N steps; 0 never.")] = CHECKPOINT_STEPS,
    checkpoint_minutes: Annotated[float, typer.Option(help="bi-encoder: also every M minutes of training; 0 never. SIGTERM checkpoints too, then stops.")] = CHECKPOINT_MINUTES,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", metavar="", help="Continue an interrupted run of the same version from its last checkpoint; --no-resume refuses to, --force starts over.")] = True,
    name: NameOpt = None,
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fine-tune a model on mined negatives; the result is a models artifact (model + training log)."""
    from retrieval_cli import training
    from retrieval_cli.errors import InputError

    if kind not in KINDS:
        raise InputError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}", field="kind")
    ws = workspace(workspace_path)
    source = ws.resolve(negatives_ref, kind="negatives")
    if kind == "cross-encoder":
        given = {
            "--sampler": sampler, "--clusters": clusters, "--num-negatives": num_negatives, "--scale": scale,
            "--mini-batch-size": mini_batch_size, "--guide": guide, "--inbatch-weight": inbatch_weight,
            "--margin-bins": margin_bins, "--measure": measure,
            "--query-prompt": query_prompt or None, "--document-prompt": document_prompt or None,
            "--gradient-checkpointing": gradient_checkpointing,
        }
        unused = [flag for flag, value in given.items() if value is not None]
        if unused:
            raise InputError(f"{', '.join(unused)} apply to --kind bi-encoder only")
        ce_config = training.CrossEncoderTrainConfig(
            base=base, loss=loss or "bce", epochs=epochs, batch_size=batch_size or 16, learning_rate=learning_rate,
            warmup_ratio=warmup_ratio, max_length=max_length, seed=seed, device=device,
        )
        with console.progress(quiet) as bar:
            result = training.train_cross_encoder(ws, source, ce_config, name=name, force=force, progress=bar)
        console.built(result, "model")
        summary = result.artifact.summary
        console.warnings(summary)
        console.out.print(f"{summary['examples']} examples, {summary['steps']} steps, final training loss {summary['train_loss']}", highlight=False)
        return

    defaults = training.BiEncoderTrainConfig()
    config = training.BiEncoderTrainConfig(
        base=base, loss=loss or defaults.loss, sampler=sampler or defaults.sampler, num_negatives=num_negatives,
        epochs=epochs, batch_size=batch_size or defaults.batch_size, learning_rate=learning_rate,
        warmup_ratio=warmup_ratio, max_seq_length=max_length, seed=seed,
        scale=defaults.scale if scale is None else scale,
        mini_batch_size=mini_batch_size or defaults.mini_batch_size, guide=guide or defaults.guide,
        inbatch_weight=defaults.inbatch_weight if inbatch_weight is None else inbatch_weight,
        margin_bins=margin_bins or defaults.margin_bins, eval_split=eval_split,
        eval_measures=list(measure) if measure else defaults.eval_measures, precision=precision,
        query_prompt=query_prompt, document_prompt=document_prompt, device=device, gradient_checkpointing=gradient_checkpointing,
    )
    cluster_artifact = ws.resolve(clusters, kind="clusters") if clusters else None
    with console.progress(quiet) as bar:
        result = training.train_bi_encoder(
            ws, source, config, clusters=cluster_artifact, name=name, force=force, resume=resume,
            checkpoint_steps=checkpoint_steps, checkpoint_minutes=checkpoint_minutes, progress=bar,
        )
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 reports
        return
    console.built(result, "model")
    summary = result.artifact.summary
    console.warnings(summary)
    resumed = f", resumed at step {summary['resumed_from_step']}" if summary.get("resumed_from_step") else ""
    console.out.print(
        f"{summary['examples']} examples from {summary['queries']} queries ({summary['queries_short']} short of negatives), "
        f"{summary['steps']} steps{resumed}, mean loss {summary['train_loss']}, last {summary['final_loss']:.4f}",
        highlight=False,
    )
    if summary.get("dev"):
        base = summary.get("dev_base") or {}
        console.out.print(
            "dev: " + ", ".join(f"{k} {v:.4f}" + (f" (start {base[k]:.4f})" if k in base else "") for k, v in summary["dev"].items()),
            highlight=False,
        )
