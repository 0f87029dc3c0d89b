"""``retrieval-cli train``: fine-tune a bi-encoder (the retriever) or a cross-encoder from a negatives artifact."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from retrieval_cli.cli import console
from retrieval_cli.errors import InputError
from retrieval_cli.cli.options import DeviceOpt, DocumentPromptOpt, ForceOpt, NameOpt, QueryPromptOpt, QuietOpt, WorkspaceOpt, workspace
from retrieval_cli.training import CHECKPOINT_MINUTES, CHECKPOINT_STEPS, AdoreConfig, BiEncoderTrainConfig, CrossEncoderTrainConfig, objectives

_BI, _CE, _AD = BiEncoderTrainConfig(), CrossEncoderTrainConfig(), AdoreConfig()  # the defaults the help states are the configs'

# The options that set a config field (``training.config_for`` maps them to the kind's fields);
# the others say what to train on, where the result goes and how to survive an interruption.
CONFIG_OPTIONS = (
    "base", "loss", "sampler", "num_negatives", "epochs", "batch_size", "learning_rate", "warmup_ratio", "max_length", "seed",
    "scale", "mini_batch_size", "guide", "inbatch_weight", "focal_gamma", "mix_negatives", "margin_bins", "eval_split", "measure", "precision", "query_prompt",
    "document_prompt", "device", "gradient_checkpointing", "top_k", "metric_cut", "split",
)


def train_cli(
    negatives_ref: Annotated[Optional[str], typer.Option("--negatives", help="Negatives artifact to train on (negatives/NAME[@VERSION] or NAME); not adore.")] = None,
    kind: Annotated[str, typer.Option("--kind", help=(
        "bi-encoder (a dense retriever), cross-encoder (a reranker and mining teacher) or adore (the query encoder of --index's "
        "model, against negatives retrieved from that frozen index in every step)."))] = "bi-encoder",
    index_ref: Annotated[Optional[str], typer.Option("--index", help="adore: the flat dense index whose documents stay frozen; its dataset's --split queries train.")] = None,
    top_k: Annotated[Optional[int], typer.Option(help=f"adore: negatives retrieved per query in every step \\[default: {_AD.top_k}].")] = None,
    metric_cut: Annotated[Optional[int], typer.Option(help=f"adore: pairs weighted by their change to MRR@CUT (LambdaRank); 0 unweighted \\[default: {_AD.metric_cut}].")] = None,
    split: Annotated[Optional[str], typer.Option(help=f"adore: the split whose queries and judgments train \\[default: {_AD.split}].")] = None,
    base: Annotated[Optional[str], typer.Option(help=f"Starting model: alias (minilm), models/NAME, folder or hub id \\[default: {_BI.base}].")] = None,
    loss: Annotated[Optional[str], typer.Option(help=(
        "bi-encoder: " + "; ".join(f"{name} ({objectives.get(name).summary})" for name in objectives.names())
        + f". cross-encoder: bce, listnet, lambda. adore: adore (LambdaRank-weighted RankNet), mnrl. \\[default: {_BI.loss} / {_CE.loss} / {_AD.loss}]"))] = None,
    sampler: Annotated[Optional[str], typer.Option(help=(
        "bi-encoder batches: random, no-duplicates, tas (one query cluster per batch), tas-balanced (tas + negatives "
        f"drawn evenly over teacher-margin bins). \\[default: {_BI.sampler}]"))] = None,
    clusters: Annotated[Optional[str], typer.Option(help="Clusters artifact (cluster-queries) for the tas samplers.")] = None,
    num_negatives: Annotated[Optional[int], typer.Option(help="Hard negatives per query used \\[default: all mined].")] = None,
    epochs: Annotated[Optional[int], typer.Option(help=f"Training epochs \\[default: {_BI.epochs}].")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help=f"Examples per step \\[default: {_BI.batch_size} bi-encoder, {_CE.batch_size} cross-encoder].")] = None,
    learning_rate: Annotated[Optional[float], typer.Option("--lr", help=f"Peak learning rate \\[default: {_BI.learning_rate}].")] = None,
    warmup_ratio: Annotated[Optional[float], typer.Option(help=f"Share of steps with linear warm-up \\[default: {_BI.warmup_ratio}].")] = None,
    max_length: Annotated[Optional[int], typer.Option("--max-length", "--max-seq-length", help=(
        f"Tokens per text (bi-encoder: recipes' max_seq_length) or per (query, document) pair (cross-encoder) \\[default: {_BI.max_seq_length}]."))] = None,
    seed: Annotated[Optional[int], typer.Option(help=f"Seed for initialisation, shuffling, sampling and dropout \\[default: {_BI.seed}].")] = None,
    scale: Annotated[Optional[float], typer.Option(help=f"A cosine model's scores are scale x cosine (mnrl, cached-mnrl, mw, margin-mse, tas-b; a dot model's are raw) \\[default: {_BI.scale:g}].")] = None,
    mini_batch_size: Annotated[Optional[int], typer.Option(help=f"cached-mnrl: examples per forward chunk (memory only) \\[default: {_BI.mini_batch_size}].")] = None,
    guide: Annotated[Optional[str], typer.Option(help=f"gist: guide model; tas-b: in-batch teacher. Frozen bi-encoder \\[default: {_BI.guide}].")] = None,
    inbatch_weight: Annotated[Optional[float], typer.Option(help=f"tas-b: weight of the in-batch teacher term \\[default: {_BI.inbatch_weight}].")] = None,
    focal_gamma: Annotated[Optional[float], typer.Option(help=f"focal: each query's InfoNCE term weighted by (1 - p_positive)^gamma \\[default: {_BI.focal_gamma:g}].")] = None,
    mix_negatives: Annotated[Optional[int], typer.Option(help=f"focal: synthetic negatives per query, mixed from its hardest in the batch (MoCHi) \\[default: {_BI.mix_negatives}].")] = None,
    margin_bins: Annotated[Optional[int], typer.Option(help=f"tas-balanced: teacher-margin bins \\[default: {_BI.margin_bins}].")] = None,
    eval_split: Annotated[Optional[str], typer.Option(help=f"Split evaluated after each epoch when the dataset has it; '' for none \\[default: {_BI.eval_split}].")] = None,
    measure: Annotated[Optional[list[str]], typer.Option("--measure", "-m", help="Dev measures (ir-measures names) \\[default: nDCG@10, R@100].")] = None,
    precision: Annotated[Optional[str], typer.Option(help=f"auto (bf16/fp16 on a GPU, fp32 on CPU), fp32, fp16 or bf16 \\[default: {_BI.precision}].")] = None,
    query_prompt: QueryPromptOpt = None,  # type: ignore[assignment]
    document_prompt: DocumentPromptOpt = None,  # type: ignore[assignment]
    device: DeviceOpt = None,  # type: ignore[assignment]
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

    options = {k: v for k, v in locals().items() if k in CONFIG_OPTIONS}
    if kind == "cross-encoder" and clusters is not None:
        options["clusters"] = clusters  # refused with the other bi-encoder options
    config = training.config_for(kind, options)
    if kind == "adore" and (index_ref is None or negatives_ref is not None):
        raise InputError("--kind adore trains from --index (its dataset's queries), not --negatives")
    if kind != "adore" and (negatives_ref is None or index_ref is not None):
        raise InputError(f"--kind {kind} trains from --negatives (--index is --kind adore's)")
    ws = workspace(workspace_path)
    with console.progress(quiet) as bar:
        if kind == "adore":
            result = training.train_adore(ws, ws.resolve(index_ref, kind="indexes"), config, name=name, force=force, progress=bar)
        elif kind == "cross-encoder":
            result = training.train_cross_encoder(ws, ws.resolve(negatives_ref, kind="negatives"), config, name=name, force=force, progress=bar)
        else:
            cluster_artifact = ws.resolve(clusters, kind="clusters") if clusters else None
            result = training.train_bi_encoder(
                ws, ws.resolve(negatives_ref, kind="negatives"), config, clusters=cluster_artifact, name=name, force=force, resume=resume,
                checkpoint_steps=checkpoint_steps, checkpoint_minutes=checkpoint_minutes, progress=bar,
            )
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 reports
        return
    console.built(result, "model")
    _trained(result.artifact.summary)


def _trained(summary: dict) -> None:
    """What a training did: examples, steps, losses, and the dev scores against the start."""
    console.warnings(summary)
    if summary.get("kind") == "adore":
        console.out.print(f"{summary['queries']} queries, {summary['steps']} steps, last loss {summary['final_loss']:.4f}; training "
                          f"MRR@10 {summary['train_mrr10_first_step']:.4f} at the first step, {summary['train_mrr10_last_step']:.4f} at the last",
                          highlight=False)
        return
    if summary.get("kind") == "cross-encoder":
        console.out.print(f"{summary['examples']} examples, {summary['steps']} steps, final training loss {summary['train_loss']}", highlight=False)
        return
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
