"""Issue 19: where models run, the prompts put before their inputs, the similarity they compare by,
and the model card of a trained model, end to end on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import mine
from retrieval_cli import data as datasets
from retrieval_cli import evaluate as evaluation
from retrieval_cli import index as indexing
from retrieval_cli import models, training
from retrieval_cli.errors import InputError
from retrieval_cli.mining import MiningConfig
from retrieval_cli.mining import records as negatives
from retrieval_cli.store import Workspace
from retrieval_cli.training import clustering

PROMPTS = {"query": "query: ", "document": "passage: "}


def _corpus() -> datasets.Dataset:
    corpus = {f"d{i}": {"title": f"note {i}", "text": f"the {w} of river crossing number {i}"}
              for i, w in enumerate(["bridge", "ferry", "ford", "tunnel", "boat", "swim", "raft", "cable", "dam", "canal"])}
    queries = {"q1": "how to cross a river by boat", "q2": "a tunnel under the river", "t1": "ferry crossing", "t2": "building a dam"}
    qrels = {"test": {"q1": {"d4": 1}, "q2": {"d3": 1}}, "train": {"t1": {"d1": 1}, "t2": {"d8": 1}}}
    return datasets.Dataset(corpus, queries, qrels)


@pytest.fixture(scope="module")
def prompted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MiniLM saved with E5-style prompts configured (sentence-transformers' own config file)."""
    model = models.load_sentence_transformer(models.resolve("minilm"))
    model.prompts = dict(PROMPTS)
    folder = tmp_path_factory.mktemp("models") / "prompted"
    model.save_pretrained(str(folder))
    assert json.loads((folder / "config_sentence_transformers.json").read_text())["prompts"] == PROMPTS
    return folder


@pytest.fixture(scope="module")
def dot_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MiniLM without its Normalize module, saved as a dot-product model (TAS-B's kind)."""
    from sentence_transformers import SentenceTransformer

    base = models.load_sentence_transformer(models.resolve("minilm"))
    model = SentenceTransformer(modules=[base[0], base[1]], similarity_fn_name="dot", device="cpu")
    folder = tmp_path_factory.mktemp("models") / "dot"
    model.save_pretrained(str(folder))
    return folder


# ---- devices ---------------------------------------------------------------------------------
def test_devices_resolve_and_are_checked_before_any_model_loads() -> None:
    import torch

    assert models.resolve_device("cpu") == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert models.resolve_device("auto") == expected and models.resolve_device(None) == expected
    for bad in ("gpu", "cuda:x", "CUDA"):
        with pytest.raises(InputError, match="device must be auto, cpu, cuda, cuda:N or mps"):
            models.resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="asked for, but torch .* sees no CUDA device"):
            models.resolve_device("cuda:1")
        with pytest.raises(InputError, match="sees no CUDA device"):
            models.load_sentence_transformer(models.resolve("minilm"), device="cuda")
        with pytest.raises(InputError, match="sees no CUDA device"):
            training.trainer.training_device("cuda")
    # Configs check the spelling (a recipe for a GPU machine plans on a laptop); loading checks the machine.
    indexing.DenseConfig(device="cuda:1").check()
    with pytest.raises(InputError, match="device must be"):
        training.BiEncoderTrainConfig(device="gpu").check()


def test_the_requested_device_reaches_every_model_load_and_the_manifest_records_where_it_ran(ws: Workspace, monkeypatch) -> None:  # noqa: ANN001
    """Every command that loads a model passes its --device on; a CPU machine resolves auto to cpu."""
    heard: list[tuple[str, str | None]] = []
    real_st, real_ce = models.load_sentence_transformer, models.load_cross_encoder

    def st(spec, device=None, progress=None, precision="fp32"):  # noqa: ANN001, ANN202
        heard.append(("bi-encoder", device))
        return real_st(spec, device="cpu", precision=precision)

    def ce(spec, device=None, progress=None, precision="fp32"):  # noqa: ANN001, ANN202
        heard.append(("cross-encoder", device))
        return real_ce(spec, device="cpu", precision=precision)

    monkeypatch.setattr(models, "load_sentence_transformer", st)
    monkeypatch.setattr(models, "load_cross_encoder", ce)
    monkeypatch.setattr(models, "resolve_device", lambda requested="auto": requested or "auto")  # pass any string through
    art = datasets.save(ws, _corpus(), "dev", {"s": 1}).artifact
    dense = indexing.build_dense(ws, art, indexing.DenseConfig(device="cuda:3", batch_size=4)).artifact
    assert heard == [("bi-encoder", "cuda:3")] and dense.summary["device"] == "cpu"  # where it really ran
    evaluation.evaluate(ws, index=dense, config=evaluation.EvaluateConfig(device="cuda:2", rerank="minilm", rerank_depth=3))
    assert heard[1:] == [("bi-encoder", "cuda:2"), ("cross-encoder", "cuda:2")]
    mine(ws, art, MiningConfig(strategy="cross-encoder", cross_encoder="minilm", candidates="dense", num_negatives=2,
                               range_min=0, sampling="top", device="mps"), indexes=[dense])
    assert heard[3:] == [("bi-encoder", "mps"), ("cross-encoder", "mps")]
    clustering.cluster_queries(ws, art, clustering.ClusterConfig(k=2, restarts=1, device="cuda:1"))
    assert heard[5:] == [("bi-encoder", "cuda:1")]
    assert dense.version == indexing.build_dense(ws, art, indexing.DenseConfig(device="cpu", batch_size=4)).artifact.version


