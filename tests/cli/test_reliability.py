"""Reliability of the workspace: one builder per version, stale locks, integrity on read, refs
that stay inside the workspace, resource errors, gc. Each test fails without its protection."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from retrieval_cli import data as datasets
from retrieval_cli import pipeline
from retrieval_cli.cli import app
from retrieval_cli.data import artifacts as data_artifacts
from retrieval_cli.data import synthetic
from retrieval_cli.errors import ArtifactError, InputError
from retrieval_cli.store import Workspace, collect
from retrieval_cli.store.workspace import TMP


def _slow_builder(calls: list[int], seconds: float = 0.5):  # noqa: ANN202
    def builder(folder: Path) -> dict:
        calls.append(1)
        time.sleep(seconds)
        (folder / "payload.txt").write_text("x" * 100, encoding="utf-8")
        return {"n": 1}

    return builder


def test_two_identical_builds_at_once_make_one_artifact(tmp_path: Path) -> None:
    calls: list[int] = []
    results = []
    waits: list[str] = []
    # flock locks belong to open files, so two threads conflict exactly as two processes do.
    workers = [
        threading.Thread(target=lambda: results.append(
            Workspace(tmp_path, on_wait=waits.append).build("runs", "same", {"a": 1}, {}, _slow_builder(calls))))
        for _ in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(calls) == 1  # the second waited, then reused
    assert sorted(r.reused for r in results) == [False, True]
    assert results[0].artifact.path == results[1].artifact.path
    assert len(waits) == 1 and waits[0].startswith(f"waiting for pid {os.getpid()}")
    assert [a.ref for a in Workspace(tmp_path).artifacts()] == [results[0].artifact.ref]


def test_two_different_builds_at_once_do_not_block_each_other(tmp_path: Path) -> None:
    calls: list[int] = []
    waits: list[str] = []
    workers = [
        threading.Thread(target=Workspace(tmp_path, on_wait=waits.append).build, args=("runs", "r", {"a": i}, {}, _slow_builder(calls)))
        for i in range(2)
    ]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(calls) == 2 and not waits and time.perf_counter() - started < 0.95
    assert all(not Workspace(tmp_path).verify(a) for a in Workspace(tmp_path).artifacts())


_HOLDER = """
import sys, time
from pathlib import Path
from retrieval_cli.store import Workspace
def builder(folder):
    (folder / "half.txt").write_text("half")
    print("building", flush=True)
    time.sleep(600)
