"""Strict readers of the formats collections come in: BEIR folders (JSONL + qrels TSV) and MS MARCO /
TREC-DL files (collection and topics TSV, TREC qrels). Every bad line is an InputError naming the
file, the line and the field."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Iterator, Mapping

from retrieval_cli.data.dataset import Dataset
from retrieval_cli.errors import InputError


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


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads joins a valid escaped pair into one character


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
    lone = _LONE_SURROGATE.search(value)
    if lone:  # JSON can escape one (json.dumps writes "\ud800"); UTF-8, and so every file we write, cannot hold it
        raise InputError(f"holds a lone surrogate \\u{ord(lone.group()):04x} (an escaped half of a UTF-16 pair): not text", path=path, line=line, field=key)
    if key == "_id":
        check_id(value, path, line, key)
    return value


def check_id(value: str, path: Path, line: int, field: str) -> str:
    """An id is one non-empty token: TREC run and qrels files are split on whitespace, so an id
    holding a space or tab would break the tool's own run files."""
    if not value.strip():
        raise InputError("empty id", path=path, line=line, field=field)
    if any(c.isspace() for c in value):
        raise InputError(f"id {value!r} holds whitespace (TREC files split on it)", path=path, line=line, field=field)
    return value


def read_jsonl_records(
    path: Path, fields: tuple[str, ...], required: tuple[str, ...], nonempty: str = ""
) -> dict[str, dict[str, str]]:
    """Read a BEIR JSONL file keyed by ``_id``; every bad line is an InputError naming it.
    With ``nonempty`` (what a record is: "query"), a blank ``text`` is an error too: an empty
    query cannot be searched, and scoring it 0 would pass silently."""
    return dict(iter_jsonl_records(path, fields, required, nonempty, {}))


def iter_jsonl_records(
    path: Path, fields: tuple[str, ...], required: tuple[str, ...], nonempty: str, first_line: dict[str, int],
) -> Iterator[tuple[str, dict[str, str]]]:
    """``read_jsonl_records`` as a stream, for a corpus too large to hold: only the ids stay, in
    ``first_line`` (the caller's: id -> line, so qrels can be checked against it)."""
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
        if doc_id in first_line:
            raise InputError(
                f"duplicate _id '{doc_id}' (first seen on line {first_line[doc_id]})", path=path, line=number
            )
        values = {key: _string_field(record, key, path, number, required=key in required) for key in fields}
        if nonempty and not values["text"].strip():
            raise InputError(f"empty {nonempty} '{doc_id}'", path=path, line=number, field="text")
        first_line[doc_id] = number
        yield doc_id, values


def read_qrels_tsv(
    path: Path, queries: Mapping[str, Any], corpus: Mapping[str, Any]
) -> dict[str, dict[str, int]]:
    """Read a BEIR qrels TSV (``query-id corpus-id score``, header optional)."""
    qrels: dict[str, dict[str, int]] = {}
    first: dict[tuple[str, str], int] = {}
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
        _judge(qrels, first, qid, doc_id, _grade(score, path, number), path, number)
        _check_known(qid, doc_id, queries, corpus, path, number)
    if not qrels:
        raise InputError("no judgments", path=path)
    return qrels


GRADE_LIMIT = 2**31 - 1  # trec_eval (and pytrec_eval) keep grades in a C int


def _grade(score: str, path: Path, line: int) -> int:
    try:
        value = float(score)
    except ValueError:
        raise InputError(f"score {score!r} is not a number", path=path, line=line, field="score") from None
    if not math.isfinite(value) or value != int(value):
        raise InputError(f"score {score!r} is not an integer grade", path=path, line=line, field="score")
    if not -GRADE_LIMIT <= value <= GRADE_LIMIT:
        raise InputError(f"grade {score!r} is out of range (|grade| <= {GRADE_LIMIT})", path=path, line=line, field="score")
    return int(value)


def _judge(
    qrels: dict[str, dict[str, int]], first: dict[tuple[str, str], int], qid: str, doc_id: str, grade: int, path: Path, line: int,
) -> None:
    """Record one judgment. The same pair again with the same grade is a harmless repeat; with
    another grade it is ambiguous (which one would the measures use?) and refused."""
    seen = qrels.setdefault(qid, {}).get(doc_id)
    if seen is not None and seen != grade:
        raise InputError(
            f"query '{qid}' document '{doc_id}' judged {grade} here and {seen} on line {first[(qid, doc_id)]}",
            path=path, line=line,
        )
    if seen is None:
        first[(qid, doc_id)] = line
    qrels[qid][doc_id] = grade


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
    corpus = {doc_id: {"title": title, "text": text} for doc_id, title, text in iter_beir_corpus(folder, {})}
    queries, qrels = read_beir_judgments(folder, corpus)
    return Dataset(corpus, queries, qrels, relevance_level=relevance_level, name=name)


