from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval_cli.errors import ArtifactError, InputError
from retrieval_cli.store import Workspace
from retrieval_cli.store.artifact import version_id


def _writer(text: str):
    def build(folder: Path) -> dict:
        (folder / "payload.txt").write_text(text)
        (folder / "sub").mkdir()
        (folder / "sub" / "part.bin").write_bytes(b"\x00\x01")
        return {"chars": len(text)}

    return build


def test_same_config_reuses_and_force_rebuilds(ws: Workspace) -> None:
    calls = []

    def build(folder: Path) -> dict:
        calls.append(folder)
        return _writer("hello")(folder)

    first = ws.build("datasets", "toy", {"a": 1}, {}, build)
    again = ws.build("datasets", "toy", {"a": 1}, {}, build)
    assert not first.reused and again.reused and len(calls) == 1
    assert again.artifact.version == first.artifact.version
    forced = ws.build("datasets", "toy", {"a": 1}, {}, build, force=True)
    assert not forced.reused and len(calls) == 2 and forced.artifact.version == first.artifact.version
    other = ws.build("datasets", "toy", {"a": 2}, {}, build)
    assert other.artifact.version != first.artifact.version


def test_one_version_under_a_new_name_is_linked_not_rebuilt(ws: Workspace) -> None:
    calls = []

    def build(folder: Path) -> dict:
        calls.append(folder)
        return _writer("hello")(folder)

    first = ws.build("models", "run", {"a": 1}, {}, build).artifact
    renamed = ws.build("models", "run-s13", {"a": 1}, {}, build)
    assert renamed.reused and len(calls) == 1 and renamed.artifact.version == first.version
    made = renamed.artifact
    assert made.name == "run-s13" and made.manifest["linked_from"] == first.ref and made.summary == {"chars": 5}
    assert (made.path / "sub" / "part.bin").stat().st_ino == (first.path / "sub" / "part.bin").stat().st_ino  # shared, not copied
    assert not ws.verify(made) and ws.resolve("models/run-s13").version == first.version
    # A twin whose payload is damaged is not copied: the new name is built.
    (first.path / "payload.txt").write_text("hello, changed")
    (made.path / "payload.txt").unlink()  # (the same inode: unlink the link, keep the damaged original)
    ws.build("models", "run-s14", {"a": 1}, {}, build)
    assert len(calls) == 2


def test_manifest_contents(ws: Workspace) -> None:
    art = ws.build("datasets", "toy", {"a": 1}, {}, _writer("hello")).artifact
    manifest = json.loads((art.path / "manifest.json").read_text())
    assert manifest["kind"] == "datasets" and manifest["name"] == "toy" and manifest["schema"] == 1
    assert set(manifest["files"]) == {"payload.txt", "sub/part.bin"}
    assert manifest["files"]["payload.txt"].startswith("sha256:")
    assert manifest["summary"] == {"chars": 5}
    for key in ("retrieval-cli", "python", "torch", "sentence-transformers", "pyserini", "ir-measures"):
        assert key in manifest["software"]
    assert manifest["seconds"] >= 0 and manifest["created"].endswith("Z")


def test_version_depends_on_inputs(ws: Workspace) -> None:
    parent_a = ws.build("datasets", "a", {"x": 1}, {}, _writer("a")).artifact
    parent_b = ws.build("datasets", "a", {"x": 2}, {}, _writer("b")).artifact
    assert version_id("indexes", {"k": 1}, {"dataset": parent_a}) != version_id("indexes", {"k": 1}, {"dataset": parent_b})
    child = ws.build("indexes", "idx", {"k": 1}, {"dataset": parent_a}, _writer("i")).artifact
    assert child.manifest["inputs"] == {"dataset": parent_a.ref}
    assert ws.inputs_of(child)["dataset"].version == parent_a.version
    assert ws.lineage(child)["inputs"]["dataset"]["ref"] == parent_a.ref


def test_failed_build_leaves_nothing(ws: Workspace) -> None:
    def broken(folder: Path) -> dict:
        (folder / "half.txt").write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        ws.build("datasets", "toy", {"a": 1}, {}, broken)
    assert ws.artifacts() == []
    assert list((ws.root / ".tmp").iterdir()) == []
    assert not (ws.root / "datasets" / "toy").exists() or not any((ws.root / "datasets" / "toy").iterdir())


def test_resolve_references(ws: Workspace) -> None:
    old = ws.build("datasets", "toy", {"a": 1}, {}, _writer("1")).artifact
    new = ws.build("datasets", "toy", {"a": 2}, {}, _writer("2")).artifact
    assert ws.resolve("datasets/toy").version == new.version  # latest
    assert ws.resolve(f"datasets/toy@{old.version[:6]}").version == old.version
    assert ws.resolve("toy", kind="datasets").version == new.version
    assert ws.resolve(str(old.path)).version == old.version
    with pytest.raises(ArtifactError, match="is a datasets artifact, expected indexes"):
        ws.resolve("datasets/toy", kind="indexes")
    with pytest.raises(ArtifactError, match="did you mean: datasets/toy"):
        ws.resolve("datasets/tyo")
    with pytest.raises(ArtifactError, match="not found"):
        ws.resolve("datasets/toy@ffffffffff")


def test_ambiguous_prefix(ws: Workspace) -> None:
    versions = set()
    for i in range(40):  # enough versions that two share a first hex digit
        versions.add(ws.build("datasets", "toy", {"a": i}, {}, _writer(str(i))).artifact.version)
    first_digits = [v[0] for v in versions]
    shared = next(d for d in first_digits if first_digits.count(d) > 1)
    with pytest.raises(ArtifactError, match="ambiguous"):
        ws.resolve(f"datasets/toy@{shared}")


def test_verify_detects_tampering(ws: Workspace) -> None:
    art = ws.build("datasets", "toy", {"a": 1}, {}, _writer("hello")).artifact
    assert ws.verify(art) == []
    (art.path / "payload.txt").write_text("HELLO")
    (art.path / "extra.txt").write_text("x")
    (art.path / "sub" / "part.bin").unlink()
    problems = ws.verify(art)
    assert "payload.txt: checksum mismatch" in problems
    assert "sub/part.bin: missing" in problems
    assert "extra.txt: not listed in the manifest" in problems


@pytest.mark.parametrize("bad", ["../escape", "a/b", "", ".hidden", "x" * 200])
def test_names_cannot_escape(ws: Workspace, bad: str) -> None:
    with pytest.raises(InputError):
        ws.build("datasets", bad, {}, {}, _writer("x"))
