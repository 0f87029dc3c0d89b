"""Building an artifact: one builder per version id, under a lock, written whole or not at all.

``Workspace.build`` computes the version id from (kind, the config's versioned fields, what the command
resolved, the inputs' versions); an existing artifact with that id is reused. Otherwise the builder
fills a private temporary folder, the manifest lists every file's checksum and size, and the folder
is renamed into place: an interrupted build never leaves an artifact that looks finished.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from retrieval_cli.store.artifact import MANIFEST, SCHEMA_VERSION, Artifact, listing, software_versions, version_id
from retrieval_cli.store.versioning import Versioned, config_record

TMP = ".tmp"  # builds in progress (a crashed one's: the next build of it or `artifacts gc` removes it)
LOCKS = ".locks"  # one flock per version id being built


def record(config: Versioned | Mapping[str, Any], resolved: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config as the manifest holds it and the version id hashes it (JSON values only)."""
    return json.loads(json.dumps(config_record(config, resolved), default=str))


def version_of(
    kind: str, config: Versioned | Mapping[str, Any], inputs: Mapping[str, Artifact], resolved: Mapping[str, Any] | None = None,
) -> str:
    """The version id a build gives; steps that keep state across interrupted attempts (training
    checkpoints, mining chunks) key it by this."""
    return version_id(kind, record(config, resolved), inputs)


class NeedsBuild(BaseException):
    """Raised by a reuse-only workspace where a build would start. A BaseException, so no
    library ``except Exception`` takes it for a failure of the work it never began."""


HOLDS = "holds "  # a lock file's lines after the holder's: the artifacts its build reads


@contextmanager
def gc_guard(root: Path, *, exclusive: bool) -> Iterator[None]:
    """``artifacts gc`` holds ``<root>/.locks/gc`` exclusively while it decides and removes; a build
    holds it shared while it records the inputs it reads in its lock file. So gc either sees a
    build's inputs (and keeps them), or finishes before the build records them, and the build then
    finds an input gone before any work. Two gc runs take turns."""
    folder = root / LOCKS
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "gc", "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def held_inputs(root: Path) -> list[str]:
    """The artifact references live builds read (their lock files' ``holds`` lines): what gc keeps."""
    refs = []
    for path in sorted((root / LOCKS).glob("*.lock")) if (root / LOCKS).is_dir() else []:
        if not is_locked(root, path.stem):
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        refs.extend(line[len(HOLDS):] for line in lines if line.startswith(HOLDS))
    return refs


@contextmanager
def build_lock(
    root: Path, key: str, on_wait: Callable[[str], None] | None = None, holds: Iterable[str] = (),
) -> Iterator[None]:
    """An exclusive lock on ``<root>/.locks/KEY.lock``, naming its holder and (``holds``) the
    artifacts the build reads, which gc keeps while the lock is held. The kernel drops an flock
    when its holder dies, even by kill -9, so a crashed build never leaves a lock that blocks the
    next one."""
    folder = root / LOCKS
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{key}.lock", "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            for _ in range(20):  # the holder writes its pid just after it takes the lock
                handle.seek(0)
                holder = handle.read().strip()
                if holder:
                    break
                time.sleep(0.01)
            holder = holder or "another process"
            if on_wait is not None:
                on_wait(f"waiting for {holder}, which is building {key}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        with gc_guard(root, exclusive=False):
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n" + "".join(f"{HOLDS}{ref}\n" for ref in holds))
            handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_locked(root: Path, key: str) -> bool:
    """Whether a live process holds the build lock for KEY (kind-name-version)."""
    path = root / LOCKS / f"{key}.lock"
    if not path.is_file():
        return False
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def temporary_key(folder_name: str) -> str:
    """The lock key of a temporary folder: ``KIND-NAME-VERSION-xxxxxxxx``, maybe ``old-``/``gc-`` first."""
    return folder_name.rsplit("-", 1)[0].removeprefix("old-").removeprefix("gc-")


def write(
    root: Path,
    kind: str,
    name: str,
    version: str,
    config: dict[str, Any],
    inputs: Mapping[str, Artifact],
    builder: Callable[[Path], Mapping[str, Any] | None],
    software: Mapping[str, str] | None,
    origin: str | None = None,
) -> Artifact:
    """Run ``builder`` into a private temporary folder, write the manifest, rename into place (the
    caller holds the version's build lock). ``origin``: the artifact the payload was linked from."""
    tmp_root = root / TMP
    tmp_root.mkdir(parents=True, exist_ok=True)
    key = f"{kind}-{name}-{version}"
    for stale in tmp_root.glob(f"{key}-*"):  # a dead builder's half-written folder: we hold its lock now
        shutil.rmtree(stale, ignore_errors=True)
    tmp = tmp_root / f"{key}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    started = time.perf_counter()
    try:
        summary = dict(builder(tmp) or {})
        files, sizes = listing(tmp)
        manifest = {
            "kind": kind,
            "name": name,
            "version": version,
            "schema": SCHEMA_VERSION,
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "seconds": round(time.perf_counter() - started, 3),
            "config": config,
            "inputs": {role: art.ref for role, art in sorted(inputs.items())},
            "files": files,
            "sizes": sizes,
            "software": software_versions(software),
            "summary": summary,
            **({"linked_from": origin} if origin else {}),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
        final = root / kind / name / version
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # --force: move the old one aside, then swap
            trash = tmp_root / f"old-{key}-{uuid.uuid4().hex[:8]}"
            final.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        tmp.rename(final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.filename is None:  # a write's error names no file: name the artifact being written
            raise OSError(exc.errno, exc.strerror or str(exc), str(tmp)) from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Artifact.load(final)


def linker(source: Artifact) -> Callable[[Path], dict[str, Any]]:
    """A builder that fills its folder with ``source``'s payload, hard-linked (copied where the
    file system has no links): artifacts are never written after they are made, so the two can
    share files. Its summary is the source's."""
    def build(folder: Path) -> dict[str, Any]:
        for relative in source.manifest.get("files", {}):
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source.path / relative, target)
            except OSError:
                shutil.copy2(source.path / relative, target)
        return dict(source.manifest.get("summary", {}))
    return build
