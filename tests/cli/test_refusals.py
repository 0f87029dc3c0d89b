"""Issue 32 item 10: the smaller promises of the third reliability pass. Each bad value is one line
naming it, exit 2 and nothing written; a setting that changes how, not what, names nothing new."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval_cli import pipeline
from retrieval_cli.cli import app
from retrieval_cli.errors import InputError
from retrieval_cli.store import Shard, Workspace


def _one_line(result, *needles: str) -> str:  # noqa: ANN001
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _synth(runner, ws: Path, name: str = "d") -> None:  # noqa: ANN001
    args = ["data", "synth", "--name", name, "--documents", "40", "--test-queries", "4", "--train-queries", "8", "-w", str(ws)]
    assert runner.invoke(app, args).exit_code == 0


def test_workspaces_that_are_empty_files_or_missing_are_named(runner, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    _one_line(runner.invoke(app, ["data", "synth", "--name", "d", "-w", ""]), "the workspace is empty")
    assert list(tmp_path.iterdir()) == []  # nothing written into the current folder
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    _one_line(runner.invoke(app, ["artifacts", "list", "-w", "afile"]), "workspace afile is a file, not a folder")
    _one_line(runner.invoke(app, ["artifacts", "list", "-w", "nowhere"]), "no workspace at nowhere")
    _one_line(runner.invoke(app, ["artifacts", "gc", "-w", "nowhere"]), "no workspace at nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_a_dataset_name_whose_derived_names_would_not_fit_is_refused_at_the_door(runner, tmp_path: Path) -> None:  # noqa: ANN001
    ws = tmp_path / "ws"
    _one_line(runner.invoke(app, ["data", "synth", "--name", "n" * 128, "-w", str(ws)]), "is 128 characters; at most 64")
    _synth(runner, ws, "n" * 64)
    assert runner.invoke(app, ["mine-negatives", "n" * 64, "--strategy", "random", "--num-negatives", "1", "-w", str(ws)]).exit_code == 0


@pytest.mark.parametrize("option, value", [("--max-score", "nan"), ("--absolute-margin", "inf"), ("--relative-margin", "nan")])
def test_non_finite_filter_values_are_refused(runner, tmp_path: Path, option: str, value: str) -> None:  # noqa: ANN001
    ws = tmp_path / "ws"
    _synth(runner, ws)
    result = runner.invoke(app, ["mine-negatives", "d", "--strategy", "random", "--num-negatives", "1", option, value, "-w", str(ws)])
    _one_line(result, f"{option[2:]} must be a finite number")
    assert not (ws / "negatives").exists()


def test_the_chunk_size_changes_memory_not_the_negatives_version(runner, tmp_path: Path) -> None:  # noqa: ANN001
    ws = tmp_path / "ws"
    _synth(runner, ws)
    refs = []
    for chunk in ("256", "3"):
        result = runner.invoke(app, ["mine-negatives", "d", "--strategy", "random", "--num-negatives", "2", "--chunk-size", chunk, "-w", str(ws), "--force"])
        assert result.exit_code == 0, result.output
        (art,) = Workspace(ws).artifacts("negatives")
        refs.append((art.ref, art.file("negatives.jsonl").read_bytes()))
    assert refs[0] == refs[1]  # the same bytes under the same id, so nothing downstream reruns


@pytest.mark.parametrize("text", [" 0/2", "1_0/20", "\u0661/2", "0/\uff12", "0/2 "])
def test_a_shard_is_ascii_digits_only(text: str) -> None:
    with pytest.raises(InputError, match="--shard must be I/N"):
        Shard.parse(text)
    assert Shard.parse("1/20") == Shard(1, 20)


def test_fusing_one_evaluation_twice_is_refused(runner, tmp_path: Path) -> None:  # noqa: ANN001
    ws = tmp_path / "ws"
    _synth(runner, ws)
    assert runner.invoke(app, ["index", "d", "-w", str(ws)]).exit_code == 0
    assert runner.invoke(app, ["evaluate", "indexes/d-bm25", "-w", str(ws)]).exit_code == 0
    result = runner.invoke(app, ["evaluate", "--fuse", "evaluations/d-bm25-test", "--fuse", "evaluations/d-bm25-test", "-w", str(ws)])
    _one_line(result, "is given twice: fuse distinct evaluations")


def test_a_run_files_unknown_queries_documents_and_empty_queries_are_counted(runner, tmp_path: Path) -> None:  # noqa: ANN001
    from retrieval_cli import data as datasets

    ws = tmp_path / "ws"
    _synth(runner, ws)
    data = datasets.load(Workspace(ws).resolve("datasets/d"))
    judged = sorted(data.split_qrels("test"))
    doc = next(iter(data.corpus))
    run = tmp_path / "run.trec"
    run.write_text(f"{judged[0]} Q0 {doc} 1 9.0 x\n{judged[0]} Q0 nosuchdoc 2 8.0 x\nnosuchquery Q0 {doc} 1 1.0 x\n", encoding="utf-8")
    result = runner.invoke(app, ["evaluate", "-d", "d", "--run", str(run), "-w", str(ws)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "warning: 1 query ids in the run are not test queries of 'd' and were ignored (e.g. 'nosuchquery')" in text
    assert "warning: 1 document ids in the run are not in the corpus of 'd' (e.g. 'nosuchdoc')" in text
    assert f"warning: {len(judged) - 1} of {len(judged)} judged test queries have no results in the run (each scores 0)" in text


def test_an_expectations_file_with_nothing_in_it_checks_nothing_and_says_so(tmp_path: Path) -> None:
    from retrieval_cli.pipeline import expect

    for content in ("{}", '{"bm25": {}}', '{"bm25": {"home": {}}}'):
        (tmp_path / "e.json").write_text(content, encoding="utf-8")
        with pytest.raises(InputError, match="holds no expected values, so it would check nothing"):
            expect.read(tmp_path / "e.json")


RECIPE = """\
name: cp
dataset:
  synth: {documents: 40, test_queries: 4, train_queries: 8, seed: 3}
