"""Datasets: BEIR folders read strictly, TREC-DL files converted, and dataset artifacts.

A dataset artifact's payload is a normalised BEIR folder (``corpus.jsonl``, ``queries.jsonl``,
``qrels/<split>.tsv``). Its config records the relevance level that binary measures use
(BEIR: score >= 1; TREC-DL: grade >= 2, as ``trec_eval -l 2``).
"""

from __future__ import annotations

import json
import math
import re
import threading
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from retrieval_cli.artifacts import Artifact, BuildResult, Workspace, file_digest, files_fingerprint
from retrieval_cli.errors import CliError, InputError
from retrieval_cli.progress import Progress, silent

QRELS_HEADER = "query-id\tcorpus-id\tscore"
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_split_name(split: str) -> str:
    """A split names a file (qrels/<split>.tsv), so it must be a plain file name."""
    if not _SPLIT_NAME.match(split):
        raise InputError(f"split name must be letters, digits, '_', '.' or '-', got {split!r}", field="split")
    return split


@dataclass
class Dataset:
    """A retrieval collection in memory: corpus, queries, and graded judgments per split."""

    corpus: Mapping[str, dict[str, str]]  # doc id -> {"title", "text"}; a dict, or a CorpusFile
    queries: dict[str, str]  # query id -> text
    qrels: dict[str, dict[str, dict[str, int]]]  # split -> query id -> doc id -> grade
    relevance_level: int = 1
    name: str = ""

    def split_queries(self, split: str) -> dict[str, str]:
        """Queries judged in ``split``, in the order of the queries file."""
        judged = self.split_qrels(split)
        return {qid: text for qid, text in self.queries.items() if qid in judged}

    def split_qrels(self, split: str) -> dict[str, dict[str, int]]:
        if split not in self.qrels:
            known = ", ".join(sorted(self.qrels)) or "none"
            raise InputError(f"dataset '{self.name}' has no split '{split}' (splits: {known})")
        return self.qrels[split]

    def doc_ids(self) -> Sequence[str]:
        """Document ids in corpus order, without building a list when the corpus is on disk."""
        return self.corpus.ids if isinstance(self.corpus, CorpusFile) else list(self.corpus)

    def doc_text(self, doc_id: str, sep: str = " ") -> str:
        """Title and body joined, the text every engine indexes."""
        doc = self.corpus[doc_id]
        return f"{doc.get('title', '')}{sep}{doc['text']}".strip()

    def stats(self) -> dict[str, Any]:
        return {
            "documents": len(self.corpus),
            "queries": len(self.queries),
            "splits": {
                split: {
                    "queries": len(judged),
                    "judgments": sum(len(d) for d in judged.values()),
                    "relevant": sum(
                        1 for d in judged.values() for g in d.values() if g >= self.relevance_level
                    ),
                }
                for split, judged in sorted(self.qrels.items())
            },
            "relevance_level": self.relevance_level,
        }


