"""Per-step lock files: ``<workspace>/pipelines/<recipe>/<step>.json`` records the spec hash and
artifact a step last produced (one file per step, so parallel ``make -j`` steps never write the
same file). A step whose hash matches its lock and whose artifact still exists is done."""

from __future__ import annotations

import json
import os
from pathlib import Path

from retrieval_cli.pipeline.dag import Step
from retrieval_cli.pipeline.recipe import Recipe
from retrieval_cli.store import Artifact, Workspace, atomic_write_text


def lock_dir(ws: Workspace, recipe: Recipe) -> Path:
    """Where the recipe's per-step lock and spec files live."""
    return ws.root / "pipelines" / recipe.name


def step_file(step: str) -> str:
    """A step's file stem: its name with ':' (awkward in make targets) as '.'."""
    return step.replace(":", ".")


def read_entry(ws: Workspace, recipe: Recipe, step: str) -> dict[str, str] | None:
    path = lock_dir(ws, recipe) / f"{step_file(step)}.json"
    if not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a damaged lock only means the step is shown as missing; the library decides reuse
    return entry if isinstance(entry, dict) and {"hash", "artifact"} <= set(entry) else None


def write_if_changed(path: Path, text: str) -> None:
    """Atomic write that leaves the file (and its mtime, which make reads) alone when unchanged."""
    if not (path.is_file() and path.read_text(encoding="utf-8") == text):
        atomic_write_text(path, text)


def write_entry(ws: Workspace, recipe: Recipe, step: Step, artifact: Artifact, touch: bool = False) -> None:
    path = lock_dir(ws, recipe) / f"{step_file(step.name)}.json"
    write_if_changed(path, json.dumps({"hash": step.hash, "artifact": artifact.ref}, sort_keys=True) + "\n")
    if touch:  # make ran this step: its target must now be newer than what it depends on
        os.utime(path)


def done(ws: Workspace, recipe: Recipe, step: Step) -> tuple[str, str, Artifact | None]:
    """(state, ref, artifact): done when the lock's hash matches and its artifact resolves."""
    entry = read_entry(ws, recipe, step.name)
    if entry is None:
        return "missing", "", None
    if entry["hash"] != step.hash:
        return "changed", entry["artifact"], None
    try:
        artifact = ws.resolve(entry["artifact"])
    except Exception:  # noqa: BLE001 - any failure to resolve means the artifact is gone
        return "missing", entry["artifact"], None
    return "done", entry["artifact"], artifact


def pinned(ws: Workspace) -> list[str]:
    """Every artifact reference a recipe's lock files hold: what ``artifacts gc`` keeps for pipelines."""
    refs = []
    for lock in sorted((ws.root / "pipelines").glob("*/*.json")):
        try:
            refs.append(str(json.loads(lock.read_text(encoding="utf-8"))["artifact"]))
        except (ValueError, KeyError, TypeError, OSError):
            continue  # a damaged lock protects nothing
    return refs
