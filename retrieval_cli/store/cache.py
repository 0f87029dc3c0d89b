"""The workspace cache: one entry API for every cache (embeddings, LLM generations, mining chunks,
dense shard parts, BEIR downloads), and scratch folders for training checkpoints.

An entry is a folder ``<ws>/.cache/<namespace>/<key>/`` written whole into a private temporary
folder and renamed into place, holding payload files and ``entry.json``: a small JSON ``data``
value with its checksum, and the payload files' checksums and sizes. ``load`` checks them (as
artifact reads are checked: checksums up to 256 MiB, sizes beyond) and removes an entry that fails,
so a damaged or edited entry is recomputed, never trusted or assembled into an artifact.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from retrieval_cli.store.artifact import VERIFY_FULL_BYTES, listing, verify_files

CACHE = ".cache"
ENTRY = "entry.json"


def _data_digest(data: Any) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    """A whole, checked cache entry: its JSON data and the folder holding its files."""

    path: Path
    data: Any

    def file(self, name: str) -> Path:
        return self.path / name


@dataclass(frozen=True)
class CacheEntry:
    """One key of a cache namespace; ``load`` it, or ``store`` it once computed."""

    path: Path
    verify: str = "auto"  # as Workspace.verify_reads: auto checksums up to 256 MiB, none sizes only

    def exists(self) -> bool:
        return (self.path / ENTRY).is_file()

    def load(self) -> Entry | None:
        """The entry when it is whole and unchanged; None when absent. A damaged one is removed."""
        record_path = self.path / ENTRY
        if not record_path.is_file() or self.path.is_symlink():
            return None
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            files, sizes = record["files"], record["sizes"]
            intact = record["data_sha256"] == _data_digest(record["data"])
            if intact:
                sizes_only = self.verify == "none" or sum(sizes.values()) > VERIFY_FULL_BYTES
                intact = not verify_files(self.path, files, sizes, sizes_only=sizes_only, record=ENTRY)
        except (OSError, ValueError, KeyError, TypeError):
            intact = False
        if not intact:
            self.remove()
            return None
        return Entry(self.path, record["data"])

    def store(self, data: Any = None, write: Callable[[Path], None] | None = None) -> Entry:
        """Write ``write(folder)``'s files and ``data`` as this entry, atomically. When another
        process stored the same key first, its entry is kept (both computed the same thing)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.parent / f".{self.path.name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            if write is not None:
                write(tmp)
            files, sizes = listing(tmp, ENTRY)
            record = {"data": data, "data_sha256": _data_digest(data), "files": files, "sizes": sizes}
            (tmp / ENTRY).write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
            if not self.exists():
                if self.path.exists():  # a damaged leftover without its record
                    shutil.rmtree(self.path, ignore_errors=True)
                try:
                    tmp.rename(self.path)
                    return Entry(self.path, data)
                except OSError:
                    if not self.exists():  # not a concurrent winner: a real failure
                        raise
        except OSError as exc:
            if exc.filename is None:  # a write's error names no file: name the entry being written
                raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from exc
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        # Another process stored this key first: its entry (the same computation) is the one kept.
        return Entry(self.path, json.loads((self.path / ENTRY).read_text(encoding="utf-8"))["data"])

    def remove(self) -> None:
        if self.path.is_symlink():
            self.path.unlink()
        else:
            shutil.rmtree(self.path, ignore_errors=True)


@dataclass(frozen=True)
class Cache:
    """A namespace of the workspace cache (``<ws>/.cache/<namespace>``)."""

    root: Path
    verify: str = "auto"

    def entry(self, key: str) -> CacheEntry:
        """The entry for ``key`` (a path below the namespace, e.g. ``job/chunk-3``)."""
        return CacheEntry(self.root / key, self.verify)

    def scratch(self, key: str) -> Path:
        """A folder a long step fills as it goes (training checkpoints): not an entry, since its
        writer (the trainer) keeps its own consistency; removed once the artifact is written."""
        return self.root / key

    def remove(self, key: str) -> None:
        shutil.rmtree(self.root / key, ignore_errors=True)