# ---- strict readers ---------------------------------------------------------------------------
def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) for non-blank lines, failing on bytes that are not UTF-8.

    Every strict reader (JSONL, TSV, qrels, runs) goes through here, so a BOM, CRLF endings and
    blank lines are handled once, and a bad byte is reported with its line.
    """
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", path=path) from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"not valid UTF-8 (byte {exc.start + 1})", path=path, line=number) from exc
            text = text.rstrip("\r\n")
            if text.strip():
                yield number, text


def _string_field(record: Mapping[str, Any], key: str, path: Path, line: int, required: bool) -> str:
    if key not in record or record[key] is None:
        if required:
            raise InputError("missing", path=path, line=line, field=key)
        return ""
    value = record[key]
    if key == "_id" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InputError(f"expected a string, got {type(value).__name__}", path=path, line=line, field=key)
    if key == "_id" and not value.strip():
        raise InputError("empty id", path=path, line=line, field=key)
    return value


def read_jsonl_records(
    path: Path, fields: tuple[str, ...], required: tuple[str, ...], nonempty: str = ""
) -> dict[str, dict[str, str]]:
    """Read a BEIR JSONL file keyed by ``_id``; every bad line is an InputError naming it.
    With ``nonempty`` (what a record is: "query"), a blank ``text`` is an error too: an empty
    query cannot be searched, and scoring it 0 would pass silently."""
    records: dict[str, dict[str, str]] = {}
    first_line: dict[str, int] = {}
    for number, text in read_lines(path):
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON ({exc.msg} at column {exc.colno})", path=path, line=number) from exc
        except RecursionError:
            raise InputError("invalid JSON (nested too deeply)", path=path, line=number) from None
        if not isinstance(record, dict):
            raise InputError(f"expected a JSON object, got {type(record).__name__}", path=path, line=number)
        doc_id = _string_field(record, "_id", path, number, required=True)
        if doc_id in records:
            raise InputError(
                f"duplicate _id '{doc_id}' (first seen on line {first_line[doc_id]})", path=path, line=number
            )
        records[doc_id] = {
            key: _string_field(record, key, path, number, required=key in required) for key in fields
        }
        if nonempty and not records[doc_id]["text"].strip():
            raise InputError(f"empty {nonempty} '{doc_id}'", path=path, line=number, field="text")
        first_line[doc_id] = number
    return records


def read_qrels_tsv(
    path: Path, queries: Mapping[str, Any], corpus: Mapping[str, Any]
) -> dict[str, dict[str, int]]:
    """Read a BEIR qrels TSV (``query-id corpus-id score``, header optional)."""
    qrels: dict[str, dict[str, int]] = {}
    for number, text in read_lines(path):
        columns = text.split("\t")
        if number == 1 and columns[0].strip().lower() in ("query-id", "query_id", "qid"):
            continue
        if len(columns) != 3:
            raise InputError(
                f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(columns)}",
                path=path, line=number,
            )
        qid, doc_id, score = (c.strip() for c in columns)
        qrels.setdefault(qid, {})[doc_id] = _grade(score, path, number)
        _check_known(qid, doc_id, queries, corpus, path, number)
    if not qrels:
        raise InputError("no judgments", path=path)
    return qrels


def _grade(score: str, path: Path, line: int) -> int:
    try:
        value = float(score)
    except ValueError:
        raise InputError(f"score {score!r} is not a number", path=path, line=line, field="score") from None
    if not math.isfinite(value) or value != int(value):
        raise InputError(f"score {score!r} is not an integer grade", path=path, line=line, field="score")
    return int(value)


def _check_known(qid: str, doc_id: str, queries: Mapping[str, Any], corpus: Mapping[str, Any], path: Path, line: int) -> None:
    if qid not in queries:
        raise InputError(f"query id '{qid}' is not in the queries", path=path, line=line, field="query-id")
    if doc_id not in corpus:
        raise InputError(f"document id '{doc_id}' is not in the corpus", path=path, line=line, field="corpus-id")


def beir_files(folder: Path) -> list[Path]:
    """The files of a BEIR folder (corpus, queries, then qrels by split); InputError if absent."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder", path=folder)
    for required in (folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels"):
        if not required.exists():
            raise InputError("missing (a BEIR folder has corpus.jsonl, queries.jsonl and qrels/)", path=required)
    qrels = sorted((folder / "qrels").glob("*.tsv"))
    if not qrels:
        raise InputError("no qrels/<split>.tsv files", path=folder / "qrels")
    return [folder / "corpus.jsonl", folder / "queries.jsonl", *qrels]


def read_beir(folder: Path, name: str = "", relevance_level: int = 1) -> Dataset:
    """Read and validate a BEIR folder; raises InputError on the first bad line."""
    corpus_path, queries_path, *qrels_paths = beir_files(folder)
    corpus = read_jsonl_records(corpus_path, ("title", "text"), required=("text",))
    if not corpus:
        raise InputError("empty corpus: no documents", path=corpus_path)
    queries = {
        qid: rec["text"]
        for qid, rec in read_jsonl_records(queries_path, ("text",), required=("text",), nonempty="query").items()
    }
    if not queries:
        raise InputError("no queries", path=queries_path)
    qrels = {path.stem: read_qrels_tsv(path, queries, corpus) for path in qrels_paths}
    return Dataset(corpus, queries, qrels, relevance_level=relevance_level, name=name)


def read_trec_dl(
    collection: Path, topics: Path, qrels_path: Path, split: str = "test", relevance_level: int = 2
) -> Dataset:
    """Read MS MARCO ``collection.tsv`` (pid, passage), a topics TSV (qid, query) and TREC qrels."""
    corpus: dict[str, dict[str, str]] = {}
    for number, text in read_lines(collection):
        columns = text.split("\t")
        if len(columns) != 2:
            raise InputError(f"expected 2 tab-separated columns (pid, passage), got {len(columns)}", path=collection, line=number)
        pid = columns[0].strip()
        if not pid:
            raise InputError("empty id", path=collection, line=number, field="pid")
        if pid in corpus:
            raise InputError(f"duplicate pid '{pid}'", path=collection, line=number)
        corpus[pid] = {"title": "", "text": columns[1]}
    if not corpus:
        raise InputError("empty corpus: no passages", path=collection)
    queries: dict[str, str] = {}
    for number, text in read_lines(topics):
        columns = text.split("\t")
        if len(columns) != 2:
            raise InputError(f"expected 2 tab-separated columns (qid, query), got {len(columns)}", path=topics, line=number)
        qid = columns[0].strip()
        if not qid:
            raise InputError("empty id", path=topics, line=number, field="qid")
        if qid in queries:
            raise InputError(f"duplicate qid '{qid}'", path=topics, line=number)
        if not columns[1].strip():
            raise InputError(f"empty query '{qid}'", path=topics, line=number, field="query")
        queries[qid] = columns[1]
    qrels: dict[str, dict[str, int]] = {}
    for number, text in read_lines(qrels_path):
        columns = text.split()
        if len(columns) != 4:
            raise InputError(f"expected 4 columns (qid iter docid rel), got {len(columns)}", path=qrels_path, line=number)
        qid, _, doc_id, grade = columns
        qrels.setdefault(qid, {})[doc_id] = _grade(grade, qrels_path, number)
        _check_known(qid, doc_id, queries, corpus, qrels_path, number)
    if not qrels:
        raise InputError("no judgments", path=qrels_path)
    return Dataset(corpus, queries, {split: qrels}, relevance_level=relevance_level)


def write_beir(dataset: Dataset, folder: Path) -> None:
    """Write a dataset as a normalised BEIR folder (stable order, UTF-8, one record a line)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as out:
        for doc_id, doc in dataset.corpus.items():
            record = {"_id": doc_id, "title": doc.get("title", ""), "text": doc["text"]}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as out:
        for qid, text in dataset.queries.items():
            out.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    for split, judged in dataset.qrels.items():
        with open(folder / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as out:
            out.write(QRELS_HEADER + "\n")
            for qid, docs in judged.items():
                for doc_id, grade in docs.items():
                    out.write(f"{qid}\t{doc_id}\t{grade}\n")


def split_counts(artifact: Artifact, split: str) -> dict[str, Any]:
    """A split's counts from a dataset artifact's manifest, checked without loading the files:
    an InputError naming the splits there are when it is missing."""
    splits = artifact.summary.get("splits", {})
    if splits and split not in splits:
        raise InputError(f"dataset '{artifact.ref}' has no split '{split}' (splits: {', '.join(sorted(splits))})", field="split")
    return splits.get(split, {})


class CorpusFile(Mapping[str, dict[str, str]]):
    """A dataset artifact's corpus.jsonl read on demand: doc id -> {"title", "text"}.

    Only ids, line offsets and id hashes stay in memory (about 40 bytes a document against
    several hundred for the texts), so commands that touch a few documents per query (mining,
    its cross-encoder and LLM steps) keep memory flat in corpus size. Texts are read with one
    seek per lookup; ids hash to a sorted array, checked against the stored id on a hit.
    """

    _FAST = b'{"_id": "'  # how write_beir starts every line: the id is decoded without the text
    _hash = staticmethod(hash)  # per process, never stored: only for lookups here

    def __init__(self, path: Path) -> None:
        self.path = path
        lines, id_ends, hashes, blob = array("q"), array("q", [0]), array("q"), bytearray()
        decoder = json.JSONDecoder()
        offset = 0
        with open(path, "rb") as handle:
            for line in handle:
                if line.startswith(self._FAST):
                    doc_id = decoder.raw_decode(line.decode("utf-8"), len(self._FAST) - 1)[0]
                else:
                    doc_id = json.loads(line)["_id"]
                lines.append(offset)
                offset += len(line)
                encoded = doc_id.encode("utf-8")
                blob += encoded
                id_ends.append(len(blob))
                hashes.append(self._hash(doc_id))
        lines.append(offset)
        self._lines = np.frombuffer(lines, dtype=np.int64)
        self._id_ends = np.frombuffer(id_ends, dtype=np.int64)
        self._blob = blob  # kept as built: a bytes() copy would double it for a moment
        unsorted = np.frombuffer(hashes, dtype=np.int64)
        self._order = np.argsort(unsorted, kind="stable").astype(np.int64 if len(unsorted) >= 2**31 else np.int32)
        self._hashes = unsorted[self._order]
        self._lock = threading.Lock()
        self._handle: Any = None
        self.ids: Sequence[str] = _CorpusIds(self)

    def id_at(self, position: int) -> str:
        return self._blob[self._id_ends[position]:self._id_ends[position + 1]].decode("utf-8")

    def position(self, doc_id: str) -> int:
        """The document's line number in the file; KeyError for an unknown id."""
        h = self._hash(doc_id)
        i = int(np.searchsorted(self._hashes, h))
        while i < len(self._hashes) and self._hashes[i] == h:
            j = int(self._order[i])
            if self.id_at(j) == doc_id:
                return j
            i += 1
        raise KeyError(doc_id)

    def record(self, position: int) -> dict[str, str]:
        start, end = int(self._lines[position]), int(self._lines[position + 1])
        with self._lock:  # one handle, shared by threads (LLM concurrency reads positives)
            if self._handle is None:
                self._handle = open(self.path, "rb")
            self._handle.seek(start)
            raw = self._handle.read(end - start)
        record = json.loads(raw)
        return {"title": record.get("title", ""), "text": record["text"]}

    def __getitem__(self, doc_id: str) -> dict[str, str]:
        return self.record(self.position(doc_id))

    def __contains__(self, doc_id: object) -> bool:
        if not isinstance(doc_id, str):
            return False
        try:
            self.position(doc_id)
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self._lines) - 1

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None:
            handle.close()


