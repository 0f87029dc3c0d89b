"""A strategy's own training: a loss (or any train setting) for one strategy alone, compared on
the same negatives, and ADORE, whose negatives are retrieved inside training from the training
corpus's untrained index, so no mine step and no corpus encoded again."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval_cli import pipeline
from retrieval_cli.errors import InputError
from retrieval_cli.report import reporting
from retrieval_cli.store import Workspace

RECIPE = """\
name: ad
dataset:
  synth: {documents: 150, test_queries: 10, train_queries: 24, seed: 3}
strategies:
  bm25: {strategy: bm25, num_negatives: 2, range_max: 20}
  focal: {strategy: bm25, num_negatives: 2, range_max: 20, train: {loss: focal, focal_gamma: 1.0}}
  adore: {strategy: adore, top_k: 10}
train: {loss: mnrl, batch_size: 8, max_seq_length: 40, eval_split: "", seeds: [13, 14]}
evaluate: {measures: ["nDCG@10"]}
report: {baseline: bm25}
"""


def _load(tmp_path: Path, text: str):  # noqa: ANN202
    path = tmp_path / "ad.yaml"
    path.write_text(text, encoding="utf-8")
    return pipeline.load(path)


def test_a_strategys_own_train_settings_and_adore_are_planned(tmp_path: Path) -> None:
    steps = {s.name: s for s in pipeline.plan(_load(tmp_path, RECIPE))}
    assert "mine:adore" not in steps and steps["train:adore-s13"].deps == ["index:frozen"]
    assert steps["index:frozen"].deps == ["dataset"]
    adore = steps["train:adore-s14"].make.keywords["config"]
    assert (adore.top_k, adore.batch_size, adore.seed, adore.epochs) == (10, 8, 14, 1)  # the train section's budget, its seed
    focal = steps["train:focal-s13"].make.keywords["config"]
    assert (focal.loss, focal.focal_gamma, focal.batch_size) == ("focal", 1.0, 8)
    assert steps["train:bm25-s13"].make.keywords["config"].loss == "mnrl"
    assert steps["train:focal-s13"].spec != steps["train:bm25-s13"].spec and steps["mine:focal"].spec == steps["mine:bm25"].spec


@pytest.mark.parametrize("edit, error", [
    ("train: {loss: focal, focal_gamma: 1.0}", r"strategies\.focal\.train: give train settings for this strategy alone"),
    ("focal_gamma: 1.0}", r"strategies\.focal\.train\.focal_gamma: expected a number, got 'x'"),
    ("adore: {strategy: adore, top_k: 10}", r"strategies\.adore: unknown field 'num_negatives'"),
])
def test_a_strategys_settings_are_checked_by_name(tmp_path: Path, edit: str, error: str) -> None:
    bad = {
        "train: {loss: focal, focal_gamma: 1.0}": "train: {loss: focal, seeds: [1]}",
        "focal_gamma: 1.0}": "focal_gamma: x}",
        "adore: {strategy: adore, top_k: 10}": "adore: {strategy: adore, top_k: 10, num_negatives: 2}",
    }[edit]
    with pytest.raises(InputError, match=error):
        _load(tmp_path, RECIPE.replace(edit, bad))


@pytest.mark.slow
def test_losses_compared_on_one_mining_and_adore_reusing_the_untrained_embeddings(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    made = pipeline.run(ws, _load(tmp_path, RECIPE))
    # The focal strategy's negatives are the bm25 strategy's, linked, not mined again.
    assert made["mine:focal"].version == made["mine:bm25"].version and made["mine:focal"].manifest["linked_from"] == made["mine:bm25"].ref
    assert made["train:focal-s13"].config["loss"] == "focal" and made["train:bm25-s13"].config["loss"] == "mnrl"
    # ADORE's index of each target reuses the untrained model's embeddings of that corpus.
    adore_index, untrained = made["index:model-adore-s13"], made["index:untrained"]
    assert adore_index.file("embeddings.f16.npy").read_bytes() == untrained.file("embeddings.f16.npy").read_bytes()
    assert ws.inputs_of(made["train:adore-s13"])["index"].version == made["index:frozen"].version
    table = reporting.load_table(made["report"])
    systems = set(table[table["seeds"] == 2]["system"])
    assert "ad-adore: minilm + ADORE top-10 in-step negatives · adore" in systems and len(systems) == 3
