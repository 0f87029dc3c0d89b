"""End-to-end runs of the CLI on a small synthetic dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval_cli import mining
from retrieval_cli.cli import app
from retrieval_cli.store import Workspace


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


def test_report_all_keeps_every_setting_and_every_measure(runner, tmp_path: Path) -> None:
    """Two BM25 settings under one index name stay two rows; evaluating again with other measures
    adds them to the system's row instead of hiding nDCG@10 and R@100."""
    w = ["-w", str(tmp_path)]
    _ok(runner, ["data", "synth", "--name", "s", "--documents", "60", "--test-queries", "6", "--train-queries", "0", *w])
    _ok(runner, ["index", "s", "--kind", "bm25", "-q", *w])
    _ok(runner, ["evaluate", "s-bm25", "-q", *w])
    _ok(runner, ["index", "s", "--kind", "bm25", "--stemmer", "none", "-q", *w])  # same name, a new version
    _ok(runner, ["evaluate", "s-bm25", "-q", *w])
    _ok(runner, ["evaluate", "s-bm25", "-m", "RR@10", "-m", "P@10", "-q", *w])  # the stemmer=none ranking, other measures
    ws = Workspace(tmp_path)
    (Path(ws.resolve("indexes/s-bm25").path)).rename(tmp_path / "moved")  # one more evaluation, its index gone
    _ok(runner, ["index", "s", "--kind", "bm25", "--k1", "1.5", "-q", *w])
    _ok(runner, ["evaluate", "s-bm25", "-q", *w])
    result = runner.invoke(app, ["report", "--all", "--name", "r", "-q", *w])
    assert result.exit_code == 0, result.output
    table = {(r["system"], r["measure"]): r["value"] for r in json.loads(ws.resolve("reports/r").file("table.json").read_text())}
    systems = {s for s, _ in table}
    assert systems == {"BM25 k1=0.9 b=0.4", "BM25 k1=1.5 b=0.4"}, systems  # stemmer=none's index is gone
    assert "left out" in result.output and "is missing from the workspace" in " ".join(result.output.split())
    porter = {m for s, m in table if s == "BM25 k1=0.9 b=0.4"}
    assert porter == {"nDCG@10", "R@100", "Judged@10"}


