"""The workspace: a folder of artifacts, the only place commands read inputs from and write to.

Reading resolves references (``kind/name``, ``kind/name@prefix``, a path) and checks what it
reads against its manifest; building (``store.build``) writes one artifact per version id under a
lock; the cache (``store.cache``) and gc (``store.gc``) live beside them in the same folder.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from retrieval_cli.errors import ArtifactError
from retrieval_cli.store import build as building
from retrieval_cli.store.artifact import (
    KINDS,
    MANIFEST,
    VERIFY_FULL_BYTES,
    Artifact,
    BuildResult,
    check_name,
    valid_name,
    verify_files,
    version_id,
)
from retrieval_cli.store.build import TMP  # noqa: F401  (where a workspace keeps builds in progress)
from retrieval_cli.store.cache import CACHE, Cache
from retrieval_cli.store.versioning import Versioned

WORKSPACE_ENV = "RETRIEVAL_CLI_WORKSPACE"
DEFAULT_WORKSPACE = Path("artifacts")
VERIFY_MODES = ("auto", "none")


# The kinds whose bytes are a function of their version (config and inputs' versions, no name
# inside), made by long computations: one made under another name is linked, not made again.
# Not datasets or runs (their version names a source, which can hold other bytes), nor
# evaluations and reports (cheap, and they carry the names of what they measured).
LINKED = ("negatives", "clusters", "models", "indexes")


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
    # Reuse only: a build that finds no finished artifact raises NeedsBuild instead of building
    # (the pipeline asks a done step in its own process, and builds in a child: pipeline.isolation).
    reuse_only: bool = field(default=False, compare=False)
    _verified: set = field(default_factory=set, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if self.verify_reads not in VERIFY_MODES:
            raise ValueError(f"verify_reads must be one of {VERIFY_MODES}")

    # ---- reading -------------------------------------------------------------------------
    def artifacts(self, kind: str | None = None) -> list[Artifact]:
        """Every finished artifact (optionally of one kind), oldest first."""
        return self.scan(kind)[0]

    def damaged(self, kind: str | None = None) -> list[tuple[Path, str]]:
        """Version folders whose manifest cannot be read (truncated, not JSON, missing fields), with
        why: listed as damaged, never taken for an artifact; ``--force`` rebuilds one in place and
        ``artifacts gc --damaged`` removes them."""
        return self.scan(kind)[1]

    def scan(self, kind: str | None = None) -> tuple[list[Artifact], list[tuple[Path, str]]]:
        """One pass over the version folders: the finished artifacts (oldest first) and the damaged
        folders (with why), for callers that need both (``artifacts list``, gc)."""
        found, damaged = [], []
        for folder in self._version_folders(kind):
            try:
                artifact = Artifact.load(folder)
            except ArtifactError as exc:
                damaged.append((folder, str(exc)))
                continue
            # A folder copied or renamed by hand is not the artifact its manifest names.
            if (artifact.kind, artifact.name, artifact.version) == (folder.parent.parent.name, folder.parent.name, folder.name):
                found.append(artifact)
        return sorted(found, key=lambda a: (a.manifest.get("created", ""), a.kind, a.name)), damaged

    def _damaged_named(self, kind: str, name: str, prefix: str = "") -> tuple[Path, str] | None:
        for folder, why in self.damaged(kind):
            if folder.parent.name == name and folder.name.startswith(prefix):
                return folder, why
        return None

    def _version_folders(self, kind: str | None = None) -> Iterator[Path]:
        for k in [kind] if kind else list(KINDS):
            kind_dir = self.root / k
            if not kind_dir.is_dir():
                continue
            for manifest in kind_dir.glob(f"*/*/{MANIFEST}"):
                folder = manifest.parent
                if not (folder.is_symlink() or folder.parent.is_symlink()):
                    yield folder  # an artifact is a folder of this workspace, never a link to elsewhere

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
        if not valid_name(name):
            raise ArtifactError(self._not_found(ref, kind, "not a valid artifact name"))
        candidates = [
            a for a in self.artifacts(ref_kind) if a.name == name and a.version.startswith(prefix)
        ]
        if not candidates:
            broken = self._damaged_named(ref_kind, name, prefix)
            if broken is not None:
                raise ArtifactError(
                    f"artifact '{ref}' is damaged: {broken[1]}. Rebuild it with --force, or remove it with "
                    "`retrieval-cli artifacts gc --damaged`"
                )
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
        if not self.root.is_dir():
            return (f"artifact '{ref}' not found: the workspace folder {self.root} does not exist "
                    "(give --workspace or set RETRIEVAL_CLI_WORKSPACE; a command that writes an artifact creates it)")
        known = sorted({f"{a.kind}/{a.name}" for a in self.artifacts()})
        wanted = ref.partition("@")[0]
        if kind and "/" not in wanted:
            wanted = f"{kind}/{wanted}"
        close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.5)
        hint = f"; did you mean: {', '.join(close)}?" if close else ""
        return f"artifact '{ref}' not found in workspace {self.root} ({why}){hint}"

    def find_ref(self, ref: str) -> Artifact | None:
        """The artifact a manifest's exact ``kind/name@version`` names, if present and readable."""
        kind_name, _, version = ref.partition("@")
        kind, _, name = kind_name.partition("/")
        try:
            return self.find(kind, name, version)
        except ArtifactError:
            return None  # damaged: listed by ``damaged``, never read

    def inputs_of(self, artifact: Artifact) -> dict[str, Artifact]:
        """The artifacts this one was made from, by role."""
        resolved = {}
        for role, ref in artifact.manifest.get("inputs", {}).items():
            found = self.find_ref(ref)
            if found is None:
                raise ArtifactError(f"{artifact.ref}: input '{ref}' ({role}) is {self._gone(ref)}")
            resolved[role] = found
        return resolved

    def verify(self, artifact: Artifact, sizes_only: bool = False) -> list[str]:
        """Recompute payload checksums (or, with ``sizes_only``, compare sizes where the manifest
        has them); returns the problems found (empty when intact)."""
        return verify_files(artifact.path, artifact.manifest["files"], artifact.manifest.get("sizes", {}), sizes_only=sizes_only)

    def checked(self, artifact: Artifact) -> Artifact:
        """The artifact, once its payload matches its manifest (per ``verify_reads``, once per
        process); a changed, truncated or missing file refuses with the files named."""
        if self.verify_reads == "none" or artifact.path in self._verified:
            return artifact
        total = sum(artifact.manifest.get("sizes", {}).values())
        problems = self.verify(artifact, sizes_only=total > VERIFY_FULL_BYTES)
        if problems:
            raise ArtifactError(
                f"{artifact.ref} ({artifact.path}) failed verification: {'; '.join(problems)}. "
                "Rebuild it with --force, or read it anyway with --no-verify"
            )
        self._verified.add(artifact.path)
        return artifact

    @property
    def verified(self) -> frozenset[Path]:
        """The artifacts ``checked`` has verified in this run (one verification per run, even when
        a run's steps are processes of their own: they hand this on, and back)."""
        return frozenset(self._verified)

    def trust(self, paths: Iterable[Path]) -> None:
        """Take artifacts another process of this run verified as verified here."""
        self._verified.update(Path(p) for p in paths)

    def _gone(self, ref: str) -> str:
        """Why an exact reference does not load: its folder is there but damaged, or it is missing."""
        return "damaged (unreadable manifest)" if (self.root / ref.replace("@", "/")).is_dir() else "missing from the workspace"

    def lineage(self, artifact: Artifact) -> dict[str, Any]:
        """The tree of inputs behind an artifact: {ref, config, inputs: {role: subtree}}; an input
        that is gone or damaged is a leaf saying so ({ref, missing: why})."""
        inputs: dict[str, Any] = {}
        for role, ref in artifact.manifest.get("inputs", {}).items():
            parent = self.find_ref(ref)
            if parent is None:
                inputs[role] = {"ref": ref, "missing": self._gone(ref), "inputs": {}}
            else:
                inputs[role] = self.lineage(parent)
        return {"ref": artifact.ref, "config": artifact.config, "inputs": inputs}

    # ---- the cache -----------------------------------------------------------------------
    def cache(self, namespace: str) -> Cache:
        """A namespace of the workspace cache (``<ws>/.cache/<namespace>``): the one place its layout is spelt."""
        return Cache(self.root / CACHE / namespace, self.verify_reads)

    # ---- writing (store.build) -----------------------------------------------------------
    @staticmethod
    def version_of(
        kind: str, config: Versioned | Mapping[str, Any], inputs: Mapping[str, Artifact],
        resolved: Mapping[str, Any] | None = None,
    ) -> str:
        """The version id ``build`` gives (kind, config, inputs), known before building."""
        return building.version_of(kind, config, inputs, resolved)

    def build(
        self,
        kind: str,
        name: str,
        config: Versioned | Mapping[str, Any],
        inputs: Mapping[str, Artifact],
        builder: Callable[[Path], Mapping[str, Any] | None],
        *,
        resolved: Mapping[str, Any] | None = None,
        force: bool = False,
        software: Mapping[str, str] | None = None,
        link: bool = True,
    ) -> BuildResult:
        """Return the artifact for (kind, config, inputs), building it with ``builder`` if needed.
        The same version under another name is linked, not built again (``link``: False where
        the build must run whatever exists, as every rank of a torchrun training trains).

        The version id hashes the config's versioned fields with what the command ``resolved``
        (``store.versioning``). ``builder(folder)`` writes the payload into a fresh temporary
        folder and returns summary statistics; the folder is renamed into place only once the
        payload and manifest are complete, so an interrupted build never looks finished.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown artifact kind {kind!r}")
        check_name(name)
        record = building.record(config, resolved)
        version = version_id(kind, record, inputs)
        existing = self.existing(kind, name, version, force)
        if existing is not None and not force:
            return BuildResult(self.checked(existing), reused=True)
        if self.reuse_only:
            raise building.NeedsBuild(f"{kind}/{name}@{version}")
        # One builder per version id: a second identical command waits here, then reuses.
        with building.build_lock(self.root, f"{kind}-{name}-{version}", self.on_wait, [a.ref for a in inputs.values()]):
            existing = self.existing(kind, name, version, force)
            if existing is not None and not force:
                return BuildResult(self.checked(existing), reused=True)
            gone = [a.ref for a in inputs.values() if not (a.path / MANIFEST).is_file()]
            if gone:  # removed (artifacts gc) between resolving it and this build's lock
                raise ArtifactError(f"input {gone[0]} of {kind}/{name} was removed before the build started; make it again")
            twin = None if force or not link or kind not in LINKED else self.same_version(kind, version)
            if twin is not None:  # the content is the same whatever its name: link it, build nothing
                artifact = building.write(self.root, kind, name, version, record, inputs, building.linker(twin), software, origin=twin.ref)
                return BuildResult(artifact, reused=True)
            artifact = building.write(self.root, kind, name, version, record, inputs, builder, software)
        return BuildResult(artifact, reused=False)

    def same_version(self, kind: str, version: str) -> Artifact | None:
        """A finished, intact artifact of this kind and version under any name: a version id hashes
        everything that decides the content (kind, config, inputs' versions) and no name, so a
        recipe that renames what it makes (a seed added to a model's name) reuses what it made."""
        for manifest in sorted((self.root / kind).glob(f"*/{version}/{MANIFEST}")):
            try:
                twin = Artifact.load(manifest.parent)
            except ArtifactError:
                continue
            if twin.version == version and not self.verify(twin, sizes_only=True):
                return twin
        return None

    def existing(self, kind: str, name: str, version: str, force: bool = False) -> Artifact | None:
        """The finished artifact of this version, if any. A damaged one (unreadable manifest) is
        rebuilt in place with ``force``, else refused with the way out."""
        try:
            return self.find(kind, name, version)
        except ArtifactError as exc:
            if force:
                return None
            raise ArtifactError(f"{kind}/{name}@{version} is damaged ({exc}); rebuild it with --force") from None

    def is_locked(self, key: str) -> bool:
        """Whether a live process holds the build lock for KEY (kind-name-version)."""
        return building.is_locked(self.root, key)
