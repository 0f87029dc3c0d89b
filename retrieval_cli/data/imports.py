"""Importing collections from files into dataset artifacts (reused while the files are unchanged)."""

from __future__ import annotations

from pathlib import Path

from retrieval_cli.data.artifacts import content_hash, store
from retrieval_cli.data.dataset import Dataset
from retrieval_cli.data.readers import beir_files, read_beir, read_trec_dl
from retrieval_cli.errors import InputError
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import BuildResult, Workspace


def import_beir(
    ws: Workspace,
    source: Path,
    name: str,
    *,
    relevance_level: int = 1,
    origin: str | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Validate a BEIR folder and copy it into a dataset artifact (reused when the files are unchanged)."""
    source = Path(source)
    config = {"source": "beir", "content": content_hash(beir_files(source)), "relevance_level": relevance_level}

    def make() -> Dataset:
        progress("read BEIR folder", 0, None)
        dataset = read_beir(source, name=name, relevance_level=relevance_level)
        progress("read BEIR folder", 1, 1)
        return dataset

    return store(ws, name, config, {}, make, origin=origin or str(source.resolve()), force=force)


def import_trec_dl(
    ws: Workspace,
    collection: Path,
    topics: Path,
    qrels: Path,
    name: str,
    *,
    split: str = "test",
    relevance_level: int = 2,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Convert MS MARCO/TREC-DL files into a dataset artifact (BEIR layout inside)."""
    files = [Path(collection), Path(topics), Path(qrels)]
    for path in files:
        if not path.is_file():
            raise InputError("no such file", path=path)
    config = {"source": "trec-dl", "split": split, "content": content_hash(files), "relevance_level": relevance_level}

    def make() -> Dataset:
        progress("read TREC-DL files", 0, None)
        dataset = read_trec_dl(*files, split=split, relevance_level=relevance_level)
        progress("read TREC-DL files", 1, 1)
        return dataset

    origin = ", ".join(str(p.resolve()) for p in files)
    return store(ws, name, config, {}, make, origin=origin, force=force)
