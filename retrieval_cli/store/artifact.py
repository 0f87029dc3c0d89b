"""What an artifact is: a folder of payload files and the manifest naming them, versioned by a hash.

Layout: ``<workspace>/<kind>/<name>/<version>/`` holding the payload files and ``manifest.json``.
The version id hashes (kind, resolved config, input version ids, schema version), so the same
inputs and config name the same artifact and a command can reuse it.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from retrieval_cli import __version__
from retrieval_cli.errors import ArtifactError, InputError

SCHEMA_VERSION = 1
KINDS = ("datasets", "negatives", "clusters", "models", "indexes", "runs", "evaluations", "reports")
MANIFEST = "manifest.json"
# \Z, not $: '$' also matches before a final newline, which would let 'name\n' through.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_SOFTWARE = ("torch", "sentence-transformers", "transformers", "pyserini", "faiss-cpu", "ir-measures")


def check_name(name: str) -> str:
    """Artifact names become folder names: letters, digits, '.', '_' and '-' only."""
    if not valid_name(name):
        raise InputError(
            f"invalid artifact name {name!r}: use letters, digits, '.', '_' and '-' "
            "(start with a letter or digit, at most 128 characters)"
        )
    return name


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name)) and name not in (".", "..")


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


def payload_files(root: Path, record: str = MANIFEST) -> Iterator[Path]:
    """A folder's files other than its record (an artifact's manifest), in a stable order."""
    for path in sorted(root.rglob("*")):
        if (path.is_file() or path.is_symlink()) and path.relative_to(root).as_posix() != record:
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


VERIFY_FULL_BYTES = 256 << 20  # above this many payload bytes, reads check sizes, not checksums


def verify_files(
    folder: Path, files: Mapping[str, str], sizes: Mapping[str, int], *, sizes_only: bool = False, record: str = MANIFEST,
) -> list[str]:
    """Problems of a folder against its listing (relative path -> checksum, and sizes): missing,
    resized, changed or unlisted files, and links (a payload is never read through a link, which
    could point outside the workspace). Empty when intact; artifacts and cache entries share it."""
    problems = []
    for relative, expected in sorted(files.items()):
        path = folder / relative
        if path.is_symlink():
            problems.append(f"{relative}: a link, not a file")
        elif not path.is_file():
            problems.append(f"{relative}: missing")
        elif relative in sizes and path.stat().st_size != sizes[relative]:
            problems.append(f"{relative}: size changed ({path.stat().st_size} bytes, written with {sizes[relative]})")
        elif not (sizes_only and relative in sizes) and sha256_file(path) != expected:
            problems.append(f"{relative}: checksum mismatch")
    for path in payload_files(folder, record):
        relative = path.relative_to(folder).as_posix()
        if relative not in files:
            problems.append(f"{relative}: not listed in the {'manifest' if record == MANIFEST else 'cache entry'}")
    return problems


def listing(folder: Path, record: str = MANIFEST) -> tuple[dict[str, str], dict[str, int]]:
    """(checksums, sizes) of a folder's payload files, as a manifest or cache entry records them."""
    payload = [(p.relative_to(folder).as_posix(), p) for p in payload_files(folder, record)]
    return {rel: sha256_file(p) for rel, p in payload}, {rel: p.stat().st_size for rel, p in payload}
