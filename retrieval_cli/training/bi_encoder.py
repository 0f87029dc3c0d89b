"""Bi-encoder training from negatives artifacts, through sentence-transformers' trainer.

Bi-encoders (the retrievers the comparison is about): ``SentenceTransformerTrainer`` with the
loss the config's objective builds (``training.objectives``: the library's losses where it has
them, such as MultipleNegativesRankingLoss, GISTEmbedLoss, MarginMSELoss and DistillKLDivLoss,
and ``training.losses`` where it does not: Mann-Whitney/AUC, TAS-B dual teacher); batches from sentence-transformers' samplers or the topic-aware ones in
``training.batching``. Checkpoints live in the workspace cache keyed by the model's version
id, so re-running continues an interrupted run at its saved step (optimizer, scheduler, RNG
and the sampler's epoch order restored: the loss curve continues without a jump). Under
``torchrun`` every process trains and rank 0 alone writes the artifact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval_cli import data as datasets
from retrieval_cli import models
from retrieval_cli.errors import InputError, Terminated
from retrieval_cli.mining import records as negatives
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Artifact, BuildResult, Workspace
from retrieval_cli.store.foreign_writes import apply_umask, library_writes
from retrieval_cli.training.checkpoints import checkpoint_dir, drop_incomplete, latest_checkpoint
from retrieval_cli.training.config import CHECKPOINT_TOKENS, TOPIC_SAMPLERS, BiEncoderTrainConfig
from retrieval_cli.training.dev_evaluator import dev_evaluator
from retrieval_cli.training.examples import Examples, examples_for, sampler_factory
from retrieval_cli.training.model_card import train_command, write_model_card
from retrieval_cli.training.trainer import (
    CHECKPOINT_MINUTES,
    CHECKPOINT_STEPS,
    checkpoint_clock,
    device_arguments,
    progress_callback,
    schedule,
    stop_on_sigterm,
    training_device,
)


def _precision(config: BiEncoderTrainConfig) -> str:
    if config.precision != "auto":
        return config.precision
    if training_device(config.device) != "cuda":
        return "fp32"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def _distributed() -> tuple[int, int]:
    """(rank, world size) under torchrun; (0, 1) otherwise."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _bi_encoder_loss(config: BiEncoderTrainConfig, model: Any, guide: Any) -> Any:
    """The config's objective built for this model, scoring as the model compares (a cosine model
    ``scale`` x cosine, a dot-product model the raw dot product)."""
    return config.objective.build(model, config, models.similarity(model, config.base), guide)


def recomputes_activations(config: BiEncoderTrainConfig, device: str, texts_per_row: int) -> bool:
    """Whether training recomputes activations (gradient checkpointing): as the config says, else
    on a CPU when one step holds more than ``CHECKPOINT_TOKENS`` tokens. The gradients are the
    same either way; a GPU keeps them by default, where speed is the scarcer thing."""
    if config.gradient_checkpointing is not None:
        return config.gradient_checkpointing
    return device == "cpu" and config.batch_size * texts_per_row * config.max_seq_length > CHECKPOINT_TOKENS


def _recompute_activations(model: Any, name: str) -> None:
    """Gradient checkpointing on each transformer inside the sentence-transformers model, switched
    on directly: the trainer's own switch reaches it through a name transformers 5 deprecates (with
    a warning on the terminal) and transformers 6 will no longer call."""
    from transformers import PreTrainedModel

    inner = [m for m in model.modules() if isinstance(m, PreTrainedModel) and m.supports_gradient_checkpointing]
    if not inner:
        raise InputError(f"model '{name}' cannot recompute activations; train it with --no-gradient-checkpointing", field="gradient_checkpointing")
    for module in inner:
        # transformers 5.x before the rename (5.17 on a CUDA machine here) has only the old name.
        enable = getattr(module, "activation_checkpointing_enable", None) or module.gradient_checkpointing_enable
        enable({"use_reentrant": False})  # dropout's random state is replayed


def training_prompts(model: Any, config: BiEncoderTrainConfig, columns: list[str]) -> dict[str, str]:
    """The prompt of each training column (sentence-transformers' ``prompts`` argument): the query
    prompt for the anchor, the document prompt for passages; the config's, else the model's own."""
    query = models.prompt_for(model, "query", config.query_prompt)
    document = models.prompt_for(model, "document", config.document_prompt)
    out = {}
    for column in columns:
        if column == "label":
            continue
        prompt = query if column == "anchor" else document
        if prompt:
            out[column] = prompt
    return out