strategies:
  random: {strategy: random, num_negatives: 1}
train: {loss: mnrl, batch_size: 4, max_seq_length: 16, eval_split: ""CHECKPOINT}
"""


def test_a_recipe_takes_checkpoint_steps_without_changing_what_it_trains(tmp_path: Path) -> None:
    def planned(extra: str) -> dict[str, str]:
        path = tmp_path / "r.yaml"
        path.write_text(RECIPE.replace("CHECKPOINT", extra), encoding="utf-8")
        return {s.name: s.hash for s in pipeline.plan(pipeline.load(path))}

    assert planned(", checkpoint_steps: 5") == planned("") == planned(", checkpoint_minutes: 2.5")
    with pytest.raises(InputError, match="train.checkpoint_steps: give a whole number >= 0"):
        planned(", checkpoint_steps: -1")
    with pytest.raises(InputError, match="train.checkpoint_minutes: give a number of minutes >= 0"):
        planned(", checkpoint_minutes: -1")


_SLOW_SYNTH = """
import sys, time
from retrieval_cli.data import synthetic
from retrieval_cli.cli import app
def slow(*args, **kwargs):
    print("generating", flush=True)
    time.sleep(600)
synthetic.generate = slow
app(["data", "synth", "--name", "d", "-w", sys.argv[1]])
"""


def test_sigterm_stops_a_command_with_one_line_and_exit_143(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SYNTH, str(tmp_path / "ws")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONFAULTHANDLER": ""})
    assert proc.stdout.readline().strip() == "generating"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert err.strip() == "error: stopped by SIGTERM; no artifact was written for the step in progress (the same command resumes)"
    assert json.dumps(Workspace(tmp_path / "ws").artifacts()) == "[]"


def test_help_into_a_pipe_closed_early_says_nothing(tmp_path: Path) -> None:
    """Issue 35 item 8: `mine-negatives --help | head` ended with 'error: Broken pipe (no artifact was written ...)'."""
    read, write = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "retrieval_cli", "mine-negatives", "--help"], stdout=write, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "400"})
    os.close(write)
    os.read(read, 10)
    os.close(read)  # the reader leaves, as head does
    _, err = proc.communicate(timeout=60)
    assert err.decode() == ""
