"""The artifact store: versioned, checksummed, atomically written outputs of every command.

Layout: ``<workspace>/<kind>/<name>/<version>/`` holding the payload files and
``manifest.json``. The version id hashes (kind, resolved config, input version ids, schema
version), so the same inputs and config name the same artifact and a command can reuse it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from retrieval_cli import __version__
from retrieval_cli.errors import ArtifactError, CliError, InputError

SCHEMA_VERSION = 1
KINDS = ("datasets", "negatives", "clusters", "models", "indexes", "runs", "evaluations", "reports")
WORKSPACE_ENV = "RETRIEVAL_CLI_WORKSPACE"
DEFAULT_WORKSPACE = Path("artifacts")
MANIFEST = "manifest.json"
TMP = ".tmp"  # builds in progress (or left by a crash: `artifacts gc` removes those)
LOCKS = ".locks"  # one flock per version id being built
VERIFY_FULL_BYTES = 256 << 20
VERIFY_MODES = ("auto", "none")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SOFTWARE = ("torch", "sentence-transformers", "transformers", "pyserini", "faiss-cpu", "ir-measures")


def check_name(name: str) -> str:
    """Artifact names become folder names: letters, digits, '.', '_' and '-' only."""
    if not _NAME.match(name) or name in (".", ".."):
        raise InputError(
            f"invalid artifact name {name!r}: use letters, digits, '.', '_' and '-' "
            "(start with a letter or digit, at most 128 characters)"
        )
    return name


def version_id(kind: str, config: Mapping[str, Any], inputs: Mapping[str, "Artifact"]) -> str:
    """Hash of what determines an artifact's content; equal ids mean a reusable artifact."""
    payload = {
        "kind": kind,
        "schema": SCHEMA_VERSION,
        "config": config,
        "inputs": {role: art.version for role, art in sorted(inputs.items())},
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, streamed (large corpora and zips never sit in memory)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def sha256_file(path: Path) -> str:
    return "sha256:" + file_digest(path)


def files_fingerprint(named: Iterable[tuple[str, Path]]) -> str:
    """One hash over (name, content hash) pairs: changes when any file's name or bytes change."""
    lines = "".join(f"{name}\t{sha256_file(path)}\n" for name, path in named)
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file outside any artifact (a lock, a cache entry, an export) so readers see the old
    or the new content, never half of one: a temporary file beside it, renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _payload_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            yield path


@lru_cache(maxsize=1)
def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def software_versions(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Versions of the software that made an artifact, read without importing heavy modules."""
    import platform

    versions: dict[str, str] = {"retrieval-cli": __version__, "python": platform.python_version()}
    commit = _git_commit()
    if commit:
        versions["git"] = commit
    for package in _SOFTWARE:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    versions.update(extra or {})
    return versions


@dataclass(frozen=True)
class Artifact:
    """A finished artifact on disk: its folder and its manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest["config"]

    @property
    def summary(self) -> dict[str, Any]:
        return self.manifest.get("summary", {})

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}@{self.version}"

    def file(self, relative: str) -> Path:
        return self.path / relative

    @classmethod
    def load(cls, folder: Path) -> "Artifact":
        manifest_path = folder / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{manifest_path}: unreadable manifest ({exc})") from exc
        for key in ("kind", "name", "version", "config", "inputs", "files"):
            if key not in manifest:
                raise ArtifactError(f"{manifest_path}: manifest has no '{key}'")
        return cls(folder, manifest)


@dataclass
class GcResult:
    """What ``Workspace.gc`` removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    versions: list[str] = field(default_factory=list)
    temporary: list[str] = field(default_factory=list)
    bytes: int = 0


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _remove_tree(path: Path, tmp_root: Path) -> None:
    """Move into the workspace's temporary folder, then delete: a crash midway leaves a stale
    temporary folder (the next gc removes it), never half an artifact."""
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    tmp_root.mkdir(parents=True, exist_ok=True)
    trash = tmp_root / f"gc-{path.name}-{uuid.uuid4().hex[:8]}"
    path.rename(trash)
    shutil.rmtree(trash)


@dataclass
class BuildResult:
    """What a producing command returns: the artifact and whether it was reused from cache."""

    artifact: Artifact
    reused: bool


@dataclass
class Workspace:
    """A folder of artifacts; the only place commands read inputs from and write outputs to."""

    root: Path = field(default_factory=lambda: Path(os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE))
    # Told (one line) when a build waits for another process building the same version.
    on_wait: Callable[[str], None] | None = field(default=None, repr=False, compare=False)
    # Checks on artifacts read (resolved references, cache hits): "auto" recomputes checksums of
    # payloads up to VERIFY_FULL_BYTES and checks file sizes beyond; "none" trusts the disk
    # (--no-verify). `artifacts verify` always checksums everything.
    verify_reads: str = "auto"
    _verified: set = field(default_factory=set, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    # ---- reading -------------------------------------------------------------------------
    def artifacts(self, kind: str | None = None) -> list[Artifact]:
        """Every finished artifact (optionally of one kind), oldest first."""
        found = []
        kinds = [kind] if kind else list(KINDS)
        for k in kinds:
            kind_dir = self.root / k
            if not kind_dir.is_dir():
                continue
            for manifest in kind_dir.glob(f"*/*/{MANIFEST}"):
                folder = manifest.parent
                if folder.is_symlink() or folder.parent.is_symlink():
                    continue  # an artifact is a folder of this workspace, never a link to elsewhere
                try:
                    artifact = Artifact.load(folder)
                except ArtifactError:
                    continue
                # A folder copied or renamed by hand is not the artifact its manifest names.
                if (artifact.kind, artifact.name, artifact.version) == (k, folder.parent.name, folder.name):
                    found.append(artifact)
        return sorted(found, key=lambda a: (a.manifest.get("created", ""), a.kind, a.name))

    def find(self, kind: str, name: str, version: str) -> Artifact | None:
        folder = self.root / kind / name / version
        return Artifact.load(folder) if (folder / MANIFEST).is_file() else None

    def resolve(self, ref: str | Artifact, kind: str | None = None) -> Artifact:
        """Resolve ``kind/name``, ``kind/name@idprefix``, ``name`` (with ``kind``) or a path."""
        if isinstance(ref, Artifact):
            return ref
        as_path = Path(ref)
        if (as_path / MANIFEST).is_file():
            self._inside(as_path, ref)
            artifact = Artifact.load(as_path)
            self._check_kind(artifact, kind, ref)
            return self.checked(artifact)
        text, _, prefix = ref.partition("@")
        parts = text.split("/")
        if len(parts) == 2 and parts[0] in KINDS:
            ref_kind, name = parts
        elif len(parts) == 1 and kind:
            ref_kind, name = kind, parts[0]
        else:
            raise ArtifactError(self._not_found(ref, kind, "expected KIND/NAME[@VERSION] or a path"))
        if not _NAME.match(name):
            raise ArtifactError(self._not_found(ref, kind, "not a valid artifact name"))
        candidates = [
            a for a in self.artifacts(ref_kind) if a.name == name and a.version.startswith(prefix)
        ]
        if not candidates:
            raise ArtifactError(self._not_found(ref, kind))
        if prefix and len({a.version for a in candidates}) > 1:
            versions = ", ".join(a.version for a in candidates)
            raise ArtifactError(f"artifact reference '{ref}' is ambiguous: {versions}")
        artifact = candidates[-1]
        self._inside(artifact.path, ref)
        self._check_kind(artifact, kind, ref)
        return self.checked(artifact)

    def _inside(self, path: Path, ref: str) -> None:
        """References never leave the workspace: not by a path, '..', nor a symlink pointing out."""
        real, root = Path(path).resolve(), self.root.resolve()
        if not real.is_relative_to(root):
            raise ArtifactError(f"artifact reference '{ref}' leads to {real}, outside the workspace {root}")

    @staticmethod
    def _check_kind(artifact: Artifact, kind: str | None, ref: str) -> None:
        if kind and artifact.kind != kind:
            raise ArtifactError(f"'{ref}' is a {artifact.kind} artifact, expected {kind}")

    def _not_found(self, ref: str, kind: str | None, why: str = "no such artifact") -> str:
        known = sorted({f"{a.kind}/{a.name}" for a in self.artifacts()})
        wanted = ref.partition("@")[0]
        if kind and "/" not in wanted:
            wanted = f"{kind}/{wanted}"
        close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.5)
        hint = f"; did you mean: {', '.join(close)}?" if close else ""
        return f"artifact '{ref}' not found in workspace {self.root} ({why}){hint}"

    def inputs_of(self, artifact: Artifact) -> dict[str, Artifact]:
        """The artifacts this one was made from, by role."""
        resolved = {}
        for role, ref in artifact.manifest.get("inputs", {}).items():
            kind_name, _, version = ref.partition("@")
            kind, _, name = kind_name.partition("/")
            found = self.find(kind, name, version)
            if found is None:
                raise ArtifactError(f"{artifact.ref}: input '{ref}' ({role}) is missing from the workspace")
            resolved[role] = found
        return resolved

    def verify(self, artifact: Artifact, sizes_only: bool = False) -> list[str]:
        """Recompute payload checksums (or, with ``sizes_only``, compare sizes where the manifest
        has them); returns the problems found (empty when intact)."""
        problems = []
        listed = artifact.manifest["files"]
        sizes = artifact.manifest.get("sizes", {})
        for relative, expected in sorted(listed.items()):
            path = artifact.path / relative
            if not path.is_file():
                problems.append(f"{relative}: missing")
            elif relative in sizes and path.stat().st_size != sizes[relative]:
                problems.append(f"{relative}: size changed ({path.stat().st_size} bytes, written with {sizes[relative]})")
            elif not (sizes_only and relative in sizes) and sha256_file(path) != expected:
                problems.append(f"{relative}: checksum mismatch")
        for path in _payload_files(artifact.path):
            relative = path.relative_to(artifact.path).as_posix()
            if relative not in listed:
                problems.append(f"{relative}: not listed in the manifest")
        return problems

    def checked(self, artifact: Artifact) -> Artifact:
        """The artifact, once its payload matches its manifest (per ``verify_reads``, once per
        process); a changed, truncated or missing file refuses with the files named."""
        if self.verify_reads == "none" or artifact.path in self._verified:
            return artifact
        if self.verify_reads not in VERIFY_MODES:
            raise ValueError(f"verify_reads must be one of {VERIFY_MODES}")
        total = sum(artifact.manifest.get("sizes", {}).values())
        problems = self.verify(artifact, sizes_only=total > VERIFY_FULL_BYTES)
        if problems:
            raise ArtifactError(
                f"{artifact.ref} ({artifact.path}) failed verification: {'; '.join(problems)}. "
                "Rebuild it with --force, or read it anyway with --no-verify"
            )
        self._verified.add(artifact.path)
        return artifact

    # ---- writing -------------------------------------------------------------------------
    @staticmethod
    def version_of(kind: str, config: Mapping[str, Any], inputs: Mapping[str, Artifact]) -> str:
        """The version id ``build`` gives (kind, config, inputs), known before building.

        Steps that keep state across interrupted attempts (training checkpoints) key it by this.
        """
        return version_id(kind, json.loads(json.dumps(config, default=str)), inputs)

    def build(
        self,
        kind: str,
        name: str,
        config: Mapping[str, Any],
        inputs: Mapping[str, Artifact],
        builder: Callable[[Path], Mapping[str, Any] | None],
        *,
        force: bool = False,
        software: Mapping[str, str] | None = None,
    ) -> BuildResult:
        """Return the artifact for (kind, config, inputs), building it with ``builder`` if needed.

        ``builder(folder)`` writes the payload into a fresh temporary folder and returns summary
        statistics. The folder is renamed into place only once the payload and manifest are
        complete, so an interrupted build never leaves an artifact that looks finished.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown artifact kind {kind!r}")
        check_name(name)
        config = json.loads(json.dumps(config, default=str))  # what the manifest will hold
        version = self.version_of(kind, config, inputs)
        existing = self.find(kind, name, version)
        if existing is not None and not force:
            return BuildResult(self.checked(existing), reused=True)
        # One builder per version id: a second identical command waits here, then reuses.
        with self._build_lock(f"{kind}-{name}-{version}"):
            existing = self.find(kind, name, version)
            if existing is not None and not force:
                return BuildResult(self.checked(existing), reused=True)
            return self._build(kind, name, version, config, inputs, builder, software)

    @contextmanager
    def _build_lock(self, key: str) -> Iterator[None]:
        """An exclusive lock on ``<ws>/.locks/KEY.lock``. The kernel drops an flock when its holder
        dies, even by kill -9, so a crashed build never leaves a lock that blocks the next one."""
        import fcntl

        folder = self.root / LOCKS
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
                if self.on_wait is not None:
                    self.on_wait(f"waiting for {holder}, which is building {key}")
                fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
            handle.flush()
            try:
                yield
            finally:
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle, fcntl.LOCK_UN)

    def is_locked(self, key: str) -> bool:
        """Whether a live process holds the build lock for KEY (kind-name-version)."""
        import fcntl

        path = self.root / LOCKS / f"{key}.lock"
        if not path.is_file():
            return False
        with open(path, "a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    def _build(
        self,
        kind: str,
        name: str,
        version: str,
        config: dict[str, Any],
        inputs: Mapping[str, Artifact],
        builder: Callable[[Path], Mapping[str, Any] | None],
        software: Mapping[str, str] | None,
    ) -> BuildResult:
        tmp_root = self.root / TMP
        tmp_root.mkdir(parents=True, exist_ok=True)
        tmp = tmp_root / f"{kind}-{name}-{version}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        started = time.perf_counter()
        try:
            summary = dict(builder(tmp) or {})
            payload = [(p.relative_to(tmp).as_posix(), p) for p in _payload_files(tmp)]
            manifest = {
                "kind": kind,
                "name": name,
                "version": version,
                "schema": SCHEMA_VERSION,
                "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "seconds": round(time.perf_counter() - started, 3),
                "config": config,
                "inputs": {role: art.ref for role, art in sorted(inputs.items())},
                "files": {rel: sha256_file(p) for rel, p in payload},
                "sizes": {rel: p.stat().st_size for rel, p in payload},
                "software": software_versions(software),
                "summary": summary,
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
            final = self.root / kind / name / version
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # --force: move the old one aside, then swap
                trash = tmp_root / f"old-{kind}-{name}-{version}-{uuid.uuid4().hex[:8]}"
                final.rename(trash)
                shutil.rmtree(trash, ignore_errors=True)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return BuildResult(Artifact.load(final), reused=False)

    def gc(self, dry_run: bool = False) -> GcResult:
        """Remove artifact versions nothing refers to, and temporary folders no live build owns.

        Kept: the latest version of every kind/name, every version a pipeline lock names, and
        everything those were made from. A temporary folder is stale when no process holds its
        build lock (a crash, kill -9); one being built is left alone."""
        everything = self.artifacts()
        latest: dict[tuple[str, str], Artifact] = {}
        for artifact in everything:  # oldest first, so the last one seen is the latest
            latest[(artifact.kind, artifact.name)] = artifact
        roots = list(latest.values())
        for lock in sorted((self.root / "pipelines").glob("*/*.json")):
            try:
                roots.append(self.resolve(json.loads(lock.read_text(encoding="utf-8"))["artifact"]))
            except (ValueError, KeyError, TypeError, OSError, CliError):
                continue  # a lock naming a removed artifact protects nothing
        keep: set[Path] = set()
        todo = roots
        while todo:
            artifact = todo.pop()
            if artifact.path in keep:
                continue
            keep.add(artifact.path)
            for ref in artifact.manifest.get("inputs", {}).values():
                kind_name, _, version = ref.partition("@")
                kind, _, name = kind_name.partition("/")
                found = self.find(kind, name, version)
                if found is not None:
                    todo.append(found)
        result = GcResult(dry_run=dry_run)
        for artifact in everything:
            if artifact.path not in keep:
                result.versions.append(artifact.ref)
                result.bytes += _size(artifact.path)
                if not dry_run:
                    _remove_tree(artifact.path, self.root / TMP)
        tmp_root = self.root / TMP
        for tmp in sorted(tmp_root.iterdir()) if tmp_root.is_dir() else []:
            key = tmp.name.rsplit("-", 1)[0].removeprefix("old-").removeprefix("gc-")
            if self.is_locked(key):
                continue
            result.temporary.append(tmp.name)
            result.bytes += _size(tmp)
            if not dry_run:
                shutil.rmtree(tmp) if tmp.is_dir() and not tmp.is_symlink() else tmp.unlink()
        return result

    def lineage(self, artifact: Artifact) -> dict[str, Any]:
        """The tree of inputs behind an artifact: {ref, config, inputs: {role: subtree}}."""
        return {
            "ref": artifact.ref,
            "config": artifact.config,
            "inputs": {
                role: self.lineage(parent) for role, parent in self.inputs_of(artifact).items()
            },
        }
