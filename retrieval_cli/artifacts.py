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
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from retrieval_cli import __version__
from retrieval_cli.errors import ArtifactError, InputError

SCHEMA_VERSION = 1
KINDS = ("datasets", "negatives", "clusters", "models", "indexes", "runs", "evaluations", "reports")
WORKSPACE_ENV = "RETRIEVAL_CLI_WORKSPACE"
DEFAULT_WORKSPACE = Path("artifacts")
MANIFEST = "manifest.json"
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
class BuildResult:
    """What a producing command returns: the artifact and whether it was reused from cache."""

    artifact: Artifact
    reused: bool


@dataclass
class Workspace:
    """A folder of artifacts; the only place commands read inputs from and write outputs to."""

    root: Path = field(default_factory=lambda: Path(os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE))

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
                try:
                    found.append(Artifact.load(manifest.parent))
                except ArtifactError:
                    continue
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
            artifact = Artifact.load(as_path)
            self._check_kind(artifact, kind, ref)
            return artifact
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
        self._check_kind(artifact, kind, ref)
        return artifact

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

    def verify(self, artifact: Artifact) -> list[str]:
        """Recompute payload checksums; returns the problems found (empty when intact)."""
        problems = []
        listed = artifact.manifest["files"]
        for relative, expected in sorted(listed.items()):
            path = artifact.path / relative
            if not path.is_file():
                problems.append(f"{relative}: missing")
            elif sha256_file(path) != expected:
                problems.append(f"{relative}: checksum mismatch")
        for path in _payload_files(artifact.path):
            relative = path.relative_to(artifact.path).as_posix()
            if relative not in listed:
                problems.append(f"{relative}: not listed in the manifest")
        return problems

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
            return BuildResult(existing, reused=True)

        tmp_root = self.root / ".tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        tmp = tmp_root / f"{kind}-{name}-{version}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        started = time.perf_counter()
        try:
            summary = dict(builder(tmp) or {})
            manifest = {
                "kind": kind,
                "name": name,
                "version": version,
                "schema": SCHEMA_VERSION,
                "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "seconds": round(time.perf_counter() - started, 3),
                "config": config,
                "inputs": {role: art.ref for role, art in sorted(inputs.items())},
                "files": {
                    p.relative_to(tmp).as_posix(): sha256_file(p) for p in _payload_files(tmp)
                },
                "software": software_versions(software),
                "summary": summary,
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
            final = self.root / kind / name / version
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # --force: move the old one aside, then swap
                trash = tmp_root / f"old-{version}-{uuid.uuid4().hex[:8]}"
                final.rename(trash)
                shutil.rmtree(trash, ignore_errors=True)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return BuildResult(Artifact.load(final), reused=False)

    def lineage(self, artifact: Artifact) -> dict[str, Any]:
        """The tree of inputs behind an artifact: {ref, config, inputs: {role: subtree}}."""
        return {
            "ref": artifact.ref,
            "config": artifact.config,
            "inputs": {
                role: self.lineage(parent) for role, parent in self.inputs_of(artifact).items()
            },
        }
