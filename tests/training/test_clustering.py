"""Query clustering: obvious topics separate, the seed fixes the result, bad k is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retrieval_cli import data as datasets
from retrieval_cli.errors import InputError
from retrieval_cli.store import Workspace
from retrieval_cli.training import clustering

RIVERS = ["river flooding after heavy rain", "how rivers carry sediment to the sea", "river water levels in spring"]
LAPTOPS = ["laptop battery drains fast", "replace a laptop keyboard", "laptop screen flickers when charging"]


def _two_topics(ws: Workspace):  # noqa: ANN202
    queries = {f"r{i}": t for i, t in enumerate(RIVERS)} | {f"l{i}": t for i, t in enumerate(LAPTOPS)}
    corpus = {"d1": {"title": "", "text": "anything"}}
    qrels = {"train": {q: {"d1": 1} for q in queries}}
    return datasets.save(ws, datasets.Dataset(corpus, queries, qrels), "topics", {"source": "test"}).artifact


def test_two_obvious_topics_make_two_clusters(ws: Workspace) -> None:
    art = clustering.cluster_queries(ws, _two_topics(ws), clustering.ClusterConfig(k=2, examples=2)).artifact
    found = clustering.assignments(art)
    assert len({found[f"r{i}"] for i in range(3)}) == 1 and len({found[f"l{i}"] for i in range(3)}) == 1
    assert found["r0"] != found["l0"]
    clusters = clustering.described(art)
    assert [c["size"] for c in clusters] == [3, 3]
    for c in clusters:
        topic = RIVERS if c["cluster"] == found["r0"] else LAPTOPS
        assert len(c["examples"]) == 2 and set(c["examples"]) <= set(topic)
    assert np.load(art.file("centroids.npy")).shape == (2, 384)
    assert art.summary["size"] == {"min": 3, "median": 3.0, "max": 3} and art.summary["empty_clusters"] == 0


def test_same_seed_same_clusters(tmp_path, tiny) -> None:  # noqa: ANN001
    runs = []
    for name in ("a", "b"):
        ws = Workspace(tmp_path / name)
        data = datasets.save(ws, datasets.load(tiny), "tiny", {"source": "copy"}).artifact
        art = clustering.cluster_queries(ws, data, clustering.ClusterConfig(k=4, seed=3)).artifact
        runs.append(art.file("assignments.tsv").read_text())
        assert sum(c["size"] for c in json.loads(art.file("clusters.json").read_text())) == len(datasets.load(tiny).qrels["train"])
    assert runs[0] == runs[1]


def test_bad_k_and_split_fail_before_any_work(session_ws: Workspace, tiny) -> None:  # noqa: ANN001
    before = session_ws.artifacts("clusters")
    with pytest.raises(InputError, match="k=21 exceeds the 20 queries"):
        clustering.cluster_queries(session_ws, tiny, clustering.ClusterConfig(k=21))
    with pytest.raises(InputError, match="has no split 'dev'"):
        clustering.cluster_queries(session_ws, tiny, clustering.ClusterConfig(split="dev"))
    with pytest.raises(InputError, match="k must be >= 2"):
        clustering.ClusterConfig(k=1).check()
    assert session_ws.artifacts("clusters") == before


def test_cluster_queries_cli_prints_sizes_and_examples(runner, tmp_path) -> None:  # noqa: ANN001
    from retrieval_cli.cli import app

    w = ["-w", str(tmp_path)]
    assert runner.invoke(app, ["data", "synth", "--name", "s", "--documents", "40", "--test-queries", "2", "--train-queries", "12", *w]).exit_code == 0
    result = runner.invoke(app, ["cluster-queries", "-d", "s", "--k", "3", *w])
    assert result.exit_code == 0, result.output
    assert "12 queries in 3 clusters" in result.output and "nearest queries" in result.output