def test_reduced_precision_versions_the_index_and_stays_close_to_fp32(ws: Workspace) -> None:
    art = datasets.save(ws, _corpus(), "prec", {"s": 1}).artifact
    full = indexing.build_dense(ws, art, indexing.DenseConfig(batch_size=4)).artifact
    half = indexing.build_dense(ws, art, indexing.DenseConfig(batch_size=4, precision="bf16")).artifact
    assert half.version != full.version and "precision" not in full.config and half.config["precision"] == "bf16"
    a = np.load(full.file("embeddings.f16.npy")).astype(np.float32)
    b = np.load(half.file("embeddings.f16.npy")).astype(np.float32)
    cosines = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosines.min() > 0.99 and not np.array_equal(a, b)
    with pytest.raises(InputError, match="precision must be one of fp32, fp16, bf16"):
        indexing.DenseConfig(precision="int8").check()


# ---- prompts ---------------------------------------------------------------------------------
def test_a_models_own_prompts_reach_indexing_search_and_training(ws: Workspace, prompted: Path, monkeypatch) -> None:  # noqa: ANN001
    from sentence_transformers import SentenceTransformer

    data = _corpus()
    art = datasets.save(ws, data, "prompts", {"s": 1}).artifact
    index = indexing.build_dense(ws, art, indexing.DenseConfig(model=str(prompted), batch_size=4)).artifact
    assert index.summary["document_prompt"] == "passage: "
    direct = SentenceTransformer(str(prompted), device="cpu")
    texts = [data.doc_text(d) for d in data.corpus]
    stored = np.load(index.file("embeddings.f16.npy")).astype(np.float32)
    assert np.abs(stored - direct.encode_document(texts, normalize_embeddings=True)).max() < 2e-3  # float16 storage
    without = direct.encode(texts, normalize_embeddings=True)
    assert np.abs(stored - without).max() > 1e-2  # the prompt moved them: it was applied
    searcher = indexing.open_searcher(ws, index)
    queries = data.split_queries("test")
    vectors = searcher.encode_queries(queries)
    assert np.allclose(vectors, direct.encode_query(list(queries.values()), normalize_embeddings=True), atol=1e-5)
    explicit = indexing.build_dense(ws, art, indexing.DenseConfig(model=str(prompted), batch_size=4, document_prompt="doc: ")).artifact
    assert explicit.version != index.version and explicit.summary["document_prompt"] == "doc: "

    # Training: the rows reach the model with the query prompt on anchors, the document prompt on passages.
    seen: dict[str, set[str]] = {}
    real = SentenceTransformer.preprocess

    def spy(self, inputs, prompt=None, **kwargs):  # noqa: ANN001, ANN003, ANN202
        seen.setdefault(str(prompt), set()).update(inputs if isinstance(inputs, list) else [])
        return real(self, inputs, prompt=prompt, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "preprocess", spy)
    negs = mine(ws, art, MiningConfig(strategy="bm25", split="train", num_negatives=1, range_min=0, sampling="top")).artifact
    rows = negatives.rows(ws, negs, "n-tuple")[0]
    config = training.BiEncoderTrainConfig(base=str(prompted), batch_size=2, max_seq_length=32, eval_split="")
    trained = training.train_bi_encoder(ws, negs, config).artifact
    assert trained.summary["prompts"] == {"anchor": "query: ", "positive": "passage: ", "negative_1": "passage: "}
    assert {r["anchor"] for r in rows} <= seen["query: "]
    assert {r["positive"] for r in rows} | {r["negative_1"] for r in rows} <= seen["passage: "]
    assert training.bi_encoder.training_prompts(direct, training.BiEncoderTrainConfig(query_prompt="q: "), ["anchor", "positive", "label"]) == {
        "anchor": "q: ", "positive": "passage: "}


