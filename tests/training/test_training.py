"""Cross-encoder training from the packaged MiniLM, and its use as reranker and mining teacher."""

from __future__ import annotations

import json
import math

import pytest

from conftest import mine
from retrieval_cli import evaluate as evaluation
from retrieval_cli import index as indexing
from retrieval_cli import models, training
from retrieval_cli.errors import InputError
from retrieval_cli.mining import MiningConfig
from retrieval_cli.store import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cross_encoder(session_ws: Workspace, tiny):  # noqa: ANN001, ANN201
    negs = mine(session_ws, tiny, MiningConfig(strategy="bm25:3,random:1", range_max=30, range_min=0, sampling="top")).artifact
    steps = []
    result = training.train_cross_encoder(
        session_ws, negs, training.CrossEncoderTrainConfig(epochs=1, batch_size=16, max_length=64),
        progress=lambda stage, done, total: steps.append((done, total)),
    )
    return result, negs, steps


def test_training_writes_a_loadable_model_artifact(session_ws, cross_encoder) -> None:  # noqa: ANN001
    result, negs, steps = cross_encoder
    art = result.artifact
    pairs = sum(1 for _ in open(negs.file("negatives.jsonl")))  # queries
    assert art.kind == "models" and art.summary["kind"] == "cross-encoder"
    assert art.summary["examples"] > pairs  # positives and negatives of every query
    assert art.summary["steps"] == math.ceil(art.summary["examples"] / 16)
    assert steps[-1] == (art.summary["steps"], art.summary["steps"])
    assert session_ws.inputs_of(art)["negatives"].version == negs.version
    model = models.load_cross_encoder(models.resolve(art.ref, session_ws))
    scores = model.predict([("query text", "a document"), ("another", "text")])
    assert all(math.isfinite(float(s)) for s in scores)
    again = training.train_cross_encoder(session_ws, negs, training.CrossEncoderTrainConfig(epochs=1, batch_size=16, max_length=64))
    assert again.reused


def test_cross_encoder_strategy_orders_by_teacher_and_scores_everything(session_ws, tiny, cross_encoder) -> None:  # noqa: ANN001
    ref = cross_encoder[0].artifact.ref
    config = MiningConfig(strategy="cross-encoder", range_max=15, num_negatives=3, cross_encoder=ref, range_min=0, sampling="top")
    art = mine(session_ws, tiny, config).artifact
    assert "cross_encoder" in session_ws.inputs_of(art)
    for line in art.file("negatives.jsonl").read_text().splitlines():
        record = json.loads(line)
        negs = record["negatives"]
        assert [n["rank"] for n in negs] == sorted(n["rank"] for n in negs)
        assert [n["ce_score"] for n in negs] == sorted((n["ce_score"] for n in negs), reverse=True)
        assert all(1 <= n["first_stage_rank"] <= 15 for n in negs)
        assert all("cross-encoder" in p["scores"] for p in record["positives"])
    # Teacher scores for a mixture's random negatives too, so n-tuple-scores works.
    mixed = mine(session_ws, tiny, MiningConfig(strategy="bm25:1,random:1", range_max=15, cross_encoder=ref, range_min=0, sampling="top")).artifact
    for line in mixed.file("negatives.jsonl").read_text().splitlines():
        assert all(n["ce_score"] is not None for n in json.loads(line)["negatives"])


def test_reranking_with_the_trained_model(session_ws, tiny, cross_encoder) -> None:  # noqa: ANN001
    index = indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact
    config = evaluation.EvaluateConfig(rerank=cross_encoder[0].artifact.ref, rerank_depth=10)
    result = evaluation.evaluate(session_ws, index=index, config=config).artifact
    assert "reranker" in session_ws.inputs_of(result)
    assert 0.0 <= result.summary["metrics"]["nDCG@10"] <= 1.0


def test_training_options_are_checked() -> None:
    with pytest.raises(InputError, match="loss must be one of bce, listnet, lambda"):
        training.CrossEncoderTrainConfig(loss="mse").check()
    with pytest.raises(InputError, match="learning rate"):
        training.CrossEncoderTrainConfig(learning_rate=3).check()


def test_listwise_training_takes_one_list_per_query(session_ws, cross_encoder) -> None:  # noqa: ANN001
    negs = cross_encoder[1]
    lists = sum(1 for line in open(negs.file("negatives.jsonl")) if json.loads(line)["negatives"])
    config = training.CrossEncoderTrainConfig(loss="listnet", batch_size=8, max_length=96)
    art = training.train_cross_encoder(session_ws, negs, config).artifact
    assert art.summary["examples"] == lists and art.summary["steps"] == math.ceil(lists / 8)


def test_three_argument_progress_callbacks_still_work() -> None:
    from retrieval_cli.progress import accepting_detail

    seen = []
    old_style = accepting_detail(lambda stage, done, total: seen.append((stage, done, total)))
    old_style("train", 1, 2, detail="loss 0.1")
    new_style = lambda stage, done, total, *, detail="": seen.append(detail)  # noqa: E731
    assert accepting_detail(new_style) is new_style
    new_style("train", 2, 2, detail="loss 0.05")
    assert seen == [("train", 1, 2), "loss 0.05"]


def test_model_artifact_fingerprint_from_its_manifest_equals_hashing_the_weights(tmp_path) -> None:  # noqa: ANN001
    from retrieval_cli import models
    from retrieval_cli.store import Workspace

    def builder(folder):  # noqa: ANN001, ANN202
        for rel, text in (("model/config.json", "{}"), ("model/a.b/x.txt", "x"), ("model/a/y.json", "y"),
                          ("model/model.safetensors", "w" * 1000), ("model/notes.md", "not a weight"), ("training_log.jsonl", "")):
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text, encoding="utf-8")

    ws = Workspace(tmp_path)
    art = ws.build("models", "fp", {"kind": "bi-encoder"}, {}, builder).artifact
    assert models.resolve("models/fp", ws).fingerprint == models._weights_fingerprint(str(art.path / "model"))
