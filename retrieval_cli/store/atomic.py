"""Writes that readers never see half done: a private temporary beside the target, renamed into place."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file outside any artifact (a lock, an export, a spec file) so readers see the old
    or the new content, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_sibling(path, ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def private_sibling(path: Path, suffix: str = "") -> Path:
    """A hidden name beside ``path`` that no other writer picks (two writers never share one)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{suffix}")


def remove_tree(path: Path, trash_root: Path) -> None:
    """Move into ``trash_root`` (on the same filesystem), then delete: a crash midway leaves a stale
    temporary folder (the next gc removes it), never half an artifact."""
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    trash_root.mkdir(parents=True, exist_ok=True)
    trash = trash_root / f"gc-{path.name}-{uuid.uuid4().hex[:8]}"
    path.rename(trash)
    shutil.rmtree(trash)


def tree_size(path: Path) -> int:
    """Bytes of a file, or of the regular files under a folder (links not followed)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
