"""The field's protocol in a recipe: train once (per seed), test on several targets; the report
folds seeds into mean ± sd and adds the mean over targets with its paired test."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from retrieval_cli import evaluate as evaluation
from retrieval_cli import pipeline
from retrieval_cli.cli import app
from retrieval_cli.report import reporting
from retrieval_cli.store import Workspace

RECIPE = """\
name: xb
dataset:
  synth: {documents: 120, test_queries: 8, train_queries: 12, seed: 3}
strategies:
  bm25: {strategy: bm25, num_negatives: 2, range_max: 20}
train: {loss: mnrl, batch_size: 4, max_seq_length: 40, eval_split: "", seeds: [13, 14]}
evaluate_on:
  home: {dataset: same, measures: ["nDCG@10"]}
  other: {dataset: {synth: {documents: 90, test_queries: 6, train_queries: 0, seed: 4}}, measures: ["nDCG@10"]}
report: {baseline: untrained, expect: expected.json, tolerance: 0.005}
"""


def test_recipe_plans_targets_and_seeds(tmp_path: Path) -> None:
    path = tmp_path / "xb.yaml"
    path.write_text(RECIPE, encoding="utf-8")
    names = [s.name for s in pipeline.plan(pipeline.load(path))]
    for step in ("target:other", "train:bm25-s13", "train:bm25-s14", "index:model-bm25-s13@other", "evaluate:bm25-s14@home",
                 "evaluate:untrained@other", "evaluate:bm25-retrieval@home", "index:bm25-retrieval@other"):
        assert step in names, step
    assert names.count("mine:bm25") == 1  # mined once; trained once per seed
    with pytest.raises(Exception, match="train.seeds: a seed repeats"):
        path.write_text(RECIPE.replace("seeds: [13, 14]", "seeds: [13, 13]"), encoding="utf-8")
        pipeline.load(path)


@pytest.mark.slow
def test_seeds_fold_into_mean_and_sd_and_targets_into_a_mean_column(tmp_path: Path, runner) -> None:  # noqa: ANN001
    path = tmp_path / "xb.yaml"
    path.write_text(RECIPE, encoding="utf-8")
    ws = Workspace(tmp_path / "ws")
    made = pipeline.run(ws, pipeline.load(path))
    table = reporting.load_table(made["report"])
    ndcg = table[table["measure"] == "nDCG@10"]

    for target in ("home", "other"):
        seeds = [evaluation.metrics(made[f"evaluate:bm25-s{s}@{target}"])["aggregate"]["nDCG@10"] for s in (13, 14)]
        dataset = evaluation.metrics(made[f"evaluate:bm25-s13@{target}"])["dataset"]
        (row,) = ndcg[(ndcg["dataset"] == dataset) & (ndcg["seeds"] == 2)].to_dict("records")
        assert row["value"] == pytest.approx(statistics.fmean(seeds)) and row["sd"] == pytest.approx(statistics.stdev(seeds))
        assert row["seed_values"] == pytest.approx(seeds)
        # Baselines equal evaluate run directly on the target, and deltas are taken on the same target.
        untrained = evaluation.metrics(made[f"evaluate:untrained@{target}"])["aggregate"]["nDCG@10"]
        (base,) = ndcg[(ndcg["dataset"] == dataset) & ndcg["baseline"]].to_dict("records")
        assert base["value"] == pytest.approx(untrained)
        assert row["delta"] == pytest.approx(row["value"] - untrained)
        assert 0 <= row["seeds_better"] <= 2

    # A seed is in every name a model is given; an index is named for its target, then its system.
    assert sorted(a.name for a in ws.artifacts("models")) == ["xb-bm25-s13", "xb-bm25-s14"]
    assert {"xb-other-bm25-s13", "xb-other-bm25-s14", "xb-home-untrained"} <= {a.name for a in ws.artifacts("indexes")}
    assert set(ndcg[ndcg["seeds"] == 2]["system"]) == {"xb-bm25: minilm + bm25 (10,20] sampled · mnrl · no-duplicates"}  # the seeds folded into one row

    means = ndcg[ndcg["dataset"] == "mean"]
    per_target = ndcg[(ndcg["dataset"] != "mean") & (ndcg["seeds"] == 2)]
    (trained,) = means[means["seeds"] == 2].to_dict("records")
    assert trained["value"] == pytest.approx(per_target["value"].mean()) and trained["targets"] == 2
    assert trained["wins"] + trained["ties"] + trained["losses"] == 2 and 0 <= trained["p"] <= 1
    assert "mean±sd over 2 training seeds" in made["report"].summary["legend"]
    markdown = made["report"].file("report.md").read_text(encoding="utf-8")
    assert "±" in markdown and " | mean nDCG@10 |" in markdown.splitlines()[0]  # a mean column per measure

    # Expectations: the recorded values check OK; one drifted past its tolerance is one FAIL line, exit 1.
    w = ["-w", str(ws.root)]
    assert runner.invoke(app, ["pipeline", "check", str(path), "--write", *w]).exit_code == 0
    ok = runner.invoke(app, ["pipeline", "check", str(path), *w])
    assert ok.exit_code == 0 and not [line for line in ok.output.splitlines() if line.startswith("FAIL")] and " 0 FAIL" in ok.output
    expected = json.loads((tmp_path / "expected.json").read_text(encoding="utf-8"))
    system = next(s for s in expected if s.startswith("xb-bm25"))
    dataset = next(iter(expected[system]))
    expected[system][dataset]["nDCG@10"] += 0.05  # past okish (0.02) too
    (tmp_path / "expected.json").write_text(json.dumps(expected), encoding="utf-8")
    failed = runner.invoke(app, ["pipeline", "check", str(path), *w])
    last = failed.output.strip().splitlines()[-1]
    assert failed.exit_code == 1 and last.startswith("error: ") and f"{system} | {dataset} nDCG@10: expected" in last
    assert "± 0.005, measured" in last