def _log_records(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trainer's log history as training-log lines: loss per step, evaluation per epoch."""
    out = []
    for entry in history:
        if "loss" in entry:
            out.append({
                "step": entry["step"], "epoch": round(float(entry.get("epoch", 0)), 4), "loss": float(entry["loss"]),
                "learning_rate": float(entry.get("learning_rate", 0.0)), "grad_norm": float(entry.get("grad_norm", 0.0)),
            })
        elif any(k.startswith("eval_") for k in entry):
            metrics = {k[5:]: v for k, v in entry.items() if k.startswith("eval_") and isinstance(v, (int, float)) and not k.endswith(("_runtime", "per_second"))}
            out.append({"step": entry["step"], "epoch": round(float(entry.get("epoch", 0)), 4), "eval": metrics})
    return out


def training_log(artifact: Artifact) -> list[dict[str, Any]]:
    """The ``training_log.jsonl`` lines of a bi-encoder models artifact."""
    with open(artifact.file("training_log.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _resolve(
    ws: Workspace, source: Artifact, config: BiEncoderTrainConfig, clusters: Artifact | None
) -> tuple[dict[str, Any], dict[str, Artifact], models.ModelSpec, models.ModelSpec | None]:
    """Check the inputs fit the config; the resolved config values, input artifacts, base and guide models."""
    if source.kind != "negatives":
        raise InputError(f"'{source.ref}' is a {source.kind} artifact; train from negatives")
    if config.sampler in TOPIC_SAMPLERS and clusters is None:
        raise InputError(f"sampler {config.sampler} draws each batch from one query cluster: give --clusters (run cluster-queries first)", field="clusters")
    if clusters is not None:
        if config.sampler not in TOPIC_SAMPLERS:
            raise InputError(f"--clusters is used only by the tas and tas-balanced samplers, not {config.sampler}", field="clusters")
        if clusters.kind != "clusters":
            raise InputError(f"'{clusters.ref}' is a {clusters.kind} artifact, expected clusters")
    if config.objective.teacher or config.sampler == "tas-balanced":
        negatives.teacher(source)  # fails early, with the reason, when no teacher scored every negative
    spec = models.resolve(config.base, ws)
    guide_spec = models.resolve(config.guide, ws) if config.objective.guided else None
    resolved = {"kind": "bi-encoder", "base_fingerprint": spec.fingerprint}
    resolved["precision"] = _precision(config)  # auto resolved: a bf16 GPU run is not the CPU fp32 model
    inputs: dict[str, Artifact] = {"negatives": source}
    if spec.artifact:
        inputs["base"] = spec.artifact
    if guide_spec is not None:
        resolved["guide_fingerprint"] = guide_spec.fingerprint
        if guide_spec.artifact:
            inputs["guide"] = guide_spec.artifact
    if clusters is not None:
        inputs["clusters"] = clusters
    return resolved, inputs, spec, guide_spec


def planned_version(ws: Workspace, source: Artifact, config: BiEncoderTrainConfig, clusters: Artifact | None = None) -> str:
    """The version id ``train_bi_encoder`` gives these inputs, known before training."""
    config.check()
    resolved, inputs, _, _ = _resolve(ws, source, config, clusters)
    return ws.version_of("models", config, inputs, resolved)


@dataclass
class _Training:
    """One training's explicit inputs, resolved before any work: what trains on what, where
    its checkpoints go and which it resumes, and which process of a distributed run this is."""

    source: Artifact
    config: BiEncoderTrainConfig
    clusters: Artifact | None
    spec: models.ModelSpec
    guide_spec: models.ModelSpec | None
    dataset: Artifact
    name: str
    version: str
    resolved: dict[str, Any]
    checkpoints: Path
    left: tuple[Path, int] | None  # the checkpoint it resumes, and its step
    checkpoint_steps: int
    checkpoint_minutes: float
    rank: int
    world: int

    @property
    def ref(self) -> str:
        return f"models/{self.name}@{self.version}"


def train_bi_encoder(
    ws: Workspace,
    source: Artifact,
    config: BiEncoderTrainConfig,
    *,
    clusters: Artifact | None = None,
    name: str | None = None,
    force: bool = False,
    resume: bool = True,
    checkpoint_steps: int = CHECKPOINT_STEPS,
    checkpoint_minutes: float = CHECKPOINT_MINUTES,
    progress: Progress = silent,
) -> BuildResult:
    """Fine-tune a bi-encoder on a negatives artifact; a ``models`` artifact with ``model/`` and a training log.

    ``checkpoint_steps`` and ``checkpoint_minutes`` (each 0: none; SIGTERM also checkpoints, then
    stops) and ``resume`` say how to survive an interruption, not what is trained, so they are not
    part of the version. Leftover checkpoints of the same version (an
    interrupted run) are resumed by default, so re-running the command finishes the work; with
    ``resume=False`` they are an error (``force`` discards them) rather than silently thrown away.
    """
    config.check()
    if checkpoint_steps < 0:
        raise InputError(f"checkpoint-steps must be >= 0, got {checkpoint_steps}", field="checkpoint_steps")
    if not checkpoint_minutes >= 0:  # NaN too
        raise InputError(f"checkpoint-minutes must be >= 0, got {checkpoint_minutes}", field="checkpoint_minutes")
    resolved, inputs, spec, guide_spec = _resolve(ws, source, config, clusters)
    name = name or f"{source.name}-{config.loss}"
    version = ws.version_of("models", config, inputs, resolved)
    existing = ws.existing("models", name, version, force)
    if existing is not None and not force:
        return BuildResult(ws.checked(existing), reused=True)  # a cache hit is verified like any other
    checkpoints = checkpoint_dir(ws, name, version)
    rank, world = _distributed()
    left = _leftover(checkpoints, f"models/{name}@{version}", resume=resume, force=force, rank=rank)
    t = _Training(source, config, clusters, spec, guide_spec, ws.inputs_of(source)["dataset"], name, version, resolved,
                  checkpoints, left, checkpoint_steps, checkpoint_minutes, rank, world)

    def build(folder: Path) -> dict[str, Any]:
        model, log, summary = _fit(ws, t, progress)
        if rank == 0:
            _write(folder, t, model, log, summary)
        return summary

    if world > 1 and rank != 0:
        # Every process trains in lockstep; rank 0 alone writes the artifact, the others wait for it.
        with tempfile.TemporaryDirectory(dir=ws.root) as scratch:
            build(Path(scratch))
        _barrier()
        found = ws.find("models", name, version)
        if found is None:
            raise InputError(f"rank 0 did not write models/{name}@{version}")
        return BuildResult(found, reused=False)
    result = ws.build("models", name, config, inputs, build, resolved=resolved, force=force, link=world == 1)  # the other ranks train
    shutil.rmtree(checkpoints, ignore_errors=True)  # the finished model supersedes them
    if world > 1:
        _barrier()
    return result


def _leftover(checkpoints: Path, ref: str, *, resume: bool, force: bool, rank: int) -> tuple[Path, int] | None:
    """The checkpoint an interrupted run of this version left (resumed), after dropping any a
    crash left half-written; without ``resume`` it is an error, or with ``force`` discarded."""
    if rank == 0:
        drop_incomplete(checkpoints)
    left = latest_checkpoint(checkpoints)
    if left is not None and not resume:
        if not force:
            raise InputError(f"training of {ref} stopped at step {left[1]} (checkpoint in {left[0]}); without --no-resume it continues, --force starts over")
        if rank == 0:
            shutil.rmtree(checkpoints, ignore_errors=True)
        left = None
    return left


def _trainer(ws: Workspace, t: _Training, progress: Progress) -> tuple[Any, Any, Any, Examples, dict[str, Any]]:
    """The sentence-transformers trainer for ``t``: (trainer, model, checkpoint clock, examples,
    facts for the summary: precision, prompts, activation recomputation, the base's dev score)."""
    from datasets import Dataset, disable_progress_bars
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from transformers import PrinterCallback, set_seed

    config = t.config
    disable_progress_bars()
    examples = examples_for(ws, t.source, config)
    rows = examples.rows
    make_sampler = sampler_factory(config, t.clusters, examples)
    if not config.objective.teacher:
        for r in rows:
            r.pop("label", None)

    class Trainer(SentenceTransformerTrainer):
        def add_model_card_callback(self, default_args_dict):  # noqa: ANN001, ANN201
            pass  # the manifest records the run; the card's widget scan draws its own tqdm bar

        def get_batch_sampler(self, dataset, *args, **kwargs):  # noqa: ANN001, ANN201
            if make_sampler is not None:
                return make_sampler(dataset, **kwargs)
            return super().get_batch_sampler(dataset, *args, **kwargs)

    device = training_device(config.device)
    set_seed(config.seed)
    model = models.load_sentence_transformer(t.spec, device=device)
    model.max_seq_length = config.max_seq_length
    guide = models.load_sentence_transformer(t.guide_spec, device=device) if t.guide_spec is not None else None
    data = datasets.load(t.dataset, lazy_corpus=True)  # texts are read only by a dev evaluator
    evaluator = None
    if config.eval_split and config.eval_split in data.qrels:
        evaluator = dev_evaluator(data, config, progress, hidden=config.eval_split in datasets.hidden_query_splits(t.dataset))
    precision = _precision(config)
    prompts = training_prompts(model, config, list(rows[0]))
    recompute = recomputes_activations(config, device, sum(1 for c in rows[0] if c != "label"))
    if recompute:
        _recompute_activations(model, config.base)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(t.checkpoints),
        **schedule(config.epochs, config.batch_size, config.learning_rate, config.warmup_ratio, config.seed),
        batch_sampler=BatchSamplers.NO_DUPLICATES if config.sampler == "no-duplicates" else BatchSamplers.BATCH_SAMPLER,
        save_strategy="steps" if t.checkpoint_steps else "no",
        save_steps=t.checkpoint_steps or 500,
        save_total_limit=1,
        eval_strategy="epoch" if evaluator is not None else "no",
        logging_strategy="steps",
        logging_steps=1,
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        # accelerate spreads CPU processes (torchrun without GPUs) only when told it is on CPU.
        **device_arguments(device),
        ddp_backend="gloo" if device == "cpu" and t.world > 1 else None,
        prompts=prompts or None,
    )
    clock = checkpoint_clock(t.checkpoint_minutes)
    trainer = Trainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows), loss=_bi_encoder_loss(config, model, guide),
        evaluator=evaluator, callbacks=[progress_callback(progress, "train bi-encoder"), clock],
    )
    trainer.remove_callback(PrinterCallback)  # library code never prints
    # The starting model on the same dev split: whether training helped is read off one manifest.
    dev_base = evaluator(model) if evaluator is not None and t.rank == 0 else None
    facts = {"precision": precision, "prompts": prompts, "gradient_checkpointing": recompute, "dev_base": dev_base}
    return trainer, model, clock, examples, facts


