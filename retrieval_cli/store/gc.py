"""Garbage collection: artifact versions nothing refers to, and temporary folders no live build owns.

The store knows no pipeline: callers hand over the references they want kept (the CLI passes the
ones the recipes' lock files hold).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Iterable

from retrieval_cli.errors import RetrievalError
from retrieval_cli.store.artifact import Artifact
from retrieval_cli.store.atomic import remove_tree, tree_size
from retrieval_cli.store.build import TMP, gc_guard, held_inputs, is_locked, temporary_key
from retrieval_cli.store.workspace import Workspace


@dataclass
class GcResult:
    """What ``collect`` removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    versions: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)  # version folders with unreadable manifests
    damaged_removed: bool = False
    temporary: list[str] = field(default_factory=list)
    bytes: int = 0


def collect(ws: Workspace, keep: Iterable[str] = (), dry_run: bool = False, damaged: bool = False) -> GcResult:
    """Remove artifact versions nothing refers to, and temporary folders no live build owns.

    Kept: the latest version of every kind/name, every version ``keep`` names, every input of a
    build in progress (its lock names them), and everything those were made from. A temporary
    folder is stale when no process holds its build lock (a crash, kill -9); one being built is
    left alone. Version folders whose manifest cannot be read are listed, and removed only with
    ``damaged`` (their payload may still be worth a look). Two gc runs take turns."""
    with gc_guard(ws.root, exclusive=True):
        return _collect(ws, [*keep, *held_inputs(ws.root)], dry_run, damaged)


def _collect(ws: Workspace, keep: Iterable[str], dry_run: bool, damaged: bool) -> GcResult:
    everything, broken = ws.scan()
    latest: dict[tuple[str, str], Artifact] = {}
    for artifact in everything:  # oldest first, so the last one seen is the latest
        latest[(artifact.kind, artifact.name)] = artifact
    roots = list(latest.values())
    for ref in keep:
        try:
            roots.append(ws.resolve(ref))
        except RetrievalError:
            continue  # a reference to a removed artifact protects nothing
    kept: set = set()
    todo = roots
    while todo:
        artifact = todo.pop()
        if artifact.path in kept:
            continue
        kept.add(artifact.path)
        for ref in artifact.manifest.get("inputs", {}).values():
            found = ws.find_ref(ref)
            if found is not None:
                todo.append(found)
    result = GcResult(dry_run=dry_run)
    tmp_root = ws.root / TMP
    for artifact in everything:
        if artifact.path not in kept:
            result.versions.append(artifact.ref)
            result.bytes += tree_size(artifact.path)
            if not dry_run:
                remove_tree(artifact.path, tmp_root)
    result.damaged_removed = damaged
    for folder, _why in broken:
        result.damaged.append(folder.relative_to(ws.root).as_posix())
        if damaged:
            result.bytes += tree_size(folder)
            if not dry_run:
                remove_tree(folder, tmp_root)
    for tmp in sorted(tmp_root.iterdir()) if tmp_root.is_dir() else []:
        if is_locked(ws.root, temporary_key(tmp.name)):
            continue
        result.temporary.append(tmp.name)
        result.bytes += tree_size(tmp)
        if not dry_run:
            shutil.rmtree(tmp) if tmp.is_dir() and not tmp.is_symlink() else tmp.unlink()
    return result
