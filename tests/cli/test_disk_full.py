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
