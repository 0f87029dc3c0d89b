"""A full disk, for real: a small tmpfs the test mounts (skipped where mounting is not allowed).
Every writer (Python's, Lucene's, numpy arrays, faiss) ends in one line naming the file, exit 1,
no traceback and no artifact; a run with room enough afterwards finishes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from retrieval_cli.cli import app
from retrieval_cli.store import Workspace

NO_SPACE = "No space left on device"


@pytest.fixture
def small_disk(tmp_path: Path):  # noqa: ANN201
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("cannot mount a tmpfs here")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        # Lazy: the JVM and numpy maps of this process still hold files there, and a plain umount
        # failed "busy", leaving every run's tmpfs mounted under pytest's old folders.
        subprocess.run(["umount", "--lazy", str(mount)], capture_output=True, timeout=30)


def _leave_free(disk: Path, kb: int) -> None:
    """Fill the disk until about ``kb`` KiB stay free."""
    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    free = shutil.disk_usage(disk).free
    filler.write_bytes(b"\0" * max(0, free - kb * 1024))


def _one_line_disk_full(result, runner_output: str) -> str:  # noqa: ANN001
    lines = [line for line in runner_output.splitlines() if line.strip()]
    assert result.exit_code == 1, runner_output
    assert len(lines) == 1 and NO_SPACE in lines[0] and "Traceback" not in runner_output, runner_output
    return lines[0]


def test_a_full_disk_is_one_line_and_no_artifact_for_every_writer(small_disk: Path, runner) -> None:  # noqa: ANN001
    ws_path = small_disk / "ws"
    w = ["-w", str(ws_path)]
    _leave_free(small_disk, 40)
    out = runner.invoke(app, ["data", "synth", "--name", "d", "--documents", "300", *w])  # Python's writes
    line = _one_line_disk_full(out, out.output)
    assert str(ws_path) in line  # the message names where it was writing
    assert Workspace(ws_path).artifacts() == []
    (small_disk / "filler").unlink()
    assert runner.invoke(app, ["data", "synth", "--name", "d", "--documents", "300", *w]).exit_code == 0

    _leave_free(small_disk, 150)  # the Lucene collection file fits, the Lucene index does not
    out = runner.invoke(app, ["index", "d", "--kind", "bm25", *w])
    assert "/lucene:" in _one_line_disk_full(out, out.output)  # Lucene's own writer, not a smaller index
    assert Workspace(ws_path).artifacts("indexes") == []

    for kb, writer in ((300, "vectors.npy"), (900, "embeddings.npy"), (1000, "index.faiss")):
        shutil.rmtree(ws_path / ".cache", ignore_errors=True)
        _leave_free(small_disk, kb)
        out = runner.invoke(app, ["index", "d", "--kind", "dense", *w])
        assert writer in _one_line_disk_full(out, out.output), kb  # a shard part, the embedding cache, faiss
        assert Workspace(ws_path).artifacts("indexes") == []
    assert not list((ws_path / ".tmp").iterdir())

    (small_disk / "filler").unlink()
    assert runner.invoke(app, ["index", "d", "--kind", "bm25", *w]).exit_code == 0
    assert runner.invoke(app, ["index", "d", "--kind", "dense", *w]).exit_code == 0
    assert len(Workspace(ws_path).artifacts("indexes")) == 2


@pytest.mark.slow
def test_a_full_disk_while_training_saves_is_one_line_and_the_model_takes_the_umask(small_disk: Path, tmp_path: Path, runner) -> None:  # noqa: ANN001
    """Issue 32 items 7 and 10: safetensors and torch.save do not raise OSError; a full disk in a
    checkpoint or in the final model is still the one line, exit 1, nothing left half-written.
    And safetensors writes model.safetensors 0600 whatever the umask: the model folder gets the
    user's umask, so a group workspace can share it."""
    import os
    import stat

    def train(ws_path: Path, *extra: str):  # noqa: ANN202
        w = ["-w", str(ws_path)]
        assert runner.invoke(app, ["data", "synth", "--name", "d", "--documents", "40", "--test-queries", "2", "--train-queries", "8", *w]).exit_code == 0
        assert runner.invoke(app, ["mine-negatives", "d", "--strategy", "random", "--num-negatives", "1", *w]).exit_code == 0
        return runner.invoke(app, ["train", "--negatives", "d-random", "--batch-size", "4", "--max-length", "16", "--eval-split", "", *extra, *w])

    ws_path = small_disk / "ws"  # 4 MB: the data fits, MiniLM's 90 MB of weights do not
    for extra, where in ((["--checkpoint-steps", "1"], "checkpoints"), (["--checkpoint-steps", "0"], "/model")):
        out = train(ws_path, *extra)
        assert where in _one_line_disk_full(out, out.output), out.output
        assert Workspace(ws_path).artifacts("models") == []
        assert not list((ws_path / ".tmp").iterdir())

    old = os.umask(0o002)
    try:
        out = train(tmp_path / "roomy")
    finally:
        os.umask(old)
    assert out.exit_code == 0, out.output
    (model,) = Workspace(tmp_path / "roomy").artifacts("models")
    assert stat.S_IMODE(model.file("model/model.safetensors").stat().st_mode) == 0o664
