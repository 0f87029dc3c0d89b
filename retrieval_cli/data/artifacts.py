"""Dataset artifacts: a normalised BEIR folder (``corpus.jsonl``, ``queries.jsonl``,
``qrels/<split>.tsv``) whose config records the relevance level, written once and loaded by
every later step."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Iterator, Mapping

from retrieval_cli.data.corpus_file import CorpusFile
from retrieval_cli.data.dataset import Dataset, levels_record, queries_are_documents
from retrieval_cli.errors import InputError
from retrieval_cli.store import Artifact, BuildResult, Versioned, Workspace, files_fingerprint

QRELS_HEADER = "query-id\tcorpus-id\tscore"
# Every later artifact takes its name from the dataset's and adds to it (``NAME-bm25``,
# ``NAME-bm25-mnrl-dense-minilm-test``) up to the 128 characters a name may have: a longer dataset
# name is refused here, before the derived names are.
NAME_MAX = 64


def write_beir(dataset: Dataset, folder: Path) -> None:
    """Write a dataset as a normalised BEIR folder (stable order, UTF-8, one record a line)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_corpus(folder, ((doc_id, doc.get("title", ""), doc["text"]) for doc_id, doc in dataset.corpus.items()))
    write_queries_and_qrels(folder, dataset.queries, dataset.qrels)


def write_corpus(folder: Path, documents: Iterable[tuple[str, str, str]]) -> int:
    """Write ``corpus.jsonl`` from (id, title, text) as they come (a stream: nothing is held);
    returns how many documents it wrote."""
    count = 0
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as out:
        for doc_id, title, text in documents:
            out.write(json.dumps({"_id": doc_id, "title": title, "text": text}, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_queries_and_qrels(folder: Path, queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, Mapping[str, int]]]) -> None:
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as out:
        for qid, text in queries.items():
            out.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    for split, judged in qrels.items():
        with open(folder / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as out:
            out.write(QRELS_HEADER + "\n")
            for qid, docs in judged.items():
                for doc_id, grade in docs.items():
                    out.write(f"{qid}\t{doc_id}\t{grade}\n")


def load(artifact: Artifact, *, lazy_corpus: bool = False, splits: Collection[str] | None = None) -> Dataset:
    """Load a dataset artifact written by this module (trusted: it was validated on import).
    ``lazy_corpus`` keeps the corpus on disk (a CorpusFile) for commands that read few texts.
    ``splits`` holds only those splits' judgments and queries: evaluating MS MARCO's 6,980 dev
    queries need not hold its 502,939 training ones. The auto self-hit rule (``drop_self_hits``)
    is still decided over every query and judgment, read as a stream."""
    if artifact.kind != "datasets":
        raise InputError(f"'{artifact.ref}' is a {artifact.kind} artifact, expected datasets")
    folder = artifact.path
    corpus: Mapping[str, dict[str, str]]
    if lazy_corpus:
        corpus = CorpusFile(folder / "corpus.jsonl")
    else:
        corpus = {}
        with open(folder / "corpus.jsonl", encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                corpus[record["_id"]] = {"title": record["title"], "text": record["text"]}
    present = sorted(path.stem for path in (folder / "qrels").glob("*.tsv"))
    for split in splits or ():
        if split not in present:
            raise InputError(f"dataset '{artifact.name}' has no split '{split}' (splits: {', '.join(present) or 'none'})")
    held = present if splits is None else sorted(set(splits))
    qrels = {split: _read_qrels(folder / "qrels" / f"{split}.tsv") for split in held}
    wanted = None if splits is None else {qid for judged in qrels.values() for qid in judged}
    queries = {}
    any_in_corpus = False  # for the auto self-hit rule when only some splits are held
    with open(folder / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if wanted is None or record["_id"] in wanted:
                queries[record["_id"]] = record["text"]
            if wanted is not None and not any_in_corpus:
                any_in_corpus = record["_id"] in corpus
    auto_self_hits = None
    if wanted is not None:  # the held splits' judgments, then the others' read as a stream
        judgments = itertools.chain(
            ((q, d, g) for judged in qrels.values() for q, docs in judged.items() for d, g in docs.items()),
            *(_qrels_rows(folder / "qrels" / f"{split}.tsv") for split in present if split not in qrels),
        )
        auto_self_hits = queries_are_documents(any_in_corpus, judgments)
    return Dataset(
        corpus, queries, qrels,
        relevance_level=int(artifact.config.get("relevance_level", 1)),
        name=artifact.name,
        split_levels={s: int(v) for s, v in artifact.config.get("split_levels", {}).items()},
        auto_self_hits=auto_self_hits,
    )


def _qrels_rows(path: Path) -> Iterator[tuple[str, str, int]]:
    """(query id, doc id, grade) of a normalised qrels file, as a stream."""
    with open(path, encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            qid, doc_id, grade = line.rstrip("\n").split("\t")
            yield qid, doc_id, int(grade)


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    judged: dict[str, dict[str, int]] = {}
    for qid, doc_id, grade in _qrels_rows(path):
        judged.setdefault(qid, {})[doc_id] = grade
    return judged


def levels_config(dataset: Dataset) -> dict[str, Any]:
    """The per-split levels a dataset's config records (``levels_record``) for its own splits."""
    return levels_record({s: v for s, v in dataset.split_levels.items() if s in dataset.qrels}, dataset.relevance_level)


def check_new_name(name: str) -> str:
    """A name a user gives a dataset (import, fetch, synth), checked at the door: at most
    ``NAME_MAX`` characters, so the names derived from it stay valid."""
    if len(name) > NAME_MAX:
        raise InputError(f"dataset name '{name[:24]}...' is {len(name)} characters; at most {NAME_MAX}, so that the names derived from it "
                         "(indexes, negatives, models, evaluations) stay within the 128 a name may have", field="name")
    return name


def content_hash(paths: list[Path]) -> str:
    """Hash of source files, so re-importing changed files gives a new version."""
    return files_fingerprint((path.name, path) for path in paths)


def store(
    ws: Workspace,
    name: str,
    config: Versioned | Mapping[str, Any],
    inputs: Mapping[str, Artifact],
    make: Callable[[], Dataset],
    *,
    resolved: Mapping[str, Any] | None = None,
    origin: str | None = None,
    extra_summary: Mapping[str, Any] | None = None,
    force: bool = False,
) -> BuildResult:
    """Store the dataset ``make()`` returns; ``make`` runs only when no identical artifact exists.

    ``config`` (with ``resolved``) must hold everything that decides the content (a hash of the
    source files, the relevance level); ``origin`` (where the files came from) is recorded but does not version.
    ``extra_summary`` is read after ``make()``, so ``make`` can fill it (e.g. generation counts).
    """

    def build(folder: Path) -> dict[str, Any]:
        dataset = make()
        write_beir(dataset, folder)
        return {**dataset.stats(), **({"origin": origin} if origin else {}), **dict(extra_summary or {})}

    return ws.build("datasets", name, config, inputs, build, resolved=resolved, force=force)


def save(
    ws: Workspace,
    dataset: Dataset,
    name: str,
    config: Mapping[str, Any],
    inputs: Mapping[str, Artifact] | None = None,
    *,
    force: bool = False,
) -> BuildResult:
    """Store an in-memory dataset as a dataset artifact (a user-named one: ``check_new_name``)."""
    check_new_name(name)
    full_config = {**config, "relevance_level": dataset.relevance_level, **levels_config(dataset)}
    return store(ws, name, full_config, inputs or {}, lambda: dataset, force=force)
