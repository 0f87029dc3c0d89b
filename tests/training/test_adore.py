"""ADORE: the query encoder trains against negatives retrieved from a frozen index in every step.
The loss is checked against a hand computation, each step's negatives against a direct faiss
search with that step's encoder, and the written model against the index's own document side."""

from __future__ import annotations

import math

import numpy as np
import pytest

from retrieval_cli import data as datasets
from retrieval_cli import index as indexing
from retrieval_cli.data import synthetic
from retrieval_cli.errors import InputError
from retrieval_cli.store import Artifact, Workspace
from retrieval_cli.training import adore


def test_the_pairwise_loss_weighs_each_pair_by_its_change_to_mrr() -> None:
    import torch

    # One positive at rank 3, negatives at ranks 1, 2 and 4 (cut 10): weights |1/3 - 1/r|.
    weights = adore.pair_weights([3], [1, 2, 4], cut=10)
    assert weights.tolist()[0] == pytest.approx([2 / 3, 1 / 6, 1 / 12])
    assert adore.pair_weights([12], [11, 2], cut=10).tolist()[0] == pytest.approx([0.0, 0.5])  # past the cut a rank gains nothing
    pos, neg = torch.tensor([2.0]), torch.tensor([3.0, 2.5, 1.0])
    by_hand = (2 / 3 * math.log1p(math.exp(1.0)) + 1 / 6 * math.log1p(math.exp(0.5)) + 1 / 12 * math.log1p(math.exp(-1.0))) / 3
    assert float(adore.adore_loss(pos, neg, weights)) == pytest.approx(by_hand)
    assert adore.pair_weights([3], [1, 2], cut=0).tolist() == [[1.0, 1.0]]  # cut 0: plain RankNet


def test_negatives_are_ranked_around_the_positives_the_same_search_found() -> None:
    assert adore._negative_ranks([2], 3) == [1, 3, 4]
    assert adore._negative_ranks([0, 1], 2) == [2, 3]
    assert adore.reciprocal_rank([4, 0]) == 0.25 and adore.reciprocal_rank([0]) == 0.0 and adore.reciprocal_rank([11]) == 0.0


def test_the_config_checks_its_fields() -> None:
    with pytest.raises(InputError, match="ADORE loss must be one of adore, mnrl"):
        adore.AdoreConfig(loss="mw").check()
    with pytest.raises(InputError, match="top-k must be >= 1"):
        adore.AdoreConfig(top_k=0).check()
    assert "metric_cut" not in adore.AdoreConfig(loss="mnrl").versioned() and "metric_cut" in adore.AdoreConfig().versioned()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Artifact]:
    ws = Workspace(tmp_path_factory.mktemp("adore") / "ws")
    data = datasets.save(ws, synthetic.generate(synthetic.SynthConfig(documents=80, test_queries=6, train_queries=12, seed=5)),
                         "small", {"source": "synth"}).artifact
    index = indexing.build_dense(ws, data, indexing.DenseConfig(model="minilm", device="cpu")).artifact
    return ws, index


