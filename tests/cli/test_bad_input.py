"""Bad input, property-tested: whatever bytes a loader is given, it returns data or raises one
InputError naming the file (and line), never another exception; through the CLI that is exit 2,
one line, and no artifact."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from retrieval_cli import data as datasets
from retrieval_cli.cli import app
from retrieval_cli.errors import InputError
from retrieval_cli.evaluate import runs
from retrieval_cli.store import Workspace
from tests.conftest import GOOD_CORPUS, GOOD_QRELS, GOOD_QUERIES, write_beir

# derandomize: CI sees the same examples each run; a new bug shows up as a change, not as flakiness.
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Lines built from the pieces real files break with: tabs, quotes, braces, BOMs, CR, NUL, NaN, huge numbers.
PIECES = st.sampled_from([
    "\t", " ", '"', "{", "}", "[", "]", ":", ",", "_id", "text", "title", "q1", "d1", "1", "-1", "2.5", "NaN",
    "Infinity", "1e400", "null", "true", "\r", "\x00", "\ufeff", "é", "🙂", "Q0", "x" * 300,
])
LINES = st.lists(st.lists(PIECES, max_size=12).map("".join), max_size=6).map(lambda ls: "\n".join(ls) + "\n")
BYTES = st.one_of(st.binary(max_size=400), LINES.map(lambda s: s.encode("utf-8")))


def _mutations(good: str) -> st.SearchStrategy[bytes]:
    """A good file, truncated, with bytes spliced in, or with a line duplicated."""
    data = good.encode("utf-8")
    cut = st.integers(0, len(data)).map(lambda i: data[:i])
    splice = st.tuples(st.integers(0, len(data)), st.binary(min_size=1, max_size=8)).map(lambda t: data[:t[0]] + t[1] + data[t[0]:])
    lines = data.splitlines(keepends=True)
    dup = st.integers(0, len(lines) - 1).map(lambda i: b"".join(lines[: i + 1] + [lines[i]] + lines[i + 1:]))
    return st.one_of(cut, splice, dup, BYTES)


def _names_the_file(exc: InputError, path: Path) -> None:
    message = str(exc)
    assert message.startswith(str(path)), message
    assert "\n" not in message
    if exc.line is not None:
        assert message.startswith(f"{path}:{exc.line}")


def _load(loader, path: Path, data: bytes) -> None:  # noqa: ANN001
    path.write_bytes(data)
    try:
        loader(path)
    except InputError as exc:
        _names_the_file(exc, path)


@SETTINGS
@given(data=_mutations(GOOD_CORPUS))
@example(data=b"[" * 100_000 + b"\n")  # nesting deeper than the JSON parser's recursion limit
@example(data=b'{"_id": "d1", "text": NaN}\n')
@example(data=b'{"_id": "d1", "text": "' + b"a" * 2_000_000 + b'"}\n')  # a huge field is data, not an error
def test_jsonl_loader_returns_data_or_names_file_and_line(tmp_path: Path, data: bytes) -> None:
    _load(lambda p: datasets.read_jsonl_records(p, ("title", "text"), ("text",)), tmp_path / "corpus.jsonl", data)


@SETTINGS
@given(data=_mutations(GOOD_QRELS))
@example(data=b"query-id\tcorpus-id\tscore\nq1\td1\tNaN\n")
@example(data=b"q1\td1\t1\textra\n")
def test_qrels_loader_returns_data_or_names_file_and_line(tmp_path: Path, data: bytes) -> None:
    queries, corpus = {"q1": "rivers", "q2": "mountains"}, {"d1": {}, "d2": {}, "d3": {}}
    _load(lambda p: datasets.read_qrels_tsv(p, queries, corpus), tmp_path / "test.tsv", data)


GOOD_RUN = "q1 Q0 d1 1 2.5 t\nq1 Q0 d3 2 1.5 t\nq2 Q0 d2 1 0.5 t\n"


@SETTINGS
@given(data=_mutations(GOOD_RUN))
@example(data=b"q1 Q0 d1 1 nan t\n")
@example(data=b"q1 Q0 d1 1 2.5\n")
def test_run_loader_returns_data_or_names_file_and_line(tmp_path: Path, data: bytes) -> None:
    _load(runs.read_trec, tmp_path / "run.trec", data)


@SETTINGS
@given(collection=_mutations("1\tfirst passage\n2\tsecond\n"), topics=_mutations("10\tfirst query\n"), qrels=_mutations("10 0 1 2\n"))
@example(collection=b"1\tfirst\n", topics=b"10\t \n", qrels=b"10 0 1 2\n")  # an empty query
@example(collection=b"1\tfirst\n", topics=b"\t query\n", qrels=b"10 0 1 2\n")  # an empty qid
def test_trec_dl_loader_returns_data_or_names_the_file(tmp_path: Path, collection: bytes, topics: bytes, qrels: bytes) -> None:
    paths = {name: tmp_path / name for name in ("collection.tsv", "topics.tsv", "qrels.txt")}
    for (name, path), data in zip(paths.items(), (collection, topics, qrels)):
        path.write_bytes(data)
    try:
        dataset = datasets.read_trec_dl(*paths.values())
    except InputError as exc:
        assert any(str(exc).startswith(str(p)) for p in paths.values()), str(exc)
        return
    assert all(q.strip() for q in dataset.queries.values()) and all(dataset.queries)


@pytest.mark.parametrize("which, content, expected", [
    ("queries", '{"_id": "q1", "text": ""}\n{"_id": "q2", "text": "mountains"}\n', "queries.jsonl:1 field 'text': empty query"),
    ("queries", '{"_id": "q1", "text": "  \\t "}\n', "queries.jsonl:1 field 'text': empty query"),
    ("corpus", "[" * 100_000 + "\n", "corpus.jsonl:1: invalid JSON (nested too deeply)"),
])
def test_named_bad_input_classes(tmp_path: Path, which: str, content: str, expected: str) -> None:
    files = {"corpus": GOOD_CORPUS, "queries": GOOD_QUERIES, "qrels": GOOD_QRELS, which: content}
    folder = write_beir(tmp_path / "b", files["corpus"], files["queries"], files["qrels"])
    with pytest.raises(InputError) as info:
        datasets.read_beir(folder)
    assert str(info.value).endswith(expected) or expected in str(info.value)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_mutations(GOOD_CORPUS))
def test_cli_import_of_broken_corpus_is_exit_2_one_line_no_artifact(runner, tmp_path_factory, data: bytes) -> None:  # noqa: ANN001
    root = tmp_path_factory.mktemp("cli")
    folder = write_beir(root / "b", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    (folder / "corpus.jsonl").write_bytes(data)
    ws = root / "ws"
    result = runner.invoke(app, ["data", "import", "beir", str(folder), "--name", "x", "--workspace", str(ws)])
    if result.exit_code == 0:  # the mutation left a valid corpus (a truncation at a line end, say)
        assert len(Workspace(ws).artifacts()) == 1
        return
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and re.match(r"error: .*corpus\.jsonl(:\d+)?", lines[0]), result.output
    assert Workspace(ws).artifacts() == [] and "Traceback" not in result.output


def test_bom_and_crlf_files_load_like_plain_ones(tmp_path: Path) -> None:
    plain = write_beir(tmp_path / "plain", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    crlf = write_beir(tmp_path / "crlf", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        text = (crlf / name).read_text(encoding="utf-8")
        (crlf / name).write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    a, b = datasets.read_beir(plain), datasets.read_beir(crlf)
    assert (a.corpus, a.queries, a.qrels) == (b.corpus, b.queries, b.qrels)
    assert json.dumps(a.queries) == json.dumps(b.queries)
