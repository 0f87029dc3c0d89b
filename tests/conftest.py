from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retrieval_cli import data as datasets
from retrieval_cli.data import synthetic
from retrieval_cli.store import Artifact, Workspace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
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
