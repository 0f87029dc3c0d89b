"""Recipes over ir_datasets ids: ``dataset: {irds: [...]}``, targets whose split is named by the
id it came from, and suites of targets the report averages apart (locally registered datasets;
nothing downloads)."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest

from conftest import register_irds
from retrieval_cli import pipeline
from retrieval_cli.data import irds
from retrieval_cli.errors import InputError
from retrieval_cli.report import reporting
from retrieval_cli.store import Workspace

WORDS = ("red shoes blue kettle green lamp black phone white desk grey chair steel bottle wool scarf oak table glass vase "
         "paper notebook leather wallet silver ring cotton shirt brass clock rubber boots").split()
_draw = random.Random(5)
CORPUS = {f"p{i}": " ".join(_draw.sample(WORDS, 8)) for i in range(60)}


def _split(first: int, count: int) -> tuple[dict[str, str], list[tuple[str, str, int]]]:
    queries = {f"q{i}": " ".join(CORPUS[f"p{i}"].split()[:3]) for i in range(first, first + count)}
    return queries, [(f"q{i}", f"p{i}", 2) for i in range(first, first + count)]


def _ids(tmp_path: Path) -> tuple[list[str], list[str]]:
    prefix = f"col-{uuid.uuid4().hex[:6]}"
    home = register_irds(tmp_path / prefix, prefix, CORPUS, {"train": _split(0, 12), "trec-dl-2019/judged": _split(20, 6)})
    others = []
    for n in range(2):  # a two-dataset suite, each its own corpus
        other = f"sub{n}-{uuid.uuid4().hex[:4]}"
        others += register_irds(tmp_path / other, other, CORPUS, {"test": _split(30 + 6 * n, 6)})
    return home, others


RECIPE = """\
name: ir
dataset: {{irds: [{train}, {dl19}]}}
strategies:
  bm25: {{strategy: bm25, num_negatives: 2, range_max: 20}}
train: {{loss: mnrl, batch_size: 4, max_seq_length: 32, eval_split: ""}}
evaluate_on:
  dl19: {{dataset: same, split: {dl19}, measures: ["nDCG@10", "R@100"]}}
  mini: {{suite: local, measures: ["nDCG@10", "R@100"]}}
report: {{baseline: untrained}}
"""


def _recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str = RECIPE) -> pipeline.Recipe:
    (train, dl19), others = _ids(tmp_path)
    monkeypatch.setitem(irds.SUITES, "local", tuple(others))
    path = tmp_path / "recipe.yaml"
    path.write_text(text.format(train=train, dl19=dl19), encoding="utf-8")
    return pipeline.load(path)


def test_ids_name_splits_and_a_suite_is_one_target_per_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = _recipe(tmp_path, monkeypatch)
    steps = {s.name: s for s in pipeline.plan(recipe)}
    members = [irds.suite_member(i) for i in irds.SUITES["local"]]
    assert [n for n in steps if n.startswith("target:")] == [f"target:mini-{m}" for m in members]
    assert steps["mine:bm25"].spec["split"] == "train"
    assert {steps[f"evaluate:bm25@{t}"].spec["split"] for t in ("dl19", f"mini-{members[0]}")} == {"dl19", "test"}
    assert steps["report"].spec["suites"] == {"mini": [f"ir-mini-{m}" for m in members]}


@pytest.mark.slow
def test_an_irds_recipe_runs_to_a_report_with_its_suite_mean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = _recipe(tmp_path, monkeypatch)
    ws = Workspace(tmp_path / "ws")
    made = pipeline.run(ws, recipe, isolate=False)  # locally registered ids live in this process
    assert made["dataset"].config["split_levels"] == {"dl19": 2} and made["dataset"].config["relevance_level"] == 1
    table = reporting.load_table(made["report"])
    members = [f"ir-mini-{irds.suite_member(i)}" for i in irds.SUITES["local"]]
    assert set(table["target"]) == {"ir/dl19", *members, "mini-mean", "mean"}
    for system, rows in table[table["measure"] == "nDCG@10"].groupby("system"):
        value = rows.set_index("target")["value"]
        assert value["mini-mean"] == pytest.approx((value[members[0]] + value[members[1]]) / 2), system
        assert value["mean"] == pytest.approx((value[members[0]] + value[members[1]] + value["ir/dl19"]) / 3), system
    trained = table[(table["target"] == "mini-mean") & (table["measure"] == "nDCG@10") & table["system"].str.startswith("ir-bm25")].iloc[0]
    per_target = table[table["target"].isin(members) & (table["measure"] == "nDCG@10") & (table["system"] == trained["system"])]
    assert trained["delta"] == pytest.approx(per_target["delta"].mean())
    assert "mini-mean" in made["report"].file("report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("evaluate_on", "expected"), [
    ("  x: {{dataset: same, split: beir/scifact/test}}", "'beir/scifact/test' is not among the dataset's ids"),
    ("  x: {{suite: nano-beir, datasets: [scifacts]}}", "evaluate_on.x: suite nano-beir has no 'scifacts'"),
    ("  x: {{suite: nano-beir, split: dev}}", "evaluate_on.x: unknown field 'split' (a suite takes: suite, datasets, measures, depth, self_hits)"),
    ("  x: {{dataset: {{irds: msmarco-pasage/dev/small}}}}", "evaluate_on.x.dataset.irds: unknown ir_datasets id 'msmarco-pasage/dev/small'; did you mean"),
])
def test_bad_ids_and_suites_name_the_recipe_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, evaluate_on: str, expected: str) -> None:
    text = RECIPE.split("evaluate_on:")[0] + "evaluate_on:\n" + evaluate_on + "\n"
    with pytest.raises(InputError, match=expected.replace("(", "\\(").replace(")", "\\)")):
        _recipe(tmp_path, monkeypatch, text)


BM25_ONLY = """\
name: regression
strategies: {{}}
baselines: [bm25-retrieval]
evaluate_on:
  mini: {{suite: local, measures: ["nDCG@10", "R@100"]}}