class _CorpusIds(Sequence[str]):
    """A CorpusFile's ids in file order, as a sequence (random negatives index into it)."""

    def __init__(self, corpus: CorpusFile) -> None:
        self._corpus = corpus

    def __len__(self) -> int:
        return len(self._corpus)

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        if isinstance(i, slice):
            return [self._corpus.id_at(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._corpus.id_at(i)

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self)):
            yield self._corpus.id_at(i)


def load(artifact: Artifact, *, lazy_corpus: bool = False) -> Dataset:
    """Load a dataset artifact written by this module (trusted: it was validated on import).
    ``lazy_corpus`` keeps the corpus on disk (a CorpusFile) for commands that read few texts."""
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
    queries = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            queries[record["_id"]] = record["text"]
    qrels: dict[str, dict[str, dict[str, int]]] = {}
    for path in sorted((folder / "qrels").glob("*.tsv")):
        judged: dict[str, dict[str, int]] = {}
        with open(path, encoding="utf-8") as handle:
            next(handle)
            for line in handle:
                qid, doc_id, grade = line.rstrip("\n").split("\t")
                judged.setdefault(qid, {})[doc_id] = int(grade)
        qrels[path.stem] = judged
    return Dataset(
        corpus, queries, qrels,
        relevance_level=int(artifact.config.get("relevance_level", 1)),
        name=artifact.name,
    )