def test_a_missing_workspace_folder_is_named_as_such(runner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", "indexes/x", "-w", str(tmp_path / "nowhere")])
    line = " ".join(result.output.split())
    assert result.exit_code == 2 and f"the workspace folder {tmp_path / 'nowhere'} does not exist" in line
    assert not (tmp_path / "nowhere").exists()


def test_lineage_settings_list_notes_and_diff_say_what_sets_versions_apart(runner, tmp_path: Path) -> None:
    w = ["-w", str(tmp_path)]
    _ok(runner, ["data", "synth", "--name", "s", "--documents", "30", "--test-queries", "3", "--train-queries", "0", *w])
    _ok(runner, ["index", "s", "-q", *w])
    _ok(runner, ["index", "s", "--stemmer", "none", "--k1", "1.2", "-q", *w])
    ws = Workspace(tmp_path)
    first, second = ws.artifacts("indexes")
    listing = _ok(runner, ["artifacts", "list", *w])
    assert f"indexes/s-bm25@{second.version[:6]} differs from @{first.version[:6]} in: k1, stemmer" in " ".join(listing.split())
    rows = json.loads(_ok(runner, ["artifacts", "diff", first.ref, second.ref, "--json", *w], stdout_only=True))
    assert rows == [{"field": "k1", "first": 0.9, "second": 1.2}, {"field": "stemmer", "first": "porter", "second": "none"}]
    _ok(runner, ["evaluate", second.ref, "-q", *w])
    tree = " ".join(_ok(runner, ["artifacts", "lineage", "evaluations/s-bm25-test", *w]).split())
    assert f"index: {second.ref}" in tree and "k1=1.2 b=0.4 stemmer=none" in tree and "split=test depth=1000" in tree
    same = _ok(runner, ["artifacts", "diff", first.ref, first.ref, *w])
    assert "have the same config and inputs" in " ".join(same.split())


def test_every_dataset_command_takes_the_dataset_as_argument_or_d(runner, tmp_path: Path) -> None:
    w = ["-w", str(tmp_path)]
    _ok(runner, ["data", "synth", "--name", "s", "--documents", "40", "--test-queries", "3", "--train-queries", "4", "-q", *w])
    for command in (["index"], ["generate-queries", "--split", "more"], ["mine-negatives", "--strategy", "random"],
                    ["cluster-queries", "--k", "2"], ["data", "subset", "--queries", "2", "--distractors", "none"]):
        by_argument = _ok(runner, [*command, "s", "-q", *w])
        by_option = _ok(runner, [*command, "-d", "s", "-q", *w])
        assert "wrote" in by_argument and "reused" in by_option, command  # the same artifact either way
        both = runner.invoke(app, [*command, "s", "-d", "other", *w])
        assert both.exit_code == 2 and "give the dataset once" in both.output, command
    assert "--dataset" in _ok(runner, ["evaluate", "--help"]) and " -d " in _ok(runner, ["evaluate", "--help"])
    for flag_help in (_ok(runner, ["index", "--help"]), _ok(runner, ["train", "--help"])):
        assert "--force" in flag_help and "--force <bool>" not in " ".join(flag_help.split())  # flags shown as flags


def test_unknown_reference_lists_close_matches(runner, tmp_path: Path) -> None:
    _ok(runner, ["data", "synth", "--name", "cranfield", "--documents", "20", "--test-queries", "2", "--train-queries", "0", "-w", str(tmp_path)])
    result = runner.invoke(app, ["index", "datasets/cranfeld", "-w", str(tmp_path)])
    assert result.exit_code == 2
    assert "did you mean: datasets/cranfield" in result.output and "Traceback" not in result.output


def test_verify_reports_tampering(runner, tmp_path: Path) -> None:
    _ok(runner, ["data", "synth", "--name", "t", "--documents", "20", "--test-queries", "2", "--train-queries", "0", "-w", str(tmp_path)])
    art = Workspace(tmp_path).resolve("datasets/t")
    corpus = art.file("corpus.jsonl")
    data = bytearray(corpus.read_bytes())
    data[10] ^= 1  # same size, one bit changed
    corpus.write_bytes(bytes(data))
    result = runner.invoke(app, ["artifacts", "verify", "datasets/t", "-w", str(tmp_path)])
    assert result.exit_code == 2 and "corpus.jsonl: checksum mismatch" in result.output
    corpus.write_bytes(bytes(data[:-5]))  # truncated
    result = runner.invoke(app, ["artifacts", "verify", "datasets/t", "-w", str(tmp_path)])
    assert result.exit_code == 2 and f"corpus.jsonl: size changed ({len(data) - 5} bytes, written with {len(data)})" in result.output


def test_bad_option_values_exit_2(runner, tmp_path: Path) -> None:
    _ok(runner, ["data", "synth", "--name", "t", "--documents", "20", "--test-queries", "2", "--train-queries", "0", "-w", str(tmp_path)])
    for args, expected in (
        (["index", "t", "--kind", "sparse"], "--kind must be bm25 or dense"),
        (["index", "t", "--b", "2"], "b must be in [0, 1]"),
        (["report", "--all", "--test", "sign"], "test must be one of t, randomization, wilcoxon"),
        (["report", "--all", "--baseline", "evaluations/none"], "not found"),
    ):
        result = runner.invoke(app, [*args, "-w", str(tmp_path)])
        assert result.exit_code == 2 and expected in result.output
    assert Workspace(tmp_path).artifacts("indexes") == []


@pytest.mark.slow
def test_mining_to_cross_encoder_to_rerank(runner, tmp_path: Path) -> None:
    w = ["-w", str(tmp_path)]
    _ok(runner, ["data", "synth", "--name", "m", "--documents", "150", "--test-queries", "10", "--train-queries", "12", *w])
    _ok(runner, ["generate-queries", "m", "--method", "ict", "--split", "ict", *w])
    stats = json.loads(_ok(runner, [
        "mine-negatives", "-d", "m", "--strategy", "bm25:2,random:1", "--range-min", "1", "--range-max", "30",
        "--relative-margin", "0.05", "--json", "-q", *w,
    ], stdout_only=True))
    assert stats["processed"] == 12 and stats["by_strategy"]["random"] == 12
    assert "rank" in _ok(runner, ["mine-negatives", "-d", "m-ict", "--split", "ict", "--strategy", "dense", *w])
    out_file = tmp_path / "train.jsonl"
    out = _ok(runner, ["negatives", "export", "m-bm25-2-random-1", "-f", "labeled-pair", "-o", str(out_file), *w])
    assert "anchor, text, label" in out and out_file.exists()
    assert "examples" in _ok(runner, ["train", "--negatives", "m-bm25-2-random-1", "--kind", "cross-encoder", "--batch-size", "32", "--max-length", "96", "-n", "ce", *w])
    _ok(runner, ["mine-negatives", "-d", "m", "--strategy", "cross-encoder", "--cross-encoder", "models/ce", "--range-min", "0", "--range-max", "10", *w])
    _ok(runner, ["index", "m", *w])
    out = _ok(runner, ["evaluate", "m-bm25", "--rerank", "models/ce", "--rerank-depth", "10", *w])
    assert "nDCG@10" in out


def test_mining_input_errors_exit_2_and_write_nothing(runner, tmp_path: Path) -> None:
    w = ["-w", str(tmp_path)]
    _ok(runner, ["data", "synth", "--name", "t", "--documents", "20", "--test-queries", "2", "--train-queries", "2", *w])
    for args, expected in (
        (["mine-negatives", "-d", "t", "--strategy", "cross-encoder"], "needs --cross-encoder"),
        (["mine-negatives", "-d", "t", "--relative-margin", "-0.1"], "relative-margin must be in [0, 1)"),
        (["mine-negatives", "-d", "t", "--range-min", "50", "--range-max", "20"], "holds no rank"),
        (["mine-negatives", "-d", "t", "--strategy", "bm25:3,randm:1"], "unknown strategy 'randm'"),
        (["mine-negatives", "-d", "t", "--split", "dev"], "has no split 'dev'"),
        (["generate-queries", "t"], "already has a 'train' split"),
        (["train", "--negatives", "negatives/none"], "not found"),
    ):
        result = runner.invoke(app, [*args, *w])
        assert result.exit_code == 2 and expected in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert Workspace(tmp_path).artifacts("negatives") == [] and len(Workspace(tmp_path).artifacts("datasets")) == 1


def test_a_collection_without_training_queries_is_pointed_at_generate_queries(runner, tmp_path: Path) -> None:
    w = ["-w", str(tmp_path)]
    _ok(runner, ["data", "synth", "--name", "t", "--documents", "20", "--test-queries", "3", "--train-queries", "0", *w])
    result = runner.invoke(app, ["mine-negatives", "-d", "t", *w])
    assert result.exit_code == 2 and "has no split 'train'" in result.output
    assert "retrieval-cli generate-queries datasets/t --method title|ict|llm" in " ".join(result.output.split())
    assert Workspace(tmp_path).artifacts("indexes") == []  # refused before any index was built
    # Mining the test queries works, and says (in the manifest too) why it contaminates the evaluation.
    result = runner.invoke(app, ["mine-negatives", "-d", "t", "--split", "test", "--strategy", "random", "--num-negatives", "1", *w])
    assert result.exit_code == 0 and "warning: split 'test' holds the queries benchmarks evaluate on" in " ".join(result.output.split())
    (mined,) = Workspace(tmp_path).artifacts("negatives")
    assert mined.summary["warnings"] == mining.split_warnings("test")
    trained = runner.invoke(app, ["train", "--negatives", mined.ref, "--batch-size", "2", "--max-length", "16", "--eval-split", "", "-q", *w])
    assert trained.exit_code == 0 and "warning: split 'test' holds the queries" in " ".join(trained.output.split())
    (model,) = Workspace(tmp_path).artifacts("models")
    assert model.summary["warnings"] == mining.split_warnings("test")  # the model's manifest says it too


@pytest.mark.slow
def test_bi_encoder_training_to_dense_index_to_report(runner, tmp_path: Path) -> None:
    w = ["-w", str(tmp_path)]
    _ok(runner, ["data", "synth", "--name", "b", "--documents", "150", "--test-queries", "10", "--train-queries", "16", *w])
    _ok(runner, ["mine-negatives", "-d", "b", "--num-negatives", "2", "--range-min", "0", "--range-max", "20", "--sampling", "top", "-q", *w])
    _ok(runner, ["cluster-queries", "-d", "b", "--k", "2", "-q", *w])
    for args, expected in (
        (["--sampler", "tas"], "give --clusters"),
        (["--kind", "cross-encoder", "--sampler", "tas"], "--sampler applies to --kind bi-encoder only"),
        (["--loss", "bce"], "bi-encoder loss must be one of"),
        (["--kind", "reranker"], "--kind must be one of bi-encoder, cross-encoder"),
    ):
        result = runner.invoke(app, ["train", "--negatives", "b-bm25", *args, *w])
        assert result.exit_code == 2 and expected in result.output, (args, result.output)
    out = _ok(runner, [
        "train", "--negatives", "b-bm25", "--loss", "mw", "--sampler", "tas", "--clusters", "b-train-k2",
        "--batch-size", "4", "--max-length", "48", "--eval-split", "test", "--name", "bi", "-q", *w,
    ])
    assert "steps" in out and "dev: nDCG@10" in out
    assert "reused" in _ok(runner, [
        "train", "--negatives", "b-bm25", "--loss", "mw", "--sampler", "tas", "--clusters", "b-train-k2",
        "--batch-size", "4", "--max-length", "48", "--eval-split", "test", "--name", "bi", "-q", *w,
    ])
    _ok(runner, ["index", "b", "--kind", "dense", "--model", "models/bi", "--name", "b-bi", "-q", *w])
    _ok(runner, ["evaluate", "b-bi", "-q", *w])
    _ok(runner, ["report", "--all", *w])
    markdown = Workspace(tmp_path).artifacts("reports")[-1].file("report.md").read_text(encoding="utf-8")
    assert "| bi: minilm + bm25 (0,20] · mw · tas |" in markdown  # model, base, negatives, loss, sampler


def test_terminal_labels_are_short_unique_and_keyed() -> None:
    from retrieval_cli.cli.console import short_labels

    systems = [
        "ci-smoke-bm25: minilm + bm25 (0,30] · mnrl · no-duplicates", "minilm (dense flat)",
        "BM25 k1=0.9 b=0.4 stemmer=none and a long tail", "BM25 k1=0.9 b=0.4 stemmer=none and another",
    ]
    short = short_labels(systems)
    assert short[systems[0]] == "ci-smoke-bm25" and short[systems[1]] == "minilm (dense flat)"
    assert len(set(short.values())) == 4 and all(len(v) <= 20 for v in short.values())


def test_a_wide_comparison_keeps_one_line_per_system_at_80_columns() -> None:
    """Three targets and the mean, two measures: too wide whole, so one table per measure."""
    import io

    import pandas as pd
    from rich.console import Console

    from retrieval_cli.cli.console import comparison_tables, short_labels

    systems = ["minilm (dense flat)", "BM25 k1=0.9 b=0.4", "xbench-bm25: minilm + bm25 (0,100] · mnrl", "xbench-random: minilm + random"]
    rows = []
    for i, system in enumerate(systems):
        for dataset in ("cranfield", "trec-dl-19", "adi", "mean"):
            for measure in ("nDCG@10", "R@100"):
                delta = None if i == 0 else 0.0123 * (-1) ** i
                rows.append({"system": system, "dataset": dataset, "target": dataset, "measure": measure, "value": 0.4321, "delta": delta,
                             "significant": i == 2, "baseline": i == 0, "seeds": 3 if i > 1 else 1, "sd": 0.001})
    table = pd.DataFrame(rows)
    short = short_labels(systems)
    for width, parts, delta in ((200, 1, True), (80, 2, False)):
        drawn, marked = comparison_tables(table, short, "xbench", width)
        assert len(drawn) == parts and marked is not delta
        screen = Console(width=width, file=io.StringIO(), color_system=None)
        for part in drawn:
            screen.print(part)
        text = screen.file.getvalue()
        assert max(map(len, text.splitlines())) <= width
        for label in short.values():  # a system's row is one line in each table
            assert sum(1 for line in text.splitlines() if label in line) == parts, (label, text)
        # Wide enough, the deltas show; at 80 columns the values keep ▲/▼ where significant. The
        # ± over seeds shows at every width (issue 35 item 5), for the seeded systems only.
        assert ("+.012*" in text) is delta and (".4321±.001▲" in text) is not delta
        assert "±.001" in text and sum(line.count("±") for line in text.splitlines() if short[systems[0]] in line) == 0


def test_pipeline_status_at_80_columns_cuts_no_name_or_reference(tmp_path: Path) -> None:
    """Issue 35 item 8: long step names and artifact references fold onto more lines rather than
    end in an ellipsis, so each can be read whole."""
    import io

    from rich.console import Console

    from retrieval_cli.cli.pipeline import _status_table

    rows = [("evaluate:hybrid@nano-webis-touche2020", "evaluations", "done",
             "evaluations/msmarco-hybrid-nano-webis-touche2020@0123456789abcdef0123"),
            ("index:model-cross-encoder-s15@dl19", "indexes", "missing", "")]
    screen = Console(width=80, file=io.StringIO(), color_system=None)
    screen.print(_status_table(rows, "recipe msmarco"))
    text = screen.file.getvalue()
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    cells = "".join(line.split("│")[4].strip() for line in text.splitlines() if line.count("│") == 5)
    assert rows[0][3] in cells  # the reference, folded, reads whole again


def test_a_lineage_settings_line_is_whole_in_a_wide_terminal(monkeypatch) -> None:  # noqa: ANN001
    """Issue 35 item 7: at 200 columns a trained model's settings (its seed last among many) are
    not cut; at 80 they are cut to the default 70 characters."""
    from rich.console import Console

    from retrieval_cli.cli import artifacts, console
    from retrieval_cli.training import BiEncoderTrainConfig

    config = {**BiEncoderTrainConfig().versioned(), "zz_seed": 14}
    monkeypatch.setattr(console, "out", Console(width=200))
    wide = artifacts._settings(config, depth=2)
    assert "zz_seed=14" in wide and "…" not in wide
    monkeypatch.setattr(console, "out", Console(width=80))
    assert artifacts._settings(config, depth=2).endswith("…")