def test_each_step_trains_on_a_direct_search_with_that_steps_encoder(small: tuple[Workspace, Artifact]) -> None:
    import faiss

    ws, index = small
    flat = faiss.read_index(str(index.file("index.faiss")))
    doc_ids = index.file("docids.txt").read_text(encoding="utf-8").splitlines()
    data = datasets.load(ws.inputs_of(index)["dataset"])
    positives = {text: {d for d, g in data.split_qrels("train")[qid].items() if g >= 1} for qid, text in data.split_queries("train").items()}
    seen: list[int] = []

    def inspect(step: int, texts: list[str], negatives: list[list[str]], model) -> None:  # noqa: ANN001
        vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        _, found = flat.search(np.asarray(vectors, dtype=np.float32), 5 + 4)
        for text, row, trained_on in zip(texts, found, negatives):
            direct = [doc_ids[i] for i in row if doc_ids[i] not in positives[text]][:5]
            assert trained_on == direct, (step, text)
        seen.append(step)

    config = adore.AdoreConfig(top_k=5, batch_size=4, epochs=2, learning_rate=1e-4, device="cpu")
    made = adore.train_adore(ws, index, config, name="small-adore", inspect=inspect).artifact
    assert seen == list(range(1, 7)) and made.summary["steps"] == 6 and made.summary["queries"] == 12
    assert ws.inputs_of(made)["index"].ref == index.ref
    log = made.file("training_log.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(log) == 6


def test_the_model_is_a_router_whose_documents_are_the_index_models(small: tuple[Workspace, Artifact]) -> None:
    from sentence_transformers import SentenceTransformer

    from retrieval_cli import models

    ws, index = small
    made = adore.train_adore(ws, index, adore.AdoreConfig(top_k=5, batch_size=4, learning_rate=1e-4, loss="mnrl", device="cpu"),
                             name="small-adore-mnrl").artifact
    loaded, base = SentenceTransformer(str(made.file("model")), device="cpu"), models.load_sentence_transformer(models.resolve("minilm"), device="cpu")
    texts = ["a blue bicycle with a basket", "the warranty of a kettle"]
    assert np.allclose(loaded.encode_document(texts), base.encode(texts), atol=1e-5)  # the frozen document side
    assert not np.allclose(loaded.encode_query(texts), base.encode(texts), atol=1e-4)  # the trained query side
    # Indexing a corpus with it reuses the index model's cached embeddings: no corpus is encoded.
    stages: list[str] = []
    dataset = ws.inputs_of(index)["dataset"]
    again = indexing.build_dense(ws, dataset, indexing.DenseConfig(model=made.ref, device="cpu"), name="small-adore-index",
                                 progress=lambda stage, done, total, **_: stages.append(stage)).artifact
    assert "encode corpus" not in stages and stages
    assert again.file("embeddings.f16.npy").read_bytes() == index.file("embeddings.f16.npy").read_bytes()


def test_an_index_adore_cannot_search_exactly_is_refused(small: tuple[Workspace, Artifact]) -> None:
    ws, index = small
    bm25 = indexing.build_bm25(ws, ws.inputs_of(index)["dataset"], indexing.BM25Config()).artifact
    with pytest.raises(InputError, match=r"ADORE retrieves exactly from a flat dense index; 'indexes/small-bm25@"):
        adore.train_adore(ws, bm25, adore.AdoreConfig(device="cpu"))
    with pytest.raises(InputError, match="has no split 'dev'"):
        adore.train_adore(ws, index, adore.AdoreConfig(split="dev", device="cpu"))


def test_the_train_command_runs_adore_from_an_index_and_refuses_the_wrong_source(runner, tmp_path) -> None:  # noqa: ANN001
    from retrieval_cli.cli import app

    w = ["-w", str(tmp_path / "ws")]
    assert runner.invoke(app, ["data", "synth", "--name", "s", "--documents", "80", "--train-queries", "12", "--test-queries", "4", *w]).exit_code == 0
    assert runner.invoke(app, ["index", "s", "--kind", "dense", "--device", "cpu", "-q", *w]).exit_code == 0
    done = runner.invoke(app, ["train", "--kind", "adore", "--index", "s-dense-minilm", "--top-k", "5", "--batch-size", "4", "--device", "cpu", "-q", *w])
    assert done.exit_code == 0, done.output
    assert "wrote model models/s-dense-minilm-adore" in done.output and "12 queries, 3 steps" in done.output
    for args, error in ((["--kind", "adore", "--negatives", "x", "--index", "s-dense-minilm"], "--kind adore trains from --index"),
                        (["--index", "s-dense-minilm"], "--kind bi-encoder trains from --negatives"),
                        (["--kind", "cross-encoder", "--negatives", "x", "--top-k", "3"], "--top-k applies to --kind adore only")):
        refused = runner.invoke(app, ["train", *args, *w])
        assert refused.exit_code == 2 and error in refused.output, (args, refused.output)