def content_hash(paths: list[Path]) -> str:
    """Hash of source files, so re-importing changed files gives a new version."""
    return files_fingerprint((path.name, path) for path in paths)


def store(
    ws: Workspace,
    name: str,
    config: Mapping[str, Any],
    inputs: Mapping[str, Artifact],
    make: Callable[[], Dataset],
    *,
    origin: str | None = None,
    extra_summary: Mapping[str, Any] | None = None,
    force: bool = False,
) -> BuildResult:
    """Store the dataset ``make()`` returns; ``make`` runs only when no identical artifact exists.

    ``config`` must hold everything that decides the content (a hash of the source files, the
    relevance level); ``origin`` (where the files came from) is recorded but does not version.
    ``extra_summary`` is read after ``make()``, so ``make`` can fill it (e.g. generation counts).
    """

    def build(folder: Path) -> dict[str, Any]:
        dataset = make()
        write_beir(dataset, folder)
        return {**dataset.stats(), **({"origin": origin} if origin else {}), **dict(extra_summary or {})}

    return ws.build("datasets", name, config, inputs, build, force=force)


def save(
    ws: Workspace,
    dataset: Dataset,
    name: str,
    config: Mapping[str, Any],
    inputs: Mapping[str, Artifact] | None = None,
    *,
    force: bool = False,
) -> BuildResult:
    """Store an in-memory dataset as a dataset artifact."""
    full_config = {**config, "relevance_level": dataset.relevance_level}
    return store(ws, name, full_config, inputs or {}, lambda: dataset, force=force)


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


