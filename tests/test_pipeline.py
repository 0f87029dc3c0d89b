"""Recipes: the DAG runs end to end, reruns reuse everything, an edit reruns only its branch."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval_cli import evaluation, pipeline, reporting
from retrieval_cli.artifacts import Workspace
from retrieval_cli.cli import app
from retrieval_cli.errors import InputError

RECIPE = """\
name: tp
dataset:
  synth: {documents: 120, test_queries: 8, train_queries: 12, seed: 3}
strategies:
  bm25: {strategy: bm25, num_negatives: 2, range_max: 20}
  random: {strategy: random, num_negatives: 2}
train: {loss: mnrl, batch_size: 4, max_seq_length: 40, eval_split: ""}
report: {baseline: untrained}
"""


def _recipe(tmp_path: Path, text: str = RECIPE) -> pipeline.Recipe:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return pipeline.load(path)


@pytest.mark.slow
def test_recipe_runs_reuses_and_reruns_only_the_edited_branch(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    recipe = _recipe(tmp_path)
    assert {state for _, state, _ in pipeline.status(ws, recipe)} == {"missing"}
    events: list[tuple[str, str]] = []
    made = pipeline.run(ws, recipe, on_step=lambda step, state, art: events.append((step.name, state)))
    built = [name for name, state in events if state == "built"]
    assert built == [s.name for s in pipeline.plan(ws, recipe)]  # every step made its artifact, in order
    report = made["report"]
    table = reporting.load_table(report)
    # Baselines and one trained system per strategy, each compared with the untrained model.
    assert set(table["system"].str.split(" ").str[0]) >= {"minilm", "BM25"}
    assert table["baseline"].sum() == 3 and table["p"].notna().sum() == 3 * 2  # 3 systems x (nDCG@10, R@100)
    assert ws.inputs_of(ws.inputs_of(ws.inputs_of(made["evaluate:bm25"])["index"])["model"])["negatives"].ref == made["mine:bm25"].ref
    assert {state for _, state, _ in pipeline.status(ws, recipe)} == {"done"}

    events.clear()
    again = pipeline.run(ws, recipe, on_step=lambda step, state, art: events.append((step.name, state)))
    assert {state for _, state in events if state != "start"} == {"reused"}
    assert again["report"].path == report.path

    edited = _recipe(tmp_path, RECIPE.replace("random: {strategy: random, num_negatives: 2}", "random: {strategy: random, num_negatives: 1}"))
    states = {step.name: state for step, state, _ in pipeline.status(ws, edited)}
    branch = {"mine:random", "train:random", "index:model-random", "evaluate:random", "report"}
    assert {name for name, state in states.items() if state == "changed"} == branch
    events.clear()
    pipeline.run(ws, edited, on_step=lambda step, state, art: events.append((step.name, state)))
    assert {name for name, state in events if state == "built"} == branch
    assert evaluation.metrics(made["evaluate:bm25"]) == evaluation.metrics(ws.resolve(made["evaluate:bm25"].ref))


@pytest.mark.parametrize("text, expected", [
    (RECIPE.replace("strategies:", "strategy:"), "unknown section 'strategy'"),
    (RECIPE.replace("num_negatives: 2, range_max", "num_negative: 2, range_max"), "strategies.bm25: unknown field 'num_negative'"),
    (RECIPE.replace("loss: mnrl", "loss: hinge"), "train: field 'loss': bi-encoder loss must be one of"),
    (RECIPE.replace("baseline: untrained", "baseline: bm25x"), "report.baseline: name untrained, bm25-retrieval or a strategy"),
    (RECIPE.replace("  random: {", "  untrained: {"), "'untrained' names a baseline system"),
    (RECIPE.replace("synth: {", "synth: [{"), "not valid YAML"),
    (RECIPE.replace("synth:", "lucene:"), "dataset: unknown source 'lucene'"),
    (RECIPE + "cross_encoder: {negatives: dense}\n", "cross_encoder.negatives: name one of the strategies"),
])
def test_bad_recipes_name_the_file_and_section(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected) as info:
        _recipe(tmp_path, text)
    assert "recipe.yaml" in str(info.value)


def test_bad_recipe_exits_2_from_the_cli(runner, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.replace("loss: mnrl", "loss: hinge"), encoding="utf-8")
    result = runner.invoke(app, ["pipeline", "run", str(path), "-w", str(tmp_path / "ws")])
    assert result.exit_code == 2 and "r.yaml: train:" in result.output
    assert not (tmp_path / "ws").exists()


def test_shipped_recipes_parse() -> None:
    for path in sorted((Path(__file__).parents[1] / "recipes").glob("*.yaml")):
        recipe = pipeline.load(path)
        assert pipeline.plan(Workspace(Path("unused")), recipe)[-1].name == "report"
