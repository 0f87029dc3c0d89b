"""Where an unfinished training run keeps its checkpoints (a scratch folder of the workspace cache,
keyed by the model's version id), and finding the latest complete one to resume from."""

from __future__ import annotations

import shutil
from pathlib import Path

from retrieval_cli.store import Workspace


def checkpoint_dir(ws: Workspace, name: str, version: str) -> Path:
    """Where an unfinished training run keeps its checkpoints (removed once the model is written)."""
    return ws.cache("checkpoints").scratch(f"{name}@{version}")


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


def drop_incomplete(folder: Path) -> None:
    """Remove checkpoints a save did not finish (no ``trainer_state.json``, which the trainer writes
    last): never resumed from, and on a full disk they hold the space the next try needs."""
    for child in folder.glob("checkpoint-*") if folder.is_dir() else []:
        if not (child / "trainer_state.json").is_file():
            shutil.rmtree(child, ignore_errors=True)