# ---- public BEIR downloads ----------------------------------------------------------------------
BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
BEIR_URL_ENV = "RETRIEVAL_CLI_BEIR_URL"  # a mirror, e.g. file:///data/beir/{name}.zip
# md5 of each zip as published in the BEIR README.
BEIR_MD5 = {
    "msmarco": "444067daf65d982533ea17ebd59501e4",
    "trec-covid": "ce62140cb23feb9becf6270d0d1fe6d1",
    "nfcorpus": "a89dba18a62ef92f7d323ec890a0d38d",
    "nq": "d4d3d2e48787a744b6f6e691ff534307",
    "hotpotqa": "f412724f78b0d91183a0e86805e16114",
    "fiqa": "17918ed23cd04fb15047f73e6c3bd9d9",
    "arguana": "8ad3e3c2a5867cdced806d6503f29b99",
    "webis-touche2020": "46f650ba5a527fc69e0a6521c5a23563",
    "quora": "18fb154900ba42a600f84b839c173167",
    "dbpedia-entity": "c2a39eb420a3164af735795df012ac2c",
    "scidocs": "38121350fc3a4d2f48850f6aff52e4a9",
    "fever": "5a818580227bfb4b35bb6fa46d9b6c03",
    "climate-fever": "8b66f0a9126c521bae2bde127b4dc99d",
    "scifact": "5f7d1de60b170fc8027bb7898e2efca1",
}