# ---- similarity ------------------------------------------------------------------------------
def test_a_dot_product_model_is_indexed_searched_and_mined_by_raw_inner_products(ws: Workspace, dot_model: Path) -> None:
    from sentence_transformers import SentenceTransformer

    data = _corpus()
    art = datasets.save(ws, data, "dot", {"s": 1}).artifact
    direct = SentenceTransformer(str(dot_model), device="cpu")
    assert models.similarity(direct) == "dot"
    index = indexing.build_dense(ws, art, indexing.DenseConfig(model=str(dot_model), batch_size=4)).artifact
    assert index.summary["similarity"] == "dot" and index.config["similarity"] == "dot"
    docs = direct.encode_document([data.doc_text(d) for d in data.corpus])
    norms = np.linalg.norm(docs, axis=1)
    assert norms.min() > 1.5  # raw vectors: a normalised index would hold unit vectors
    queries = data.split_queries("test")
    hits = indexing.open_searcher(ws, index).search(queries, 5)
    q = direct.encode_query(list(queries.values()))
    order = list(data.corpus)
    for row, qid in enumerate(queries):
        for doc_id, score in hits[qid]:
            assert score == pytest.approx(float(q[row] @ docs[order.index(doc_id)]), rel=2e-3)  # float16-free flat index
    negs = mine(ws, art, MiningConfig(strategy="dense", model=str(dot_model), split="train", num_negatives=2,
                                      range_min=0, sampling="top"), indexes=[index]).artifact
    train_q = data.split_queries("train")
    tq = direct.encode_query(list(train_q.values()))
    for record in negatives.read(negs):
        row = list(train_q).index(record["query_id"])
        for neg in record["negatives"]:
            assert neg["score"] == pytest.approx(float(tq[row] @ docs[order.index(neg["doc_id"])]), rel=2e-3)
        for pos in record["positives"]:
            assert pos["scores"]["dense"] == pytest.approx(float(tq[row] @ docs[order.index(pos["doc_id"])]), rel=2e-3)


def test_an_unsupported_similarity_is_one_clear_line() -> None:
    class Manhattan:
        similarity_fn_name = "manhattan"

    with pytest.raises(InputError, match="compares embeddings by manhattan; faiss inner-product indexes serve cosine and dot"):
        models.similarity(Manhattan(), "m")


# ---- model cards -----------------------------------------------------------------------------
def test_a_trained_model_folder_carries_a_card_with_its_lineage(ws: Workspace) -> None:
    from sentence_transformers import SentenceTransformer

    art = datasets.save(ws, _corpus(), "card", {"s": 1}).artifact
    negs = mine(ws, art, MiningConfig(strategy="bm25", split="train", num_negatives=1, range_min=0, sampling="top")).artifact
    config = training.BiEncoderTrainConfig(batch_size=2, max_seq_length=32, eval_split="", seed=21, learning_rate=3e-5)
    trained = training.train_bi_encoder(ws, negs, config).artifact
    card = (trained.file("model") / "README.md").read_text(encoding="utf-8")
    assert f"# {trained.ref}" in card and negs.ref in card and art.ref in card
    for fact in ("| loss | mnrl |", "| sampler | no-duplicates |", "| seed | 21 |", "| strategy | bm25 |", "| range_min | 0 |",
                 f"| examples | {trained.summary['examples']} |", "sentence-transformers:", "library_name: sentence-transformers"):
        assert fact in card, fact
    assert (f"retrieval-cli train --negatives {negs.ref} --kind bi-encoder --base minilm --loss mnrl "
            f"--batch-size 2 --lr 3e-05 --max-length 32 --seed 21 --eval-split '' --name {trained.name}") in card
    assert "README.md" in trained.manifest["files"] or "model/README.md" in trained.manifest["files"]
    assert SentenceTransformer(str(trained.file("model")), device="cpu").encode(["river"]).shape == (1, 384)


def test_cross_encoder_pairs_are_predicted_longest_first_and_returned_in_order() -> None:
    from retrieval_cli.models import predict_pairs

    class Recording:
        def __init__(self) -> None:
            self.groups: list[list[tuple[str, str]]] = []

        def predict(self, pairs, batch_size, show_progress_bar):  # noqa: ANN001, ANN201
            self.groups.append(list(pairs))
            return [float(len(q) + len(d)) for q, d in pairs]

    pairs = [("q", "d" * n) for n in (3, 40, 7, 90, 1, 12, 55)]
    model, heard = Recording(), []
    scores = predict_pairs(model, pairs, batch_size=1, done=heard.append)  # groups of 32 batches of 1
    assert scores == [float(1 + n) for n in (3, 40, 7, 90, 1, 12, 55)]  # each score at its pair's place
    assert [len(d) for _, d in model.groups[0]] == [90, 55, 40, 12, 7, 3, 1] and heard == [7]
