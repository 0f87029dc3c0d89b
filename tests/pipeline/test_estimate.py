"""``pipeline run --dry-run``'s bill: each step still to run priced by the cost model at its sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval_cli import pipeline
from retrieval_cli.cli import app
from retrieval_cli.pipeline import cost
from retrieval_cli.pipeline.estimate import estimate, machine_of
from retrieval_cli.store import Workspace

RECIPE = """\
name: bill
dataset:
  synth: {documents: 120, test_queries: 8, train_queries: 12, seed: 3}
strategies:
  bm25: {strategy: bm25, num_negatives: 2, range_max: 20}
  ce: {strategy: cross-encoder, cross_encoder: minilm, candidates: bm25, depth: 30, range_max: 30, num_negatives: 2}
train: {loss: mnrl, batch_size: 4, max_seq_length: 40, eval_split: "", epochs: 3}
report: {baseline: untrained}
"""

TABLE = {
    "import": cost.Cost(per_passage=0.5),
    "bm25 index": cost.Cost(fixed=2.0, per_passage=0.1, mb_fixed=100.0, mb_per_passage=1.0),
    "encode": cost.Cost(per_passage=1.0),
    "dense index": cost.Cost(per_passage=0.01),
    "bm25 mining": cost.Cost(fixed=1.0, per_query=2.0, per_pair=0.001),
    "cross-encoder": cost.Cost(per_query=0.25),
    "train": cost.Cost(per_query=10.0),
    "evaluate": cost.Cost(per_query=3.0),
    "evaluate (dense)": cost.Cost(per_query=4.0, per_pair=0.01),
    "fuse": cost.Cost(fixed=2.0),
    "report": cost.Cost(fixed=5.0),
}


@pytest.fixture
def recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pipeline.Recipe:
    monkeypatch.setattr(cost, "costs", lambda path=None: {"cpu": TABLE, "gpu": TABLE})
    path = tmp_path / "bill.yaml"
    path.write_text(RECIPE, encoding="utf-8")
    return pipeline.load(path)


def test_each_step_is_priced_at_its_own_sizes_by_hand(tmp_path: Path, recipe: pipeline.Recipe) -> None:
    bill = {e.step: e for e in estimate(Workspace(tmp_path / "ws"), recipe)}
    assert bill["dataset"].seconds == pytest.approx(0.5 * 120)
    assert bill["index:bm25"].seconds == pytest.approx(2.0 + 0.1 * 120) and bill["index:bm25"].peak_mb == pytest.approx(220.0)
    assert bill["mine:bm25"].seconds == pytest.approx(1.0 + 2.0 * 12 + 0.001 * 120 * 12)  # the train split's 12 queries
    assert bill["mine:ce"].seconds == pytest.approx(1.0 + 2.0 * 12 + 0.001 * 120 * 12 + 0.25 * 12 * 30)  # + 30 pairs a query scored
    assert bill["train:bm25"].seconds == pytest.approx(10.0 * 12 * 3)  # 12 queries, 3 epochs
    assert bill["index:model-bm25"].seconds == pytest.approx(1.0 * 120 + 0.01 * 120)
    assert bill["evaluate:bm25"].seconds == pytest.approx(4.0 * 8 + 0.01 * 120 * 8)  # the test split's 8 queries, a dense index
    assert bill["evaluate:bm25-retrieval"].seconds == pytest.approx(3.0 * 8)
    assert bill["evaluate:hybrid"].seconds == 2.0 and bill["report"].seconds == 5.0


def test_a_done_step_costs_nothing_and_later_steps_read_its_sizes(tmp_path: Path, recipe: pipeline.Recipe) -> None:
    ws = Workspace(tmp_path / "ws")
    pipeline.run(ws, recipe, steps=["dataset"], isolate=False)
    bill = {e.step: e for e in estimate(ws, recipe)}
    assert bill["dataset"].state == "done" and bill["dataset"].seconds == 0.0
    documents = ws.resolve("datasets/bill").summary["documents"]
    assert bill["index:bm25"].passages == documents and bill["index:bm25"].seconds == pytest.approx(2.0 + 0.1 * documents)


def test_the_dry_run_prints_the_bill_and_its_source(runner, tmp_path: Path, recipe: pipeline.Recipe) -> None:  # noqa: ANN001
    result = runner.invoke(app, ["pipeline", "run", str(recipe.path), "--dry-run", "-w", str(tmp_path / "ws")])
    assert result.exit_code == 0, result.output
    assert "the bill on 2 CPU cores" in result.output and "0 of" in result.output and "cost model: make bench" in result.output
    assert machine_of("cuda:1") == "gpu" and machine_of("auto") == "cpu"


def test_the_shipped_cost_tables_price_every_stage_on_both_machines() -> None:
    tables = json.loads(cost.COSTS_FILE.read_text(encoding="utf-8"))
    stages = {"import", "bm25 index", "encode", "dense index", "bm25 mining", "dense mining", "cross-encoder", "train", "evaluate",
              "evaluate (dense)", "fuse", "report"}
    assert set(tables["machines"]) == {"cpu", "gpu"}
    for machine, table in cost.costs().items():
        assert stages <= set(table), (machine, stages - set(table))
    gpu, cpu = cost.costs()["gpu"], cost.costs()["cpu"]
    assert gpu["encode"].per_passage < cpu["encode"].per_passage / 10 and gpu["bm25 index"] == cpu["bm25 index"]  # Lucene is no faster on a GPU


def test_a_judged_strategys_mining_is_not_priced_and_adore_trains_from_the_frozen_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cost, "costs", lambda path=None: {"cpu": TABLE, "gpu": TABLE})
    path = tmp_path / "bill.yaml"
    path.write_text(RECIPE.replace("  ce: {", "  judged: {strategy: bm25, num_negatives: 2, range_max: 20, judge: default}\n"
                                   "  adore: {strategy: adore, top_k: 5}\n  ce: {"), encoding="utf-8")
    bill = {e.step: e for e in estimate(Workspace(tmp_path / "ws"), pipeline.load(path))}
    assert bill["mine:judged"].seconds is None and bill["mine:bm25"].seconds is not None  # an LLM's speed is its backend's
    assert bill["index:frozen"].seconds == pytest.approx(1.0 * 120 + 0.01 * 120)
    assert bill["train:adore"].seconds == pytest.approx(10.0 * 12 * 3)  # priced as a training of its queries: an upper bound
