"""The planner's step builders, each on its own Planning: the steps it declares, their inputs,
and what their ``make`` is bound to (explicit arguments, never a loop's variables)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from retrieval_cli import evaluate as evaluation
from retrieval_cli import pipeline
from retrieval_cli.errors import InputError
from retrieval_cli.pipeline import builders, names
from retrieval_cli.pipeline.targets import Target

SAME = {"synth": {"documents": 50, "test_queries": 5, "train_queries": 10, "seed": 1}}


def _planning(tmp_path: Path) -> builders.Planning:
    return builders.Planning(tmp_path / "r.yaml", "r", "cpu", SAME)


def _target(label: str, step: str = names.DATASET) -> Target:
    return Target(step, f"@{label}", f"-{label}", evaluation.EvaluateConfig(split="test"))


def test_targets_on_one_corpus_share_its_dense_index_and_each_gets_three_baselines(tmp_path: Path) -> None:
    p = _planning(tmp_path)
    builders.training_queries(p, None)
    for target in (_target("a"), _target("b")):
        builders.target_steps(p, target, ("untrained", "bm25-retrieval", "hybrid"), "minilm")
    made = {s.name: s for s in p.steps}
    assert [n for n in made if n.startswith("index:untrained")] == ["index:untrained@a"]  # b reuses a's
    assert made["evaluate:untrained@b"].deps == ["index:untrained@a"] and made["evaluate:bm25-retrieval@b"].deps == [names.BM25]
    assert made["evaluate:hybrid@b"].deps == ["evaluate:untrained@b", "evaluate:bm25-retrieval@b"]
    assert p.evaluated == [f"evaluate:{s}@{t}" for t in "ab" for s in ("untrained", "bm25-retrieval", "hybrid")]
    assert all(isinstance(s.make, partial) for s in p.steps if s.name != names.DATASET)
    assert made["evaluate:untrained@b"].make.keywords == {"index": "index:untrained@a", "config": made["evaluate:untrained@b"].make.keywords["config"],
                                                         "name": "r-untrained-b"}


def test_a_seeded_round_mines_per_seed_with_that_seeds_model_and_starts_from_it(tmp_path: Path) -> None:
    p = _planning(tmp_path)
    builders.training_queries(p, None)
    tr = builders.training_plan(p, {"seeds": [13, 14], "eval_split": ""}, {"a": {}, "b": {}}, None)
    targets = [_target("x")]
    builders.target_steps(p, targets[0], ("untrained",), tr.config.base)
    strategies = {"a": {"strategy": "dense"}, "b": {"strategy": "dense", "model": "trained:a", "base": "trained:a"}}
    for label, fragment in strategies.items():
        st = builders.strategy_plan(p, label, fragment, strategies, None, tr.seeds, targets)
        builders.mine_steps(p, st, tr.seeds)
        for seed in tr.seeds:
            builders.trained_steps(p, st, tr, seed, targets)
    made = {s.name: s for s in p.steps}
    assert "mine:a" in made and {"mine:b-s13", "mine:b-s14"} <= set(made) and "mine:b" not in made
    assert made["mine:b-s14"].deps[-1] == "train:a-s14" and made["mine:b-s14"].make.keywords["model_step"] == "train:a-s14"
    assert made["train:b-s14"].deps == ["mine:b-s14", "train:a-s14"] and made["train:b-s14"].make.keywords["start"] == "train:a-s14"
    assert made["train:b-s13"].spec["seed"] == 13 and made["train:b-s13"].make.keywords["config"].seed == 13
    assert made["index:model-b-s13@x"].deps == [names.DATASET, "train:b-s13"]
    assert made["evaluate:b-s13@x"].make.keywords["name"] == "r-b-s13-x"


def test_a_strategy_named_as_a_baseline_and_a_teacher_without_its_section_are_refused(tmp_path: Path) -> None:
    p = _planning(tmp_path)
    with pytest.raises(InputError, match="'hybrid' names a baseline system"):
        builders.strategy_plan(p, "hybrid", {}, {"hybrid": {}}, None, [], [_target("x")])
    with pytest.raises(InputError, match="cross_encoder: trained needs a cross_encoder section"):
        builders.strategy_plan(p, "ce", {"strategy": "cross-encoder", "cross_encoder": "trained"}, {"ce": {}}, None, [], [_target("x")])


def test_every_shipped_recipe_plans_only_bound_makes(tmp_path: Path) -> None:
    """No step's make is a lambda of the planner: each is a partial of a named builder function
    (or a dataset source's maker), so no step can silently use another loop pass's values."""
    from conftest import REPO

    for path in sorted((REPO / "recipes").glob("*.yaml")):
        for step in pipeline.plan(pipeline.load(path)):
            assert isinstance(step.make, partial) or step.kind == "datasets", (path.name, step.name)


def test_a_recipe_may_name_max_seq_length_as_the_cli_does(tmp_path: Path) -> None:
    p = _planning(tmp_path)
    builders.training_queries(p, None)
    one = builders.training_plan(p, {"max_length": 96}, {"a": {}}, None)
    other = builders.training_plan(_planning(tmp_path), {"max_seq_length": 96}, {"a": {}}, None)
    assert one.config.max_seq_length == 96 and one.spec == other.spec
    with pytest.raises(InputError, match="give max_seq_length or max_length"):
        builders.training_plan(_planning(tmp_path), {"max_length": 96, "max_seq_length": 64}, {"a": {}}, None)
