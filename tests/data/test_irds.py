"""``data import irds``: datasets named by ir_datasets ids, tested on collections registered
locally with ir_datasets' own registry and formats (nothing downloads)."""

from __future__ import annotations

import tracemalloc
import uuid
from pathlib import Path

import pytest

from conftest import register_irds
from retrieval_cli import data as datasets
from retrieval_cli.cli import app
from retrieval_cli.data import irds
from retrieval_cli.errors import InputError, RetrievalError
from retrieval_cli.store import Workspace

CORPUS = {f"p{i}": f"passage {i} about topic {i % 5}" for i in range(30)}
TRAIN = ({"q1": "topic one", "q2": "topic two"}, [("q1", "p1", 1), ("q2", "p2", 1)])
DL19 = ({"q7": "topic three"}, [("q7", "p3", 3), ("q7", "p8", 2), ("q7", "p13", 1), ("q7", "p0", 0)])
DEV = ({"q9": "topic four"}, [("q9", "p4", 1)])


def fresh(tmp_path: Path, splits: dict | None = None, corpus: dict | None = None) -> list[str]:
    prefix = f"local-{uuid.uuid4().hex[:8]}"
    splits = splits or {"train/judged": TRAIN, "trec-dl-2019/judged": DL19, "dev/small": DEV}
    return register_irds(tmp_path / prefix, prefix, corpus or CORPUS, splits)


@pytest.mark.parametrize(("dataset_id", "split", "level", "name"), [
    ("msmarco-passage/train/judged", "train", 1, "msmarco-passage"),
    ("msmarco-passage/dev/small", "dev", 1, "msmarco-passage"),
    ("msmarco-passage/trec-dl-2019/judged", "dl19", 2, "msmarco-passage"),
    ("msmarco-passage/trec-dl-2020", "dl20", 2, "msmarco-passage"),
    ("beir/scifact/train", "train", 1, "beir-scifact"),
    ("beir/arguana", "test", 1, "beir-arguana"),
    ("beir/cqadupstack/android", "test", 1, "beir-cqadupstack-android"),
    ("nano-beir/fiqa", "test", 1, "nano-beir-fiqa"),
])
def test_an_id_names_its_split_level_and_dataset(dataset_id: str, split: str, level: int, name: str) -> None:
    parsed = irds.IrdsSplit.parse(dataset_id)
    assert (parsed.split, parsed.relevance_level, irds.default_name(dataset_id)) == (split, level, name)


def test_a_split_and_level_can_be_named() -> None:
    assert irds.IrdsSplit.parse("msmarco-passage/dev=devfull,2") == irds.IrdsSplit("msmarco-passage/dev", "devfull", 2)
    with pytest.raises(InputError, match="the level must be an integer"):
        irds.IrdsSplit.parse("msmarco-passage/dev=dev,x")


def test_several_ids_over_one_corpus_are_one_dataset_with_a_level_per_split(ws: Workspace, tmp_path: Path) -> None:
    train, dl19, dev = fresh(tmp_path)
    result = irds.import_irds(ws, [irds.IrdsSplit.parse(i) for i in (train, dl19, dev)], "local")
    data = datasets.load(result.artifact)
    assert len(data.corpus) == 30 and data.doc_text("p3") == CORPUS["p3"]
    assert sorted(data.qrels) == ["dev", "dl19", "train"]
    assert data.qrels["dl19"] == {"q7": {"p3": 3, "p8": 2, "p13": 1, "p0": 0}}
    assert (data.level("train"), data.level("dev"), data.level("dl19")) == (1, 1, 2)
    assert data.split_queries("dl19") == {"q7": "topic three"}
    splits = result.artifact.summary["splits"]
    assert splits["dl19"]["relevant"] == 2 and splits["train"]["relevant"] == 2  # grade >= 2 on DL19, >= 1 elsewhere
    assert irds.import_irds(ws, [irds.IrdsSplit.parse(i) for i in (train, dl19, dev)], "local").reused


def test_a_changed_source_file_is_a_new_version(ws: Workspace, tmp_path: Path) -> None:
    (dev,) = fresh(tmp_path, {"dev/small": DEV})
    first = irds.import_irds(ws, [irds.IrdsSplit.parse(dev)], "local").artifact
    qrels = next(tmp_path.rglob("dev_small.qrels"))
    qrels.write_text("q9 0 p5 1\n", encoding="utf-8")
    second = irds.import_irds(ws, [irds.IrdsSplit.parse(dev)], "local").artifact
    assert second.version != first.version
    assert datasets.load(second).qrels["dev"] == {"q9": {"p5": 1}}


