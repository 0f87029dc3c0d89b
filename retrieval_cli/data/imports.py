"""Importing collections from files into dataset artifacts (reused while the files are unchanged):
BEIR folders, a TREC-DL topics/qrels pair, and MS MARCO-shaped files with several splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from retrieval_cli.data.artifacts import check_new_name, content_hash, write_corpus, write_queries_and_qrels
from retrieval_cli.data.dataset import Dataset, check_split_name, levels_record
from retrieval_cli.data.readers import beir_files, iter_beir_corpus, iter_id_tsv, read_beir_judgments, read_id_tsv, read_trec_qrels
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
    """Validate a BEIR folder and copy it into a dataset artifact (reused when the files are unchanged).
    The corpus streams to the artifact's corpus.jsonl as it is checked: memory grows with its ids
    and the queries and judgments, not its text (the same bytes ``read_beir`` + ``write_beir`` give)."""
    source = Path(source)
    config = {"source": "beir", "content": content_hash(beir_files(source)), "relevance_level": relevance_level}

    def build(folder: Path) -> dict[str, object]:
        progress("read BEIR folder", 0, None)
        ids: dict[str, int] = {}
        documents = write_corpus(folder, iter_beir_corpus(source, ids))
        queries, qrels = read_beir_judgments(source, ids)
        write_queries_and_qrels(folder, queries, qrels)
        progress("read BEIR folder", 1, 1)
        made = Dataset({}, queries, qrels, relevance_level=relevance_level)
        return {**made.stats(documents=documents), "origin": origin or str(source.resolve())}

    return ws.build("datasets", check_new_name(name), config, {}, build, force=force)


@dataclass(frozen=True)
class SplitFiles:
    """One query set over a shared corpus: its queries TSV (qid, query), TREC qrels, and the level
    its binary measures use (None: the dataset's default)."""

    name: str
    queries: Path
    qrels: Path
    relevance_level: int | None = None

    @classmethod
    def parse(cls, text: str) -> "SplitFiles":
        """``NAME=QUERIES,QRELS[,LEVEL]``, as ``data import msmarco --split`` takes it."""
        name, sep, rest = text.partition("=")
        parts = rest.split(",")
        if not sep or len(parts) not in (2, 3) or not all(parts):
            raise InputError(f"--split must be NAME=QUERIES,QRELS[,LEVEL], got {text!r}", field="split")
        level = None
        if len(parts) == 3:
            try:
                level = int(parts[2])
            except ValueError:
                raise InputError(f"--split {text}: the level must be an integer, got {parts[2]!r}", field="split") from None
        return cls(check_split_name(name), Path(parts[0]), Path(parts[1]), level)


def import_msmarco(
    ws: Workspace,
    collection: Path,
    splits: list[SplitFiles],
    name: str,
    *,
    relevance_level: int = 1,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """MS MARCO-shaped files as one dataset: ``collection.tsv`` (pid, passage) stored once, and any
    number of splits, each a queries TSV with TREC qrels and its own relevance level (train and
    dev at 1, TREC-DL 2019/2020 at 2). A query id in two query files must have one text. The
    collection is streamed (memory grows with its ids and the queries and judgments, not its text)."""
    if not splits:
        raise InputError("give at least one --split NAME=QUERIES,QRELS[,LEVEL]", field="split")
    names = [s.name for s in splits]
    if len(set(names)) != len(names):
        raise InputError(f"split names repeat: {', '.join(names)}", field="split")
    files = [Path(collection), *(p for s in splits for p in (Path(s.queries), Path(s.qrels)))]
    for path in files:
        if not path.is_file():
            raise InputError("no such file", path=path)
    record = levels_record({s.name: s.relevance_level for s in splits}, relevance_level)
    levels = record.get("split_levels", {})
    config = {
        "source": "msmarco", "content": content_hash(files), "relevance_level": relevance_level,
        "splits": names, **record,
    }

    return _stream(ws, name, config, Path(collection), splits, relevance_level, levels, files, force, progress)


def _stream(
    ws: Workspace, name: str, config: dict, collection: Path, splits: list[SplitFiles], relevance_level: int,
    levels: dict[str, int], files: list[Path], force: bool, progress: Progress,
) -> BuildResult:
    """Build a dataset artifact from a collection TSV and query/qrels files without holding the
    collection: it streams to corpus.jsonl, and only its ids stay to check the qrels against."""
    origin = ", ".join(str(p.resolve()) for p in files)

    def build(folder: Path) -> dict[str, object]:
        # The collection streams from collection.tsv to corpus.jsonl: only its ids stay in memory
        # (MS MARCO's 8.8M passages are ~3 GB of text; their ids are a set of ~0.6 GB).
        progress("write corpus", 0, None)
        ids: set[str] = set()
        documents = write_corpus(folder, ((pid, "", text) for pid, text in iter_id_tsv(Path(collection), "pid", "passage", ids)))
        if not documents:
            raise InputError("empty corpus: no passages", path=collection)
        progress("write corpus", documents, documents)
        queries: dict[str, str] = {}
        qrels: dict[str, dict[str, dict[str, int]]] = {}
        for number, split in enumerate(splits, start=1):
            progress("read splits", number - 1, len(splits))
            these = read_id_tsv(Path(split.queries), "qid", "query", nonempty=True)
            for qid, text in these.items():
                if queries.setdefault(qid, text) != text:
                    raise InputError(f"query '{qid}' has another text in an earlier split's queries", path=split.queries, field="query")
            qrels[split.name] = read_trec_qrels(Path(split.qrels), these, ids)
        progress("read splits", len(splits), len(splits))
        write_queries_and_qrels(folder, queries, qrels)
        made = Dataset({}, queries, qrels, relevance_level=relevance_level, split_levels=levels)
        return {**made.stats(documents=documents), "origin": origin}

    return ws.build("datasets", check_new_name(name), config, {}, build, force=force)


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
    """Convert MS MARCO/TREC-DL files into a dataset artifact (BEIR layout inside), streaming the
    collection as ``import_msmarco`` does: one topics/qrels pair as one split."""
    files = [Path(collection), Path(topics), Path(qrels)]
    for path in files:
        if not path.is_file():
            raise InputError("no such file", path=path)
    config = {"source": "trec-dl", "split": split, "content": content_hash(files), "relevance_level": relevance_level}
    splits = [SplitFiles(check_split_name(split), Path(topics), Path(qrels))]
    return _stream(ws, name, config, Path(collection), splits, relevance_level, {}, files, force, progress)