def iter_beir_corpus(folder: Path, ids: dict[str, int]) -> Iterator[tuple[str, str, str]]:
    """A BEIR folder's corpus as (id, title, text), checked line by line as ``read_beir`` checks
    it; ``ids`` collects id -> line. An empty corpus is an InputError once the stream ends."""
    corpus_path = beir_files(folder)[0]
    for doc_id, record in iter_jsonl_records(corpus_path, ("title", "text"), ("text",), "", ids):
        yield doc_id, record["title"], record["text"]
    if not ids:
        raise InputError("empty corpus: no documents", path=corpus_path)


def read_beir_judgments(folder: Path, corpus: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, dict[str, dict[str, int]]]]:
    """A BEIR folder's queries and qrels by split, the qrels checked against ``corpus``'s ids."""
    _, queries_path, *qrels_paths = beir_files(folder)
    queries = {
        qid: rec["text"]
        for qid, rec in read_jsonl_records(queries_path, ("text",), required=("text",), nonempty="query").items()
    }
    if not queries:
        raise InputError("no queries", path=queries_path)
    return queries, {path.stem: read_qrels_tsv(path, queries, corpus) for path in qrels_paths}


def read_id_tsv(path: Path, id_field: str, text_field: str, *, nonempty: bool = False) -> dict[str, str]:
    """A two-column TSV of (id, text): MS MARCO's ``collection.tsv`` (pid, passage) and its query
    files (qid, query). Ids are unique tokens; with ``nonempty`` a blank text is an error too."""
    return dict(iter_id_tsv(path, id_field, text_field, set(), nonempty=nonempty))


def iter_id_tsv(path: Path, id_field: str, text_field: str, seen: set[str], *, nonempty: bool = False) -> Iterator[tuple[str, str]]:
    """``read_id_tsv`` as a stream, for a collection too large to hold: only the ids stay, in
    ``seen`` (the caller's, so qrels can be checked against it)."""
    for number, text in read_lines(path):
        columns = text.split("\t")
        if len(columns) != 2:
            raise InputError(f"expected 2 tab-separated columns ({id_field}, {text_field}), got {len(columns)}", path=path, line=number)
        key = check_id(columns[0].strip(), path, number, id_field)
        if key in seen:
            raise InputError(f"duplicate {id_field} '{key}'", path=path, line=number)
        if nonempty and not columns[1].strip():
            raise InputError(f"empty {text_field} '{key}'", path=path, line=number, field=text_field)
        seen.add(key)
        yield key, columns[1]


def read_trec_qrels(path: Path, queries: Mapping[str, Any], corpus: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """TREC qrels (``qid iter docid grade``, whitespace-separated), checked against the ids."""
    qrels: dict[str, dict[str, int]] = {}
    first: dict[tuple[str, str], int] = {}
    for number, text in read_lines(path):
        columns = text.split()
        if len(columns) != 4:
            raise InputError(f"expected 4 columns (qid iter docid rel), got {len(columns)}", path=path, line=number)
        qid, _, doc_id, grade = columns
        _judge(qrels, first, qid, doc_id, _grade(grade, path, number), path, number)
        _check_known(qid, doc_id, queries, corpus, path, number)
    if not qrels:
        raise InputError("no judgments", path=path)
    return qrels


def read_trec_dl(
    collection: Path, topics: Path, qrels_path: Path, split: str = "test", relevance_level: int = 2
) -> Dataset:
    """Read MS MARCO ``collection.tsv`` (pid, passage), a topics TSV (qid, query) and TREC qrels."""
    corpus = {pid: {"title": "", "text": text} for pid, text in read_id_tsv(collection, "pid", "passage").items()}
    if not corpus:
        raise InputError("empty corpus: no passages", path=collection)
    queries = read_id_tsv(topics, "qid", "query", nonempty=True)
    qrels = read_trec_qrels(qrels_path, queries, corpus)
    return Dataset(corpus, queries, {split: qrels}, relevance_level=relevance_level)
