"""What a bi-encoder training run is: the base model, loss, sampler and schedule, and which of
those fields version the trained model for the chosen loss and sampler."""

from __future__ import annotations

from dataclasses import dataclass, field

from retrieval_cli import data as datasets
from retrieval_cli import models
from retrieval_cli.errors import InputError, check_at_least
from retrieval_cli.evaluate import measures as evaluation
from retrieval_cli.store import Versioned, added, unversioned
from retrieval_cli.training import objectives
from retrieval_cli.training.trainer import check_schedule

TOPIC_SAMPLERS = ("tas", "tas-balanced")  # need a clusters artifact


SAMPLERS = ("random", "no-duplicates", "tas", "tas-balanced")


PRECISIONS = ("auto", "fp32", "fp16", "bf16")


# Tokens one CPU step holds (batch x texts per row x max_seq_length) above which activations are
# recomputed by default: MiniLM keeps about 0.34 MB of activations per token, so the default
# training (32 x 5 x 256 = 40,960 tokens) peaked at 13.9 GB and 3.6 GB recomputed.
CHECKPOINT_TOKENS = 8192


@dataclass
class BiEncoderTrainConfig(Versioned):
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
    scale: float = 20.0  # a cosine model's scores are scale x cosine (mnrl, cached-mnrl, mw, margin-mse, tas-b); a dot model's are raw
    mini_batch_size: int = unversioned(16)  # cached-mnrl: GradCache chunk; GradCache gives the same gradients in any size
    guide: str = models.DEFAULT_MODEL  # gist: filters in-batch false negatives; tas-b: in-batch teacher
    inbatch_weight: float = 0.75  # tas-b: weight of the in-batch teacher term
    focal_gamma: float = 2.0  # focal: (1 - p_positive)^gamma weights each query's InfoNCE term
    mix_negatives: int = 0  # focal: MoCHi-style synthetic negatives per query, mixed from its hardest in the batch
    margin_bins: int = 10  # tas-balanced: equal-width teacher-margin bins
    eval_split: str = "dev"  # evaluated each epoch when the dataset has it; "" never
    eval_measures: list[str] = field(default_factory=lambda: list(evaluation.DEFAULT_MEASURES))
    precision: str = "auto"  # auto: bf16 (or fp16) on a GPU, fp32 on CPU
    # "" = the base model's own prompt (none if it has none): the model's fingerprint versions it,
    # so it is unsaid (``added``) and models trained before prompts existed keep their ids.
    query_prompt: str = added("")
    document_prompt: str = added("")
    device: str = unversioned("auto")  # auto: the GPU when there is one
    # Recompute each layer's activations in the backward pass instead of keeping them: the same
    # gradients (dropout's random state is replayed), a quarter of the memory, about 22% slower on
    # CPU. None: on for CPU steps of more than CHECKPOINT_TOKENS tokens, where memory runs out first.
    gradient_checkpointing: bool | None = unversioned(None)

    @property
    def objective(self) -> objectives.Objective:
        """The loss, from the registry (``training.objectives``)."""
        return objectives.get(self.loss)

    def check(self) -> None:
        objective = self.objective
        if self.sampler not in SAMPLERS:
            raise InputError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}", field="sampler")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}", field="precision")
        check_at_least(self, 1, "epochs", "batch_size", "mini_batch_size")
        if objective.in_batch and self.batch_size < 2:
            raise InputError(f"{self.loss} contrasts in-batch examples: batch-size must be >= 2", field="batch_size")
        if self.max_seq_length < 8:
            raise InputError(f"max-seq-length must be >= 8, got {self.max_seq_length}", field="max_seq_length")
        if self.num_negatives is not None and self.num_negatives < 1:
            raise InputError(f"num-negatives must be >= 1, got {self.num_negatives}", field="num_negatives")
        check_schedule(self.learning_rate, self.warmup_ratio)
        models.check_device(self.device)
        if self.mix_negatives < 0:
            raise InputError(f"mix-negatives must be >= 0, got {self.mix_negatives}", field="mix_negatives")
        if not self.focal_gamma >= 0:
            raise InputError(f"focal-gamma must be >= 0, got {self.focal_gamma}", field="focal_gamma")
        if self.scale <= 0 or self.inbatch_weight < 0:
            raise InputError("scale must be > 0 and inbatch-weight >= 0", field="scale")
        if self.margin_bins < 1:
            raise InputError(f"margin-bins must be >= 1, got {self.margin_bins}", field="margin_bins")
        if self.eval_split:
            datasets.check_split_name(self.eval_split)

    def irrelevant(self) -> set[str]:
        """Fields that change the trained model only for some losses and samplers: an objective's
        optional fields it does not read (``Objective.uses``)."""
        out = set(objectives.OPTIONAL_FIELDS - self.objective.uses)
        if self.sampler != "tas-balanced":
            out.add("margin_bins")
        else:
            out.add("num_negatives")  # one negative per row, drawn each epoch
        return out