def fetch_beir(
    ws: Workspace,
    name: str,
    *,
    artifact_name: str | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Download a public BEIR zip (md5-checked, cached in the workspace) and import it."""
    import os
    import shutil
    import tempfile
    import urllib.error
    import urllib.request
    import uuid
    import zipfile

    if name not in BEIR_MD5:
        raise InputError(f"unknown BEIR dataset '{name}'; known: {', '.join(sorted(BEIR_MD5))}")
    url = os.environ.get(BEIR_URL_ENV, BEIR_URL).format(name=name)
    cache = ws.root / ".cache" / "downloads"
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"{name}.zip"
    if not archive.is_file() or file_digest(archive, "md5") != BEIR_MD5[name]:
        partial = cache / f"{name}.zip.{uuid.uuid4().hex[:8]}.part"  # two fetches at once never share one
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                done = 0
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    done += len(block)
                    progress(f"download {name}", done, total)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            partial.unlink(missing_ok=True)
            reason = getattr(exc, "reason", exc)
            raise CliError(
                f"cannot download {url}: {reason}; offline? download the zip elsewhere, unzip it "
                f"and run: retrieval-cli data import beir DIR --name {name}"
            ) from None
        digest = file_digest(partial, "md5")
        if digest != BEIR_MD5[name]:
            partial.unlink(missing_ok=True)
            raise CliError(f"checksum mismatch for {url}: md5 {digest}, expected {BEIR_MD5[name]}")
        partial.replace(archive)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        try:
            with zipfile.ZipFile(archive) as zipped:
                for member in zipped.namelist():
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise CliError(f"{archive}: unsafe path in zip: {member}")
                zipped.extractall(tmp)
        except zipfile.BadZipFile as exc:
            raise CliError(f"{archive}: not a valid zip ({exc})") from None
        folder = Path(tmp) / name
        if not folder.is_dir():
            folder = next((p.parent for p in Path(tmp).rglob("corpus.jsonl")), Path(tmp))
        result = import_beir(ws, folder, artifact_name or name, origin=url, force=force, progress=progress)
        shutil.rmtree(folder, ignore_errors=True)
    return result


# ---- NanoBEIR-style subsets ------------------------------------------------------------------------
def subset(
    ws: Workspace,
    source: Artifact,
    *,
    queries: int = 50,
    split: str = "test",
    seed: int = 13,
    distractors: str = "bm25:100",
    name: str | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Sample queries, keep all their judged documents, and add top-ranked BM25 distractors."""
    import random

    strategy, _, depth_text = distractors.partition(":")
    if strategy not in ("bm25", "none") or (strategy == "bm25" and not depth_text.isdigit()):
        raise InputError(f"distractors must be 'bm25:K' or 'none', got {distractors!r}", field="distractors")
    depth = int(depth_text or 0)
    if queries < 1:
        raise InputError("queries must be >= 1", field="queries")
    config = {
        "source": "subset", "queries": queries, "split": split, "seed": seed, "distractors": distractors,
        "relevance_level": int(source.config.get("relevance_level", 1)),
    }
    inputs: dict[str, Artifact] = {"dataset": source}
    index = None
    if strategy == "bm25":
        from retrieval_cli import indexing

        index = indexing.build_bm25(ws, source, indexing.BM25Config(), progress=progress).artifact
        inputs["index"] = index

    # Sampling and the distractor search happen inside the build, so a cache hit costs nothing.
    def make() -> Dataset:
        data = load(source)
        judged = data.split_qrels(split)
        chosen = sorted(random.Random(seed).sample(sorted(judged), min(queries, len(judged))))
        keep_docs = {doc_id for qid in chosen for doc_id in judged[qid]}
        if index is not None:
            from retrieval_cli import indexing

            hits = indexing.open_searcher(ws, index).search({q: data.queries[q] for q in chosen}, depth)
            keep_docs.update(doc_id for ranked in hits.values() for doc_id, _ in ranked)
        return Dataset(
            corpus={d: doc for d, doc in data.corpus.items() if d in keep_docs},
            queries={q: data.queries[q] for q in chosen},
            qrels={split: {q: judged[q] for q in chosen}},
            relevance_level=data.relevance_level,
        )

    return store(ws, name or f"{source.name}-sub{queries}", config, inputs, make, force=force)
