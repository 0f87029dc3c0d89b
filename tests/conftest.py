from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retrieval_cli import data as datasets
from retrieval_cli.data import synthetic
from retrieval_cli.store import Artifact, Workspace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("IR_DATASETS_HOME", str(Path(tempfile.gettempdir()) / "retrieval-cli-tests-irds"))  # never the user's ~/.ir_datasets
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture(scope="session")
def session_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("session") / "ws")


TINY = synthetic.SynthConfig(documents=300, test_queries=40, train_queries=20, seed=7)


@pytest.fixture(scope="session")
def tiny(session_ws: Workspace) -> Artifact:
    """A small synthetic dataset artifact shared by the tests that only read it."""
    return datasets.save(session_ws, synthetic.generate(TINY), "tiny", {"source": "synth", "seed": TINY.seed}).artifact


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write_beir(folder: Path, corpus: str, queries: str, qrels: str) -> Path:
    """Write a BEIR folder from raw file contents (so tests control every byte)."""
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(corpus, encoding="utf-8")
    (folder / "queries.jsonl").write_text(queries, encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return folder


GOOD_CORPUS = (
    '{"_id": "d1", "title": "Alpha", "text": "the alpha document about rivers"}\n'
    '{"_id": "d2", "title": "Beta", "text": "beta text about mountains"}\n'
    '{"_id": "d3", "title": "", "text": "gamma text about rivers and mountains"}\n'
)
GOOD_QUERIES = '{"_id": "q1", "text": "rivers"}\n{"_id": "q2", "text": "mountains"}\n'
GOOD_QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td3\t1\nq2\td2\t1\n"


@pytest.fixture
def beir_folder(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "beir", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)


def mine(ws: Workspace, dataset: Artifact, config, **kwargs):  # noqa: ANN001, ANN003, ANN201
    """Mining as the command runs it: the indexes its strategies need made (or reused) first."""
    from retrieval_cli import mining
    from retrieval_cli.index import ensure

    indexes = ensure(ws, dataset, config.engines(), given=kwargs.pop("indexes", []), model=config.model)
    return mining.mine_negatives(ws, dataset, config, indexes=indexes, **kwargs)


def mine_shard(ws: Workspace, dataset: Artifact, config, shard, **kwargs):  # noqa: ANN001, ANN003, ANN201
    """One mining shard as the command runs it (indexes made or reused first)."""
    from retrieval_cli import mining
    from retrieval_cli.index import ensure

    indexes = ensure(ws, dataset, config.engines(), given=kwargs.pop("indexes", []), model=config.model)
    return mining.mine_shard(ws, dataset, config, shard, indexes=indexes, **kwargs)


def interrupting(real, calls: list, after: int):  # noqa: ANN001, ANN201
    """``real`` wrapped to count its calls in ``calls`` and raise KeyboardInterrupt (as Ctrl-C) on
    call ``after + 1``: how the resume tests stop a run midway."""

    def wrapped(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if len(calls) == after:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    return wrapped


def register_irds(folder: Path, prefix: str, corpus: dict[str, str], splits: dict[str, tuple[dict[str, str], list[tuple[str, str, int]]]]) -> list[str]:
    """Register a local collection with ir_datasets' own registry and formats (TSV docs and
    queries, TREC qrels), one id per split over one shared corpus, as ``data import irds`` meets
    a real one: tests never download. ``prefix`` must be new in this process (the registry is global)."""
    import ir_datasets
    from ir_datasets.datasets.base import Dataset as IrdsDataset
    from ir_datasets.formats import TrecQrels, TsvDocs, TsvQueries
    from ir_datasets.util import LocalDownload

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "collection.tsv").write_text("".join(f"{d}\t{t}\n" for d, t in corpus.items()), encoding="utf-8")
    docs = TsvDocs(LocalDownload(folder / "collection.tsv"), namespace=prefix, lang="en")
    ids = []
    for split, (queries, qrels) in splits.items():
        stem = split.replace("/", "_")
        (folder / f"{stem}.queries.tsv").write_text("".join(f"{q}\t{t}\n" for q, t in queries.items()), encoding="utf-8")
        (folder / f"{stem}.qrels").write_text("".join(f"{q} 0 {d} {g}\n" for q, d, g in qrels), encoding="utf-8")
        dataset = IrdsDataset(docs, TsvQueries(LocalDownload(folder / f"{stem}.queries.tsv"), namespace=prefix, lang="en"),
                              TrecQrels(LocalDownload(folder / f"{stem}.qrels"), {0: "not", 1: "related", 2: "relevant", 3: "perfect"}))
        ir_datasets.registry.register(f"{prefix}/{split}", dataset)
        ids.append(f"{prefix}/{split}")
    return ids
