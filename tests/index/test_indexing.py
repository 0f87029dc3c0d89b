from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import interrupting
from retrieval_cli import data as datasets
from retrieval_cli import evaluate as evaluation
from retrieval_cli import index as indexing
from retrieval_cli import models
from retrieval_cli.data import synthetic
from retrieval_cli.errors import InputError
from retrieval_cli.index import encoding
from retrieval_cli.store import CacheEntry, Workspace, npy


def test_bm25_reuse_and_parameter_change(session_ws: Workspace, tiny) -> None:
    first = indexing.build_bm25(session_ws, tiny, indexing.BM25Config())
    again = indexing.build_bm25(session_ws, tiny, indexing.BM25Config())
    assert again.reused and again.artifact.version == first.artifact.version
    assert first.artifact.config["k1"] == 0.9 and first.artifact.config["b"] == 0.4
    assert "java" in first.artifact.manifest["software"]
    changed = indexing.build_bm25(session_ws, tiny, indexing.BM25Config(k1=1.2))
    assert not changed.reused and changed.artifact.version != first.artifact.version
    ev_a = evaluation.evaluate(session_ws, index=first.artifact).artifact
    ev_b = evaluation.evaluate(session_ws, index=changed.artifact).artifact
    assert ev_a.version != ev_b.version
    assert evaluation.evaluate(session_ws, index=first.artifact).reused


def test_bm25_ranks_exact_code_queries_first(session_ws: Workspace, tiny) -> None:
    index = indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact
    data = datasets.load(tiny)
    searcher = indexing.open_searcher(session_ws, index)
    doc_id, doc = next(iter(data.corpus.items()))
    code = doc["title"].split()[1]  # "<Brand> <CODE> <category>"
    hits = searcher.search({"probe": code}, 5)["probe"]
    assert hits[0][0] == doc_id and hits[0][1] > hits[1][1]


def test_bm25_config_is_checked() -> None:
    with pytest.raises(InputError, match="b must be in"):
        indexing.BM25Config(b=1.5).check()
    with pytest.raises(InputError, match="stemmer"):
        indexing.BM25Config(stemmer="snowball").check()


def test_flat_search_by_blas_keeps_faiss_default_hits_and_setting(session_ws: Workspace, tiny) -> None:
    import faiss

    flat = indexing.build_dense(session_ws, tiny, indexing.DenseConfig()).artifact
    searcher = indexing.open_searcher(session_ws, flat)
    stored = np.load(flat.file("embeddings.f16.npy")).astype(np.float32)
    vectors = stored[:40] + np.random.default_rng(3).normal(0, 0.05, stored[:40].shape).astype(np.float32)
    before = faiss.cvar.distance_compute_blas_threshold
    hits = searcher.search_vectors([f"q{i}" for i in range(40)], vectors, 10)
    assert faiss.cvar.distance_compute_blas_threshold == before  # the process-wide setting is restored
    assert before > 40  # so this direct search takes faiss's per-query path, the BLAS one above did not
    scores, idx = faiss.read_index(str(flat.file("index.faiss"))).search(vectors, 10)
    ids = flat.file("docids.txt").read_text().splitlines()
    for i in range(40):
        assert [d for d, _ in hits[f"q{i}"]] == [ids[j] for j in idx[i]]
        assert np.abs(np.array([s for _, s in hits[f"q{i}"]]) - scores[i]).max() < 1e-5


