"""End-to-end runs of the CLI on a small synthetic dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval_cli.artifacts import Workspace
from retrieval_cli.cli import app


def _ok(runner, args, stdout_only: bool = False):  # noqa: ANN001
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout if stdout_only else result.output


@pytest.mark.slow
def test_dataset_to_report(runner, tmp_path: Path) -> None:
    w = ["-w", str(tmp_path)]
    _ok(runner, ["data", "synth", "--name", "s", "--documents", "150", "--test-queries", "15", "--train-queries", "5", *w])
    assert "wrote index" in _ok(runner, ["index", "s", "--kind", "bm25", *w])
    assert "reused index" in _ok(runner, ["index", "datasets/s", "--kind", "bm25", *w])
    _ok(runner, ["index", "s", "--kind", "bm25", "--k1", "1.2", "--name", "s-bm25-k12", *w])
    _ok(runner, ["index", "s", "--kind", "dense", *w])
    out = _ok(runner, ["evaluate", "indexes/s-bm25", "-m", "nDCG@10", "-m", "P@5", *w])
    assert "nDCG@10" in out and "P@5" in out and "Judged@10" in out
    data = json.loads(_ok(runner, ["evaluate", "indexes/s-dense-minilm", "--json", "--quiet", *w], stdout_only=True))
    assert set(data["aggregate"]) == {"nDCG@10", "R@100", "Judged@10"} and data["queries"] == 15
    _ok(runner, ["evaluate", "indexes/s-bm25-k12", *w])
    out = _ok(runner, ["report", "--all", "--name", "r", *w])
    assert "BM25 k1=0.9 b=0.4" in out and "BM25 k1=1.2 b=0.4" in out and "minilm (dense flat)" in out
    report_dir = Workspace(tmp_path).resolve("reports/r").path
    markdown = (report_dir / "report.md").read_text()
    assert markdown.startswith("| system |") and markdown.count("\n| ") == 3  # 3 system rows
    lineage = json.loads(_ok(runner, ["artifacts", "lineage", "reports/r", "--json", *w], stdout_only=True))
    chain = lineage["inputs"]["evaluation0"]
    assert chain["ref"].startswith("evaluations/") and chain["inputs"]["index"]["inputs"]["dataset"]["ref"].startswith("datasets/s@")
    assert "verified" in _ok(runner, ["artifacts", "verify", "reports/r", *w])
    listing = _ok(runner, ["artifacts", "list", "--json", *w], stdout_only=True)
    assert len(json.loads(listing)) == 1 + 3 + 3 + 1


def test_unknown_reference_lists_close_matches(runner, tmp_path: Path) -> None:
    _ok(runner, ["data", "synth", "--name", "cranfield", "--documents", "20", "--test-queries", "2", "--train-queries", "0", "-w", str(tmp_path)])
    result = runner.invoke(app, ["index", "datasets/cranfeld", "-w", str(tmp_path)])
    assert result.exit_code == 2
    assert "did you mean: datasets/cranfield" in result.output and "Traceback" not in result.output


def test_verify_reports_tampering(runner, tmp_path: Path) -> None:
    _ok(runner, ["data", "synth", "--name", "t", "--documents", "20", "--test-queries", "2", "--train-queries", "0", "-w", str(tmp_path)])
    art = Workspace(tmp_path).resolve("datasets/t")
    with open(art.file("corpus.jsonl"), "a") as out:
        out.write("\n")
    result = runner.invoke(app, ["artifacts", "verify", "datasets/t", "-w", str(tmp_path)])
    assert result.exit_code == 2 and "corpus.jsonl: checksum mismatch" in result.output


def test_bad_option_values_exit_2(runner, tmp_path: Path) -> None:
    _ok(runner, ["data", "synth", "--name", "t", "--documents", "20", "--test-queries", "2", "--train-queries", "0", "-w", str(tmp_path)])
    for args, expected in (
        (["index", "t", "--kind", "sparse"], "--kind must be bm25 or dense"),
        (["index", "t", "--b", "2"], "b must be in [0, 1]"),
    ):
        result = runner.invoke(app, [*args, "-w", str(tmp_path)])
        assert result.exit_code == 2 and expected in result.output
    assert Workspace(tmp_path).artifacts("indexes") == []