Workspace(Path(sys.argv[1])).build("runs", "crash", {"a": 1}, {}, builder)
"""


def test_a_build_killed_holding_its_lock_leaves_no_artifact_and_no_stale_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "building"
        ws = Workspace(tmp_path)
        key = next((tmp_path / TMP).iterdir()).name.rsplit("-", 1)[0]
        assert ws.is_locked(key)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert ws.artifacts() == []  # the half-written folder is not an artifact
    assert not ws.is_locked(key)  # the kernel dropped the lock with the process
    calls: list[int] = []
    result = ws.build("runs", "crash", {"a": 1}, {}, _slow_builder(calls, 0))
    assert not result.reused and calls == [1] and (result.artifact.path / "payload.txt").is_file()
    assert not [p for p in (tmp_path / TMP).iterdir() if p.name.startswith(key)]  # the rebuild removed the dead one's folder
    gone = collect(ws)
    assert gone.versions == [] and gone.temporary == [] and not any((tmp_path / TMP).iterdir())


def test_tampered_artifact_refuses_to_load_and_no_verify_reads_it(tmp_path: Path, runner) -> None:  # noqa: ANN001
    ws = Workspace(tmp_path)
    art = datasets.save(ws, synthetic.generate(synthetic.SynthConfig(documents=30, test_queries=3, train_queries=0)), "d", {"s": 1}).artifact
    qrels = art.file("qrels/test.tsv")
    data = qrels.read_bytes()
    assert b"\t2\n" in data
    qrels.write_bytes(data.replace(b"\t2\n", b"\t0\n", 1))  # a judgment flipped, same size
    with pytest.raises(ArtifactError, match=r"failed verification: qrels/test.tsv: checksum mismatch\. Rebuild it with --force"):
        Workspace(tmp_path).resolve("datasets/d")
    with pytest.raises(ArtifactError, match="checksum mismatch"):  # a cache hit is checked too
        datasets.save(Workspace(tmp_path), synthetic.generate(synthetic.SynthConfig(documents=30, test_queries=3, train_queries=0)), "d", {"s": 1})
    assert Workspace(tmp_path, verify_reads="none").resolve("datasets/d").path == art.path
    qrels.write_bytes(data[:-3])  # truncated: found by size alone, as for artifacts past the checksum limit
    assert Workspace(tmp_path).verify(art, sizes_only=True) == [f"qrels/test.tsv: size changed ({len(data) - 3} bytes, written with {len(data)})"]
    result = runner.invoke(app, ["index", "d", "-w", str(tmp_path)])
    assert result.exit_code == 2 and "failed verification" in result.output
    result = runner.invoke(app, ["--no-verify", "artifacts", "show", "datasets/d", "-w", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_references_cannot_leave_the_workspace(tmp_path: Path) -> None:
    outside = Workspace(tmp_path / "other")
    art = outside.build("runs", "r", {"a": 1}, {}, _slow_builder([], 0)).artifact
    ws = Workspace(tmp_path / "ws")
    ws.build("runs", "mine", {"a": 1}, {}, _slow_builder([], 0))
    with pytest.raises(ArtifactError, match="outside the workspace"):
        ws.resolve(str(art.path))
    with pytest.raises(ArtifactError, match="outside the workspace"):
        ws.resolve(f"{ws.root}/runs/mine/../../../other/runs/r/{art.version}")
    (ws.root / "runs" / "r").mkdir()
    (ws.root / "runs" / "r" / art.version).symlink_to(art.path)  # looks like runs/r inside ws
    with pytest.raises(ArtifactError, match="outside the workspace"):
        ws.resolve(str(ws.root / "runs" / "r" / art.version))
    with pytest.raises(ArtifactError, match="'runs/r' not found"):
        ws.resolve("runs/r")
    assert [a.ref for a in ws.artifacts()] == [f"runs/mine@{art.version}"]
    for name in ("../escape", "a/b", "/abs", ".."):
        with pytest.raises(InputError, match="invalid artifact name"):
            ws.build("runs", name, {}, {}, _slow_builder([], 0))
    assert ws.resolve("runs/mine").name == "mine"


def test_disk_full_while_writing_is_one_line_and_leaves_nothing(tmp_path: Path, runner, monkeypatch) -> None:  # noqa: ANN001
    def full(dataset, folder: Path) -> None:  # noqa: ANN001
        (folder / "corpus.jsonl").write_text("{", encoding="utf-8")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder / "corpus.jsonl"))

    monkeypatch.setattr(data_artifacts, "write_beir", full)
    result = runner.invoke(app, ["data", "synth", "--name", "d", "--documents", "20", "-w", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "corpus.jsonl: No space left on device (no artifact was written" in lines[0]
    assert Workspace(tmp_path).artifacts() == [] and not any((tmp_path / TMP).iterdir())


def test_gc_keeps_latest_locked_and_inputs_and_removes_the_rest(tmp_path: Path, runner) -> None:  # noqa: ANN001
    ws = Workspace(tmp_path)
    old = ws.build("runs", "r", {"v": 1}, {}, _slow_builder([], 0)).artifact
    parent = ws.build("runs", "p", {"v": 1}, {}, _slow_builder([], 0)).artifact
    ws.build("runs", "p", {"v": 2}, {}, _slow_builder([], 0))  # parent is no longer the latest p ...
    child = ws.build("reports", "c", {"v": 1}, {"run": parent}, _slow_builder([], 0)).artifact  # ... but c needs it
    pinned = ws.build("runs", "q", {"v": 1}, {}, _slow_builder([], 0)).artifact
    ws.build("runs", "q", {"v": 2}, {}, _slow_builder([], 0))
    (tmp_path / "pipelines" / "x").mkdir(parents=True)
    (tmp_path / "pipelines" / "x" / "step.json").write_text(json.dumps({"hash": "h", "artifact": pinned.ref}), encoding="utf-8")
    new = ws.build("runs", "r", {"v": 2}, {}, _slow_builder([], 0)).artifact
    (tmp_path / TMP / "runs-r-abc-1234abcd").mkdir(parents=True)

    result = runner.invoke(app, ["artifacts", "gc", "--dry-run", "-w", str(tmp_path)])
    assert result.exit_code == 0 and f"would remove {old.ref}" in result.output
    assert "would remove 1 versions and 1 temporary folders" in result.output and old.path.is_dir()
    gone = collect(ws, keep=pipeline.pinned(ws))
    assert gone.versions == [old.ref] and gone.temporary == ["runs-r-abc-1234abcd"]
    assert not old.path.exists() and all(a.path.is_dir() for a in (parent, child, pinned, new))
    assert collect(ws, keep=pipeline.pinned(ws)).versions == []


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "retrieval_cli", *args]


def _kill_when(args: list[str], ready, timeout: float = 240) -> int | None:  # noqa: ANN001
    """Start a CLI command, SIGKILL it once ``ready()`` holds; its return code (None: killed)."""
    proc = subprocess.Popen(_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while proc.poll() is None and not ready() and time.time() < deadline:
        time.sleep(0.02)
    if proc.poll() is not None:
        return proc.returncode  # finished before the point was reached
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return None


def _tmp_of(root: Path, kind: str):  # noqa: ANN202
    return lambda: any(p.name.startswith(f"{kind}-") for p in (root / TMP).glob("*"))


def _all_listed_verify(ws: Workspace) -> None:
    for artifact in ws.artifacts():
        assert ws.verify(artifact) == [], artifact.ref


@pytest.mark.slow
def test_kill_9_at_any_step_leaves_no_finished_looking_artifact_and_a_rerun_finishes(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    w = ["-w", str(tmp_path), "-q"]
    subprocess.run(_cli("data", "synth", "--name", "k", "--documents", "200", "--test-queries", "10", "--train-queries", "24", "-w", str(tmp_path)), check=True)
    faults = {}
    # (command, kind it writes, the point to kill at)
    plan = [
        (["index", "k", "--kind", "dense", "--name", "k-dense"], "indexes", _tmp_of(tmp_path, "indexes")),
        (["mine-negatives", "-d", "k", "--num-negatives", "2", "--range-max", "20", "--name", "k-neg"], "negatives", _tmp_of(tmp_path, "negatives")),
        (["train", "--negatives", "k-neg", "--batch-size", "4", "--max-length", "32", "--checkpoint-steps", "2", "--epochs", "2",
          "--eval-split", "", "--name", "k-model"], "models", lambda: any((tmp_path / ".cache" / "checkpoints").glob("*/checkpoint-*/trainer_state.json"))),
        (["evaluate", "k-dense", "--name", "k-eval"], "evaluations", _tmp_of(tmp_path, "evaluations")),
    ]
    llm_cache = tmp_path / ".cache" / "llm"
    if importlib.util.find_spec("llama_cpp") is not None:  # the packaged Gemma, in-process
        plan.append((["generate-queries", "k", "--method", "llm", "--max-queries", "6", "--min-words", "2", "--split", "gen", "--name", "k-gen"],
                     "datasets", lambda: len(list(llm_cache.rglob("*.json"))) >= 2))
    for args, kind, ready in plan:
        before = {a.ref for a in ws.artifacts(kind)}
        faults[args[0]] = _kill_when([*args, *w], ready)
        _all_listed_verify(ws)
        name = args[args.index("--name") + 1]
        if faults[args[0]] is None:  # killed mid-build: nothing of that name looks finished
            assert not [a for a in ws.artifacts(kind) if a.name == name and a.ref not in before], args
        done = subprocess.run(_cli(*args, *w), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert [a for a in ws.artifacts(kind) if a.name == name]
        _all_listed_verify(ws)
    assert faults["train"] is None  # killed after a checkpoint, before the end ...
    model = ws.resolve("models/k-model")
    assert model.summary["resumed_from_step"] >= 2  # ... and the rerun continued from it
    assert not list((tmp_path / ".cache" / "checkpoints").glob("*"))
    if "generate-queries" in faults:
        assert faults["generate-queries"] is None
        assert ws.resolve("datasets/k-gen").summary["llm"]["cached"] >= 2  # finished generations were kept
    collect(ws)
    assert not list((tmp_path / TMP).iterdir())


def test_a_name_with_a_trailing_newline_is_refused(tmp_path: Path, runner) -> None:  # noqa: ANN001
    result = runner.invoke(app, ["data", "synth", "--name", "nl\n", "--documents", "20", "-w", str(tmp_path)])
    assert result.exit_code == 2 and "invalid artifact name 'nl\\n'" in result.output
    assert Workspace(tmp_path).artifacts() == [] and not (tmp_path / "datasets").exists()


def test_a_truncated_manifest_is_listed_as_damaged_and_force_replaces_it(tmp_path: Path, runner) -> None:  # noqa: ANN001
    w = ["-w", str(tmp_path)]
    assert runner.invoke(app, ["data", "synth", "--name", "d", "--documents", "40", *w]).exit_code == 0
    assert runner.invoke(app, ["index", "d", "--kind", "bm25", *w]).exit_code == 0
    ws = Workspace(tmp_path)
    data = ws.resolve("datasets/d")
    manifest = data.path / "manifest.json"
    manifest.write_text(manifest.read_text(encoding="utf-8")[:100], encoding="utf-8")  # truncated

    listed = runner.invoke(app, ["artifacts", "list", *w])
    assert listed.exit_code == 0 and "damaged" in listed.output and "1 damaged" in listed.output
    verified = runner.invoke(app, ["artifacts", "verify", "datasets/d", *w])
    assert verified.exit_code == 2 and "is damaged" in verified.output and "not found" not in verified.output
    traced = runner.invoke(app, ["artifacts", "lineage", "indexes/d-bm25", *w])
    assert traced.exit_code == 0 and "damaged" in traced.output  # a dependent's lineage names the damaged input
    kept = runner.invoke(app, ["artifacts", "gc", *w])
    assert kept.exit_code == 0 and f"kept damaged datasets/d/{data.version}" in kept.output and manifest.is_file()

    again = runner.invoke(app, ["data", "synth", "--name", "d", "--documents", "40", *w])
    assert again.exit_code == 2 and "is damaged" in again.output and "--force" in again.output
    forced = runner.invoke(app, ["data", "synth", "--name", "d", "--documents", "40", "--force", *w])
    assert forced.exit_code == 0 and Workspace(tmp_path).damaged() == []
    assert Workspace(tmp_path).resolve("datasets/d").version == data.version

    manifest.write_text("{", encoding="utf-8")
    removed = runner.invoke(app, ["artifacts", "gc", "--damaged", *w])
    assert removed.exit_code == 0 and f"removed damaged datasets/d/{data.version}" in removed.output
    assert not data.path.exists() and Workspace(tmp_path).damaged() == []


def test_a_payload_replaced_by_a_link_out_of_the_workspace_is_refused(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    art = datasets.save(ws, synthetic.generate(synthetic.SynthConfig(documents=20, test_queries=2, train_queries=0)), "d", {"s": 1}).artifact
    qrels = art.file("qrels/test.tsv")
    outside = tmp_path / "outside.tsv"
    outside.write_bytes(qrels.read_bytes())  # the same bytes: checksums alone would pass
    qrels.unlink()
    qrels.symlink_to(outside)
    with pytest.raises(ArtifactError, match="qrels/test.tsv: a link, not a file"):
        Workspace(tmp_path / "ws").resolve("datasets/d")


def test_a_missing_run_file_is_bad_input(tmp_path: Path, runner) -> None:  # noqa: ANN001
    w = ["-w", str(tmp_path)]
    assert runner.invoke(app, ["data", "synth", "--name", "d", "--documents", "20", *w]).exit_code == 0
    result = runner.invoke(app, ["evaluate", "--run", str(tmp_path / "nope.run"), "--dataset", "datasets/d", *w])
    assert result.exit_code == 2 and "nope.run: no such run file" in result.output


def test_gc_never_removes_what_a_live_build_reads_and_two_gcs_take_turns(tmp_path: Path) -> None:
    """Issue 32 item 3: a build on a version that is no longer the latest, gc during it."""
    ws = Workspace(tmp_path)
    first = datasets.save(ws, synthetic.generate(synthetic.SynthConfig(documents=20, test_queries=2, train_queries=0, seed=1)), "cran", {"s": 1}).artifact
    datasets.save(ws, synthetic.generate(synthetic.SynthConfig(documents=20, test_queries=2, train_queries=0, seed=2)), "cran", {"s": 2})
    started, release = threading.Event(), threading.Event()

    def builder(folder: Path) -> dict:
        started.set()
        release.wait(30)
        (folder / "x.txt").write_text((first.path / "corpus.jsonl").read_text(encoding="utf-8")[:10], encoding="utf-8")
        return {}

    results = []
    build = threading.Thread(target=lambda: results.append(Workspace(tmp_path).build("indexes", "cran-x", {"k": 1}, {"dataset": first}, builder)))
    build.start()
    assert started.wait(30)
    during = collect(ws)
    release.set()
    build.join()
    assert first.ref not in during.versions and (first.path / "manifest.json").is_file()
    assert Workspace(tmp_path).inputs_of(results[0].artifact)["dataset"].ref == first.ref  # usable: its input is there

    # Unreferenced versions, two gc runs at once: each removes some, neither fails, all are gone.
    for seed in range(3, 9):
        datasets.save(ws, synthetic.generate(synthetic.SynthConfig(documents=10, test_queries=1, train_queries=0, seed=seed)), "other", {"s": seed})
    outcomes: list = []
    runs = [threading.Thread(target=lambda: outcomes.append(collect(Workspace(tmp_path)))) for _ in range(2)]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    removed = [ref for result in outcomes for ref in result.versions]
    assert len(outcomes) == 2 and len(removed) == len(set(removed)) == 5  # the latest 'other' stays
    assert [a.name for a in Workspace(tmp_path).artifacts("datasets")].count("other") == 1

    # gc that ran before a build took its lock: the build stops before any work, naming the input.
    old = datasets.save(ws, synthetic.generate(synthetic.SynthConfig(documents=10, test_queries=1, train_queries=0, seed=99)), "gone", {"s": 1}).artifact
    datasets.save(ws, synthetic.generate(synthetic.SynthConfig(documents=10, test_queries=1, train_queries=0, seed=98)), "gone", {"s": 2})
    assert old.ref in collect(ws).versions
    calls: list[int] = []
    with pytest.raises(ArtifactError, match=f"input {old.ref} of indexes/late was removed before the build started"):
        ws.build("indexes", "late", {"k": 1}, {"dataset": old}, _slow_builder(calls, 0))
    assert calls == [] and "late" not in {a.name for a in Workspace(tmp_path).artifacts("indexes")}