def test_a_flat_index_added_in_chunks_from_the_file_is_the_index_of_one_add(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """Issue 21: a flat index is filled from the mapped vectors' file a chunk at a time, into storage
    sized once; its bytes equal faiss's own index over the whole array."""
    import faiss

    from retrieval_cli.index import dense

    vectors = np.random.default_rng(5).standard_normal((1003, 16)).astype(np.float32)
    np.save(tmp_path / "v.npy", vectors)
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    monkeypatch.setattr(npy, "CHUNK_BYTES", 100 * 16 * 4)  # 100 rows a chunk: 11 adds
    reads: list[int] = []
    real_fromfile = np.fromfile
    monkeypatch.setattr(np, "fromfile", lambda *a, **k: reads.append(k["count"]) or real_fromfile(*a, **k))
    built = dense._faiss_index(mapped, indexing.DenseConfig())
    assert reads == [1600] * 10 + [48]  # read from the file by plain reads, not through the map
    whole = faiss.IndexFlatIP(16)
    whole.add(vectors)
    assert np.array_equal(faiss.serialize_index(built), faiss.serialize_index(whole))
    # a slice of a map keeps its parent's file and offset: it is sliced, never read from the file's start
    assert np.array_equal(np.concatenate(list(npy.row_chunks(mapped[500:]))), vectors[500:]) and len(reads) == 11


@pytest.mark.slow
def test_dense_index_flat_hnsw_ivfpq(session_ws: Workspace, tiny) -> None:
    flat = indexing.build_dense(session_ws, tiny, indexing.DenseConfig()).artifact
    hnsw = indexing.build_dense(session_ws, tiny, indexing.DenseConfig(faiss="hnsw")).artifact
    assert flat.version != hnsw.version and flat.name == "tiny-dense-minilm"
    data = datasets.load(tiny)
    # stored float16 embeddings equal a direct sentence-transformers encode
    stored = np.load(flat.file("embeddings.f16.npy"))
    ids = flat.file("docids.txt").read_text().splitlines()
    model = models.load_sentence_transformer(models.resolve("minilm"))
    direct = model.encode([data.doc_text(d) for d in ids[:8]], normalize_embeddings=True)
    assert stored.dtype == np.float16 and stored.shape == (len(data.corpus), 384)
    assert np.abs(stored[:8].astype(np.float32) - direct).max() < 2e-3
    queries = data.split_queries("test")
    a = indexing.open_searcher(session_ws, flat).search(queries, 10)
    b = indexing.open_searcher(session_ws, hnsw).search(queries, 10)
    same = sum([d for d, _ in a[q]] == [d for d, _ in b[q]] for q in queries)
    assert same >= 0.95 * len(queries)
    ivf = indexing.build_dense(session_ws, tiny, indexing.DenseConfig(faiss="ivfpq", nlist=4, nprobe=4)).artifact
    assert evaluation.metrics(evaluation.evaluate(session_ws, index=ivf).artifact)["aggregate"]["nDCG@10"] > 0.1


@pytest.mark.slow
def test_synthetic_dataset_separates_bm25_and_dense(session_ws: Workspace) -> None:
    """The demo dataset must make comparisons meaningful: both in [0.3, 0.9], clearly different."""
    full = datasets.save(session_ws, synthetic.generate(synthetic.SynthConfig()), "synthetic", {"source": "synth"}).artifact
    scores = {}
    for name, result in (
        ("bm25", indexing.build_bm25(session_ws, full, indexing.BM25Config())),
        ("dense", indexing.build_dense(session_ws, full, indexing.DenseConfig())),
    ):
        scores[name] = evaluation.metrics(evaluation.evaluate(session_ws, index=result.artifact).artifact)["aggregate"]["nDCG@10"]
    assert 0.3 <= scores["bm25"] <= 0.9 and 0.3 <= scores["dense"] <= 0.9
    assert abs(scores["bm25"] - scores["dense"]) >= 0.05


def test_unknown_model_is_clear() -> None:
    with pytest.raises(Exception, match="unknown model 'nonsense'"):
        models.resolve("nonsense")
    assert models.short_label("sentence-transformers/all-MiniLM-L6-v2") == "all-minilm-l6-v2"


@pytest.mark.slow
def test_rerank_with_a_real_cross_encoder_keeps_the_tail(session_ws: Workspace, tiny) -> None:
    """MiniLM with a fresh one-logit head is a real (untrained) CrossEncoder: the mechanics hold."""
    from retrieval_cli.evaluate import runs

    index = indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact
    plain = evaluation.evaluate(session_ws, index=index, config=evaluation.EvaluateConfig(depth=20)).artifact
    config = evaluation.EvaluateConfig(depth=20, rerank="minilm", rerank_depth=5)
    reranked = evaluation.evaluate(session_ws, index=index, config=config).artifact
    assert reranked.name.endswith("-rerank-minilm") and reranked.version != plain.version
    before, after = runs.read_trec(plain.file("run.trec")), runs.read_trec(reranked.file("run.trec"))
    assert before.keys() == after.keys()
    for qid in before:
        head_b, head_a = [d for d, _ in before[qid][:5]], [d for d, _ in after[qid][:5]]
        assert sorted(head_b) == sorted(head_a)
        assert [d for d, _ in before[qid][5:]] == [d for d, _ in after[qid][5:]]


def test_bm25_document_scores_equal_search_scores(session_ws: Workspace, tiny) -> None:
    # Margins compare a positive's score (computed per pair) with candidates' (from search).
    index = indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact
    searcher = indexing.open_searcher(session_ws, index)
    data = datasets.load(tiny)
    qid, text = next(iter(data.split_queries("test").items()))
    hits = searcher.search({qid: text}, 10)[qid]
    scores = searcher.score([(text, d) for d, _ in hits] + [(text, "no-such-doc")])
    assert scores[:-1] == pytest.approx([s for _, s in hits], abs=1e-4)
    assert scores[-1] == 0.0


def test_corpus_embeddings_are_cached_by_weights_not_name(ws: Workspace, monkeypatch) -> None:
    data = synthetic.generate(synthetic.SynthConfig(documents=40, test_queries=4, train_queries=2, seed=5))
    art = datasets.save(ws, data, "emb", {"source": "test"}).artifact
    by_alias = indexing.build_dense(ws, art, indexing.DenseConfig(model="minilm")).artifact
    folder = models.resolve("minilm").location

    def no_encoding(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the corpus was encoded again")

    monkeypatch.setattr(models, "load_sentence_transformer", no_encoding)
    by_path = indexing.build_dense(ws, art, indexing.DenseConfig(model=folder), name="emb-by-path").artifact
    assert by_path.version != by_alias.version  # a different artifact (its config names the model)...
    np.testing.assert_array_equal(  # ...built from the same cached vectors
        np.load(by_alias.file("embeddings.f16.npy")), np.load(by_path.file("embeddings.f16.npy"))
    )
    # Same corpus under another dataset (new queries only): still no encoding.
    data.queries["extra"] = "one more query"
    data.qrels["extra"] = {"extra": {next(iter(data.corpus)): 1}}
    other = datasets.save(ws, data, "emb-more-queries", {"source": "test"}).artifact
    indexing.build_dense(ws, other, indexing.DenseConfig(model="minilm"))


class _WordModel:
    """A stand-in encoder whose tokens are words: lengths and batches are easy to count by hand."""

    max_seq_length = 4

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def tokenizer(self, texts, truncation, max_length, **_):  # noqa: ANN001, ANN003, ANN201
        ids = [[0, *range(len(t.split())), 0] for t in texts]  # [CLS] words [SEP]
        return {"input_ids": [i[:max_length] if truncation else i for i in ids]}

    def encode(self, texts, batch_size, **_):  # noqa: ANN001, ANN003, ANN201
        self.calls.append(list(texts))
        return np.array([[len(t.split()), 1.0] for t in texts], dtype=np.float32)


def test_encoding_batches_group_texts_by_tokens_not_characters() -> None:
    model = _WordModel()
    texts = ["a b", "internationalisation", "x y z w v", "c d e", "longwordinglyish words"]
    assert indexing.token_lengths(model, texts).tolist() == [4, 3, 4, 4, 4]  # 2+2, 1+2, truncated at 4
    assert indexing.token_lengths(model, texts, prompt="query: ").tolist() == [4, 4, 4, 4, 4]
    model.max_seq_length = None
    assert indexing.token_lengths(model, texts).tolist() == [4, 3, 7, 5, 4]
    chunks = indexing.encoding_chunks(model, texts, batch_size=2)
    assert [c.tolist() for c in chunks] == [[2, 3, 0, 4, 1]]  # one chunk of 2 * 8, most tokens first, ties stable
    vectors = indexing.encode_texts(model, texts, 2, "encode", lambda *a: None)
    # one encode call per batch of 2, in token order; vectors land back in the texts' order
    assert model.calls == [["x y z w v", "c d e"], ["a b", "longwordinglyish words"], ["internationalisation"]]
    assert vectors[:, 0].tolist() == [2, 1, 5, 3, 2]
    assert indexing.token_lengths(object(), ["abc", "a"], prompt="p").tolist() == [4, 2]  # no tokenizer: characters


def test_encoding_batches_on_an_accelerator_are_ordered_by_characters_without_tokenizing() -> None:
    class _GpuWordModel(_WordModel):
        device = "cuda:0"

        def tokenizer(self, *a, **k):  # noqa: ANN002, ANN003, ANN201
            raise AssertionError("a GPU encode must not tokenize its texts twice")

    model = _GpuWordModel()
    model.max_seq_length = None
    texts = ["a b", "internationalisation", "x y z w v", "c d e", "longwordinglyish words"]
    assert indexing.sort_lengths(model, texts, prompt="p: ").tolist() == [6, 23, 12, 8, 25]
    chunks = indexing.encoding_chunks(model, texts, batch_size=2)
    assert [c.tolist() for c in chunks] == [[4, 1, 2, 3, 0]]  # most characters first, as sentence-transformers sorts
    vectors = indexing.encode_texts(model, texts, 2, "encode", lambda *a: None)
    assert model.calls == [["longwordinglyish words", "internationalisation"], ["x y z w v", "c d e"], ["a b"]]
    assert vectors[:, 0].tolist() == [2, 1, 5, 3, 2]  # back in the texts' order


def test_float16_vectors_are_written_in_chunks_as_np_save_writes_them(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    vectors = np.random.default_rng(0).standard_normal((1001, 8)).astype(np.float32)
    monkeypatch.setattr(npy, "CHUNK_BYTES", 100 * 8 * 2)  # 100 rows of float16 a chunk
    npy.write_npy(tmp_path / "chunked.npy", vectors, np.float16)
    np.save(tmp_path / "whole.npy", vectors.astype(np.float16))
    assert (tmp_path / "chunked.npy").read_bytes() == (tmp_path / "whole.npy").read_bytes()


def test_damaged_embedding_cache_is_recomputed_not_trusted(ws: Workspace) -> None:
    data = synthetic.generate(synthetic.SynthConfig(documents=30, test_queries=3, train_queries=0, seed=9))
    art = datasets.save(ws, data, "emb-damaged", {"source": "test"}).artifact
    spec = models.resolve("minilm")
    config = indexing.DenseConfig(model="minilm")
    ids, good, _ = indexing.corpus_embeddings(ws, art, spec, config)
    good = np.array(good)  # the entry's file, mapped: copied before the test damages that file in place
    (entry,) = (ws.root / ".cache" / "embeddings").iterdir()
    damaged = np.load(entry / "embeddings.npy")
    damaged[0] = 0.0  # same size, different vectors: only the checksum can tell
    np.save(entry / "embeddings.npy", damaged)
    again_ids, again, _ = indexing.corpus_embeddings(ws, art, spec, config)
    assert again_ids == ids
    cached_ids, cached, _ = indexing.corpus_embeddings(ws, art, spec, config)
    assert isinstance(cached, np.memmap) and cached_ids == ids  # a cache hit maps the file, no copy
    np.testing.assert_array_equal(cached, again)
    np.testing.assert_allclose(again, good, atol=1e-5)
    assert CacheEntry(entry).load() is not None  # the recomputed entry is whole: sizes and checksums match


def test_sharded_dense_index_equals_unsharded_byte_for_byte(tmp_path, runner, monkeypatch) -> None:  # noqa: ANN001
    from retrieval_cli.cli import app

    data = synthetic.generate(synthetic.SynthConfig(documents=70, test_queries=3, train_queries=0, seed=11))
    results = {}
    for how in ("whole", "sharded"):
        ws = Workspace(tmp_path / how)
        art = datasets.save(ws, data, "sh", {"source": "test"}).artifact
        config = indexing.DenseConfig(batch_size=4)  # 32-text chunks: 70 passages make 3 chunks
        if how == "sharded":
            parts = [indexing.encode_shard(ws, art, config, (i, 2)) for i in range(2)]
            assert [p.units for p in parts] == [2, 1] and sum(p.items for p in parts) == 70
            assert indexing.encode_shard(ws, art, config, (0, 2)).reused
            monkeypatch.setattr(encoding, "_encode_chunk", lambda *a, **k: pytest.fail("assembling encoded a chunk again"))
        results[how] = indexing.build_dense(ws, art, config).artifact
    whole, sharded = results["whole"], results["sharded"]
    assert whole.version == sharded.version
    for name in ("embeddings.f16.npy", "docids.txt", "index.faiss"):
        assert whole.file(name).read_bytes() == sharded.file(name).read_bytes(), name
    assert not list((tmp_path / "sharded" / ".cache" / "embeddings").glob("*.parts"))  # assembled, parts removed
    out = runner.invoke(app, ["index", "sh", "--kind", "dense", "--shard", "2/2", "-w", str(tmp_path / "whole")])
    assert out.exit_code == 2 and "--shard 2/2: need 0 <= I < N" in out.output


def test_bm25_searcher_collects_the_jvm_heap_beyond_its_limit(session_ws: Workspace, tiny, monkeypatch) -> None:
    from retrieval_cli.index import lucene

    index = indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact
    searcher = lucene.BM25Searcher(index.file("lucene"), k1=0.9, b=0.4, stemmer="porter")
    queries = dict(list(datasets.load(tiny).split_queries("test").items())[:3])
    searcher.search(queries, 10)
    assert searcher.collections == 0  # a small search stays far under 256 MB
    monkeypatch.setattr(lucene, "HEAP_LIMIT_MB", 0)  # any heap in use is over the limit
    first = searcher.search(queries, 10)
    searcher.score([(next(iter(queries.values())), "no-such-doc")])
    assert searcher.collections == 2  # once after the search, once after scoring
    assert first == searcher.search(queries, 10)  # collecting changes no result


def test_an_interrupted_dense_encode_keeps_its_finished_chunks(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    data = synthetic.generate(synthetic.SynthConfig(documents=70, test_queries=3, train_queries=0, seed=11))
    ws = Workspace(tmp_path / "ws")
    art = datasets.save(ws, data, "cut", {"source": "test"}).artifact
    config = indexing.DenseConfig(batch_size=4)  # 3 chunks of up to 32 passages
    real, encoded = encoding._encode_chunk, []

    monkeypatch.setattr(encoding, "_encode_chunk", interrupting(real, encoded, after=2))
    with pytest.raises(KeyboardInterrupt):
        indexing.build_dense(ws, art, config)
    assert ws.artifacts("indexes") == []
    encoded.clear()
    monkeypatch.setattr(encoding, "_encode_chunk", lambda *a, **k: (encoded.append(1), real(*a, **k))[1])
    again = indexing.build_dense(ws, art, config).artifact
    assert len(encoded) == 1  # the two finished chunks were kept
    whole = indexing.build_dense(Workspace(tmp_path / "whole"), datasets.save(Workspace(tmp_path / "whole"), data, "cut", {"source": "test"}).artifact, config).artifact
    assert again.file("embeddings.f16.npy").read_bytes() == whole.file("embeddings.f16.npy").read_bytes()


def test_an_empty_document_is_skipped_by_lucene_not_taken_for_a_failed_write(ws: Workspace) -> None:
    corpus = {"d1": {"title": "rivers", "text": "the river runs"}, "d2": {"title": "", "text": " \x1f "}, "d3": {"title": "", "text": "hills"}}
    data = datasets.Dataset(corpus, {"q": "river"}, {"test": {"q": {"d1": 1}}})
    art = datasets.save(ws, data, "with-empty", {"s": 1}).artifact
    index = indexing.build_bm25(ws, art, indexing.BM25Config()).artifact
    assert index.summary == {"documents": 3, "empty_documents": 1}  # Anserini skips what trims to nothing


def test_progress_moves_per_batch_while_encoding_and_searching(ws: Workspace, monkeypatch) -> None:  # noqa: ANN001
    """A model load is a stage without a total (a spinner); encoding reports each batch, not
    each chunk of batch x 8 texts; BM25 search reports each batch of queries."""
    data = synthetic.generate(synthetic.SynthConfig(documents=70, test_queries=5, train_queries=0, seed=4))
    art = datasets.save(ws, data, "p", {"s": 1}).artifact
    heard: list[tuple[str, int, int | None]] = []
    indexing.build_dense(ws, art, indexing.DenseConfig(batch_size=4), progress=lambda stage, done, total, **_: heard.append((stage, done, total)))
    assert ("load minilm", 0, None) in heard and ("load minilm", 1, 1) in heard
    encoded = [done for stage, done, total in heard if stage.startswith("encode") and total == 70]
    assert encoded[:3] == [0, 4, 8] and encoded[-1] == 70  # one update per batch of 4
    monkeypatch.setattr(indexing.bm25.BM25IndexSearcher, "BATCH", 2)
    bm25 = indexing.build_bm25(ws, art, indexing.BM25Config()).artifact
    heard.clear()
    searcher = indexing.open_searcher(ws, bm25, progress=lambda stage, done, total, **_: heard.append((stage, done, total)))
    hits = searcher.search(data.split_queries("test"), 10)
    assert [done for stage, done, _ in heard if stage == "BM25 search"] == [0, 2, 4, 5]
    monkeypatch.setattr(indexing.bm25.BM25IndexSearcher, "BATCH", 256)
    assert hits == indexing.open_searcher(ws, bm25).search(data.split_queries("test"), 10)  # batches change nothing


def test_a_second_dataset_over_the_same_corpus_links_the_first_lucene_index(ws: Workspace, monkeypatch) -> None:  # noqa: ANN001
    """Issue 18: mining `cranfield-title` built a second BM25 index of the identical corpus."""
    corpus = {f"d{i}": {"title": f"topic {i}", "text": f"word{i} shared text number {i}"} for i in range(30)}
    first_data = datasets.Dataset(corpus, {"q1": "word3 shared"}, {"test": {"q1": {"d3": 1}}})
    other_queries = datasets.Dataset(dict(corpus), {"t1": "topic 7", "t2": "word9"}, {"train": {"t1": {"d7": 1}, "t2": {"d9": 1}}})
    first = datasets.save(ws, first_data, "first", {"s": 1}).artifact
    second = datasets.save(ws, other_queries, "second", {"s": 2}).artifact
    assert first.manifest["files"]["corpus.jsonl"] == second.manifest["files"]["corpus.jsonl"]
    indexed: list[Path] = []
    real = indexing.lucene.index_json_collection
    monkeypatch.setattr(indexing.lucene, "index_json_collection", lambda src, dst, **kw: (indexed.append(dst), real(src, dst, **kw)))

    original = indexing.build_bm25(ws, first, indexing.BM25Config()).artifact
    assert len(indexed) == 1
    linked = indexing.build_bm25(ws, second, indexing.BM25Config(k1=1.2)).artifact  # k1 and b are search-time
    assert len(indexed) == 1, "the same corpus and stemmer were indexed twice"
    assert linked.summary == {"documents": 30, "lucene_from": original.ref}
    assert linked.version != original.version and ws.inputs_of(linked)["dataset"].ref == second.ref
    for name in original.manifest["files"]:
        if name.startswith("lucene/"):
            assert linked.file(name).samefile(original.file(name))
            assert linked.manifest["files"][name] == original.manifest["files"][name]
    queries = {"a": "word9", "b": "topic shared"}
    as_linked = indexing.open_searcher(ws, linked).search(queries, 5)
    fresh = indexing.build_bm25(ws, second, indexing.BM25Config(k1=1.2), force=True).artifact  # --force indexes afresh
    assert len(indexed) == 2 and "lucene_from" not in fresh.summary
    assert as_linked == indexing.open_searcher(ws, fresh).search(queries, 5)

    indexing.build_bm25(ws, second, indexing.BM25Config(stemmer="none"))  # another stemmer: other files
    changed = dict(corpus, d0={"title": "topic 0", "text": "another text"})
    third = datasets.save(ws, datasets.Dataset(changed, {"q1": "x"}, {"test": {"q1": {"d0": 1}}}), "third", {"s": 3}).artifact
    indexing.build_bm25(ws, third, indexing.BM25Config())  # another corpus: indexed
    assert len(indexed) == 4