report: {{baseline: bm25-retrieval}}
"""


@pytest.mark.slow
def test_a_bm25_regression_recipe_needs_no_training_collection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """recipes/beir-bm25.yaml's shape: no dataset, no strategies, the BM25 baseline on each suite
    dataset; its values are the evaluations' own, and the suite mean is theirs averaged."""
    from retrieval_cli import evaluate as evaluation

    recipe = _recipe(tmp_path, monkeypatch, BM25_ONLY)
    steps = [s.name for s in pipeline.plan(recipe)]
    assert "dataset" not in steps and "index:bm25" not in steps and not any("untrained" in s or "hybrid" in s for s in steps)
    made = pipeline.run(Workspace(tmp_path / "ws"), recipe, isolate=False)
    table = reporting.load_table(made["report"])
    cells = table[(table["measure"] == "nDCG@10")].set_index("target")["value"]
    members = [f"regression-mini-{irds.suite_member(i)}" for i in irds.SUITES["local"]]
    for member in members:
        assert cells[member] == pytest.approx(evaluation.metrics(made[f"evaluate:bm25-retrieval@mini-{member.split('mini-')[1]}"])["aggregate"]["nDCG@10"])
    assert cells["mean"] == pytest.approx(sum(cells[m] for m in members) / 2) and "mini-mean" not in cells  # the suite is every target


@pytest.mark.parametrize(("text", "expected"), [
    (BM25_ONLY.replace("suite: local", "dataset: same"), "evaluate_on.mini: dataset: same needs the recipe's dataset section"),
    (BM25_ONLY.replace("[bm25-retrieval]", "[hybrid, bm25-retrieval]"), "baselines: hybrid fuses untrained and bm25-retrieval; list both"),
    (BM25_ONLY.replace("[bm25-retrieval]", "[bm25]"), "baselines: give a list of untrained, bm25-retrieval, hybrid"),
    (BM25_ONLY.replace("strategies: {{}}", "strategies: {{bm25: {{strategy: bm25}}}}"), "missing section 'dataset'"),
])
def test_baselines_and_a_missing_dataset_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected.replace("(", "\\(").replace(")", "\\)").replace("[", "\\[")):
        _recipe(tmp_path, monkeypatch, text)
