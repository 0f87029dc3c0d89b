"""Step names, made in one place: every builder, the report's baseline lookup and the estimate
read them from here, so a name is spelled once (``mine:bm25-s13``, ``evaluate:bm25-s13@dl19``)."""

from __future__ import annotations

from pathlib import Path

from retrieval_cli.errors import InputError
from retrieval_cli.store import check_name

DATASET = "dataset"
QUERIES = "queries"
BM25 = "index:bm25"  # the training collection's BM25 index (mining; BM25 retrieval on it)
CLUSTERS = "clusters"
TEACHER = "model:cross-encoder"
FROZEN = "index:frozen"  # ADORE's: the training corpus under the untrained model, its documents never re-encoded
REPORT = "report"


def run(label: str, seed: int | None) -> str:
    """A system's run: the strategy, and its seed when the recipe trains several."""
    return label if seed is None else f"{label}-s{seed}"


def target(label: str) -> str:
    return f"target:{label}"


def mine(label: str, seed: int | None = None) -> str:
    """A strategy's negatives; a round (mined with a trained model) mines once per seed."""
    return f"mine:{run(label, seed)}"


def train(label: str, seed: int | None = None) -> str:
    return f"train:{run(label, seed)}"


def evaluate(system: str, suffix: str) -> str:
    """``system`` (a run or a baseline) on the target whose step suffix is ``suffix`` (@LABEL)."""
    return f"evaluate:{system}{suffix}"


def untrained_index(suffix: str) -> str:
    return f"index:untrained{suffix}"


def bm25_index(suffix: str) -> str:
    """A target corpus's own BM25 index (the training collection's is ``BM25``)."""
    return f"index:bm25-retrieval{suffix}"


def model_index(system: str, suffix: str) -> str:
    return f"index:model-{system}{suffix}"


def artifact(path: Path, where: str, name: str) -> str:
    """A name the recipe will give an artifact, checked while planning (before anything is written)."""
    try:
        return check_name(name)
    except InputError as exc:
        raise InputError(f"{path}: {where}: {exc}") from None