def _fit(ws: Workspace, t: _Training, progress: Progress) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """Train (resuming ``t.left``), checkpointing as told; (model, log records, summary). SIGTERM
    checkpoints and raises Terminated: no model, the next run resumes there."""
    trainer, model, clock, examples, facts = _trainer(ws, t, progress)
    try:
        with library_writes(t.checkpoints), stop_on_sigterm(clock):  # checkpoints: torch.save and safetensors
            result = trainer.train(resume_from_checkpoint=str(t.left[0]) if t.left else None)
    except OSError:
        drop_incomplete(t.checkpoints)
        raise
    if clock.stopped:
        raise Terminated()
    log = _log_records(trainer.state.log_history)
    evals = [r["eval"] for r in log if "eval" in r]
    losses = [r["loss"] for r in log if "loss" in r]
    summary = {
        "kind": "bi-encoder",
        "examples": len(examples.rows),
        "queries": examples.queries,
        "queries_short": examples.short,
        "steps": int(result.global_step),
        "resumed_from_step": t.left[1] if t.left else 0,
        # Over the whole log, so a resumed run reports what an uninterrupted one would.
        "train_loss": round(sum(losses) / len(losses), 5) if losses else None,
        "final_loss": losses[-1] if losses else None,
        "dev": evals[-1] if evals else None,
        "dev_base": facts["dev_base"],
        "precision": facts["precision"],
        "processes": t.world,
        "device": models.device_of(model),
        "gradient_checkpointing": facts["gradient_checkpointing"],
        **({"prompts": facts["prompts"]} if facts["prompts"] else {}),
        "similarity": models.similarity(model, t.config.base),
        **({"warnings": t.source.summary["warnings"]} if t.source.summary.get("warnings") else {}),  # e.g. trained on test queries
    }
    return model, log, summary


def _write(folder: Path, t: _Training, model: Any, log: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """The model folder (with its card) and the training log."""
    with library_writes(folder / "model"):
        model.save_pretrained(str(folder / "model"))
    with open(folder / "training_log.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps(r) + "\n" for r in log)
    write_model_card(
        folder / "model", ref=t.ref, kind="bi-encoder", base=t.config.base,
        config={**t.config.versioned(), **t.resolved}, negatives=t.source, dataset=t.dataset, facts=summary,
        command=train_command(t.source, "bi-encoder", t.config, BiEncoderTrainConfig(), t.name),
    )
    apply_umask(folder / "model")


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