def test_the_corpus_streams_to_disk(ws: Workspace, tmp_path: Path) -> None:
    """4,000 passages of 2,500 characters (10 MB of text): the import's peak traced memory stays
    far below the text, which it would pass if the corpus were held."""
    corpus = {f"p{i}": ("lorem ipsum " * 210)[:2500] + str(i) for i in range(4000)}
    (dev,) = fresh(tmp_path, {"dev/small": DEV}, corpus)
    tracemalloc.start()
    try:
        irds.import_irds(ws, [irds.IrdsSplit.parse(dev)], "big")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3_000_000, peak
    assert ws.resolve("big", kind="datasets").summary["documents"] == 4000


def test_judgments_of_documents_missing_from_the_corpus_are_dropped_and_said(ws: Workspace, tmp_path: Path) -> None:
    (dev,) = fresh(tmp_path, {"dev/small": ({"q9": "topic four"}, [("q9", "p4", 1), ("q9", "gone", 1)])})
    artifact = irds.import_irds(ws, [irds.IrdsSplit.parse(dev)], "local").artifact
    assert datasets.load(artifact).qrels["dev"] == {"q9": {"p4": 1}}
    assert artifact.summary["warnings"] == ["dev: 1 judgments name documents missing from the corpus; dropped (they count in no measure)"]


def test_bad_ids_and_fields_are_one_line_errors(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown ir_datasets id 'msmarco-pasage/dev/small'; did you mean msmarco-passage/dev/small"):
        irds.import_irds(ws, [irds.IrdsSplit.parse("msmarco-pasage/dev/small")], "x")
    one, = fresh(tmp_path, {"dev/small": DEV})
    other, = fresh(tmp_path, {"dev/small": DEV})
    with pytest.raises(InputError, match="searches another corpus"):
        irds.import_irds(ws, [irds.IrdsSplit.parse(one), irds.IrdsSplit(other, "dev2", 1)], "x")
    with pytest.raises(InputError, match="split names repeat"):
        irds.import_irds(ws, [irds.IrdsSplit.parse(one), irds.IrdsSplit.parse(one)], "x")
    with pytest.raises(InputError, match="queries have no field 'title' \\(fields: text\\)"):
        irds.import_irds(ws, [irds.IrdsSplit.parse(one)], "x", query_field="title")
    assert not (ws.root / "datasets" / "x").exists() or not any((ws.root / "datasets" / "x").iterdir())


def test_a_file_ir_datasets_cannot_download_is_named(ws: Workspace, tmp_path: Path) -> None:
    dev, = fresh(tmp_path, {"dev/small": DEV})
    next(tmp_path.rglob("collection.tsv")).unlink()
    with pytest.raises(RetrievalError, match=r"ir_datasets needs .*collection\.tsv, a file you obtain yourself"):
        irds.import_irds(ws, [irds.IrdsSplit.parse(dev)], "x")


def test_suites_name_their_ids() -> None:
    assert len(irds.suite_ids("nano-beir")) == 13 and "nano-beir/scifact" in irds.suite_ids("nano-beir")
    assert irds.suite_ids("nano-beir", ["fiqa"]) == ["nano-beir/fiqa"]
    assert irds.suite_ids("beir", ["scifact", "arguana"]) == ["beir/scifact/test", "beir/arguana"]
    assert [irds.suite_member(i) for i in ("nano-beir/fiqa", "beir/scifact/test", "beir/cqadupstack/android")] == [
        "fiqa", "scifact", "cqadupstack-android"]
    with pytest.raises(InputError, match="suite nano-beir has no 'scifacts'"):
        irds.suite_ids("nano-beir", ["scifacts"])
    with pytest.raises(InputError, match="list the BEIR datasets you have"):
        irds.suite_ids("beir")


def test_cli_imports_ids_with_named_splits(runner, tmp_path: Path) -> None:  # noqa: ANN001
    train, dl19, _ = fresh(tmp_path)
    ws = tmp_path / "ws"
    result = runner.invoke(app, ["data", "import", "irds", train, f"{dl19}=deep,3", "--name", "local", "-w", str(ws)])
    assert result.exit_code == 0, result.output
    assert "30 documents, 3 queries (deep: 1 queries at level 3, train: 2 queries)" in result.output
    data = datasets.load(Workspace(ws).resolve("local", kind="datasets"))
    assert data.level("deep") == 3 and data.split_qrels("deep")["q7"]["p3"] == 3
    bad = runner.invoke(app, ["data", "import", "irds", "beir/scifactt/test", "-w", str(ws)])
    assert bad.exit_code == 2 and "did you mean beir/scifact/test" in bad.output
