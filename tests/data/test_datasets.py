from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from conftest import GOOD_CORPUS, GOOD_QRELS, GOOD_QUERIES, write_beir
from retrieval_cli import data as datasets
from retrieval_cli.cli import app
from retrieval_cli.data import synthetic
from retrieval_cli.derive.subset import subset
from retrieval_cli.errors import InputError, RetrievalError
from retrieval_cli.store import Workspace


def test_beir_import_round_trips(ws: Workspace, beir_folder: Path) -> None:
    art = datasets.import_beir(ws, beir_folder, "toy").artifact
    loaded = datasets.load(art)
    original = datasets.read_beir(beir_folder)
    assert loaded.corpus == original.corpus
    assert loaded.queries == original.queries
    assert loaded.qrels == {"test": {"q1": {"d1": 2, "d3": 1}, "q2": {"d2": 1}}}
    assert art.summary["splits"]["test"] == {"queries": 2, "judgments": 3, "relevant": 3}
    # The streamed import writes the bytes and summary of the whole-corpus reader and writer.
    held = ws.root.parent / "held"
    datasets.write_beir(original, held)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        assert art.file(name).read_bytes() == (held / name).read_bytes()
    assert {k: v for k, v in art.summary.items() if k != "origin"} == original.stats()
    # the same files import to the same version; a changed file gives a new one
    assert datasets.import_beir(ws, beir_folder, "toy").reused
    (beir_folder / "queries.jsonl").write_text(GOOD_QUERIES.replace("rivers", "lakes"))
    assert datasets.import_beir(ws, beir_folder, "toy").artifact.version != art.version


def test_bom_crlf_and_int_ids_are_accepted(tmp_path: Path) -> None:
    corpus = '\ufeff{"_id": 1, "text": "one"}\r\n{"_id": "2", "text": "two"}\r\n\r\n'
    folder = write_beir(tmp_path / "b", corpus, '{"_id": "q", "text": "one"}\n', "q\t1\t1\n")
    data = datasets.read_beir(folder)
    assert list(data.corpus) == ["1", "2"] and data.qrels["test"] == {"q": {"1": 1}}


BAD_CASES = [
    # (file, content, expected fragment of the message)
    ("corpus", GOOD_CORPUS + '{"_id": "d4", "text": \n', "corpus.jsonl:4: invalid JSON"),
    ("corpus", GOOD_CORPUS + '{"title": "no id", "text": "x"}\n', "corpus.jsonl:4 field '_id': missing"),
    ("corpus", GOOD_CORPUS + '{"_id": "d4", "title": "no text"}\n', "corpus.jsonl:4 field 'text': missing"),
    ("corpus", GOOD_CORPUS + '{"_id": "d1", "text": "again"}\n', "corpus.jsonl:4: duplicate _id 'd1' (first seen on line 1)"),
    ("corpus", GOOD_CORPUS + '{"_id": "d4", "text": 5}\n', "corpus.jsonl:4 field 'text': expected a string, got int"),
    ("corpus", GOOD_CORPUS + '["not", "an", "object"]\n', "corpus.jsonl:4: expected a JSON object"),
    ("corpus", "", "corpus.jsonl: empty corpus"),
    ("queries", GOOD_QUERIES + '{"_id": "q3"}\n', "queries.jsonl:3 field 'text': missing"),
    ("qrels", GOOD_QRELS + "q9\td1\t1\n", "test.tsv:5 field 'query-id': query id 'q9' is not in the queries"),
    ("qrels", GOOD_QRELS + "q1\td9\t1\n", "test.tsv:5 field 'corpus-id': document id 'd9' is not in the corpus"),
    ("qrels", GOOD_QRELS + "q1\td2\n", "test.tsv:5: expected 3 tab-separated columns"),
    ("qrels", GOOD_QRELS + "q1\td2\thigh\n", "test.tsv:5 field 'score': score 'high' is not a number"),
    ("qrels", GOOD_QRELS + "q1\td2\tnan\n", "test.tsv:5 field 'score': score 'nan' is not an integer grade"),
]


@pytest.mark.parametrize("which,content,expected", BAD_CASES)
def test_bad_beir_input_names_file_line_field(tmp_path: Path, which: str, content: str, expected: str) -> None:
    files = {"corpus": GOOD_CORPUS, "queries": GOOD_QUERIES, "qrels": GOOD_QRELS, which: content}
    folder = write_beir(tmp_path / "b", files["corpus"], files["queries"], files["qrels"])
    with pytest.raises(InputError) as info:
        datasets.read_beir(folder)
    assert expected in str(info.value)


def test_non_utf8_line_is_named(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "b", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    with open(folder / "corpus.jsonl", "ab") as out:
        out.write(b'{"_id": "d4", "text": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"corpus.jsonl:4: not valid UTF-8"):
        datasets.read_beir(folder)


def test_cli_bad_input_exit_2_one_line_no_artifact(runner, tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "b", GOOD_CORPUS + '{"_id": "d1", "text": "dup"}\n', GOOD_QUERIES, GOOD_QRELS)
    ws = tmp_path / "ws"
    result = runner.invoke(app, ["data", "import", "beir", str(folder), "--name", "bad", "--workspace", str(ws)])
    assert result.exit_code == 2
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and "corpus.jsonl:4" in lines[0] and "duplicate _id 'd1'" in lines[0]
    assert "Traceback" not in result.output
    assert Workspace(ws).artifacts() == []


@pytest.mark.parametrize("file, line, field", [("corpus.jsonl", 4, "text"), ("queries.jsonl", 3, "text")])
def test_an_escaped_lone_surrogate_is_one_line_naming_file_line_and_field(runner, tmp_path: Path, file: str, line: int, field: str) -> None:  # noqa: ANN001
    """Issue 32 item 8: plain json.dumps writes a lone surrogate as an escape; UTF-8 cannot hold it."""
    import json

    bad = json.dumps({"_id": "x9", "text": "lone \ud800 surrogate"})
    assert "\\ud800" in bad
    corpus, queries = GOOD_CORPUS, GOOD_QUERIES
    if file == "corpus.jsonl":
        corpus += bad + "\n"
    else:
        queries += bad + "\n"
    folder = write_beir(tmp_path / "b", corpus, queries, GOOD_QRELS)
    result = runner.invoke(app, ["data", "import", "beir", str(folder), "--name", "s", "--workspace", str(tmp_path / "ws")])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert f"{file}:{line} field '{field}': holds a lone surrogate \\ud800" in lines[0]
    assert Workspace(tmp_path / "ws").artifacts() == []
    paired = json.dumps({"_id": "x9", "text": "a pair \U0001F642 is fine"})  # "\ud83d\ude42": one character
    folder = write_beir(tmp_path / "c", GOOD_CORPUS + paired + "\n", GOOD_QUERIES, GOOD_QRELS)
    assert "\U0001F642" in datasets.read_beir(folder).corpus["x9"]["text"]


def test_trec_dl_import(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "collection.tsv").write_text("100\tfirst passage\n200\tsecond passage\n300\tthird\n")
    (tmp_path / "topics.tsv").write_text("1\twhat is first\n2\tsecond thing\n")
    (tmp_path / "qrels.txt").write_text("1 0 100 3\n1 0 200 1\n2 0 300 0\n2 0 200 2\n")
    art = datasets.import_trec_dl(ws, tmp_path / "collection.tsv", tmp_path / "topics.tsv", tmp_path / "qrels.txt", "dl").artifact
    data = datasets.load(art)
    assert data.relevance_level == 2
    assert data.corpus["200"] == {"title": "", "text": "second passage"}
    assert data.qrels["test"] == {"1": {"100": 3, "200": 1}, "2": {"300": 0, "200": 2}}
    assert art.summary["splits"]["test"]["relevant"] == 2  # grades >= 2 only
    (tmp_path / "qrels.txt").write_text("1 0 100\n")
    with pytest.raises(InputError, match=r"qrels.txt:1: expected 4 columns"):
        datasets.import_trec_dl(ws, tmp_path / "collection.tsv", tmp_path / "topics.tsv", tmp_path / "qrels.txt", "dl")


def test_synthetic_is_deterministic_and_consistent() -> None:
    config = synthetic.SynthConfig(documents=200, test_queries=20, train_queries=10, seed=3)
    a, b = synthetic.generate(config), synthetic.generate(config)
    assert a.corpus == b.corpus and a.queries == b.queries and a.qrels == b.qrels
    c = synthetic.generate(synthetic.SynthConfig(documents=200, test_queries=20, train_queries=10, seed=4))
    assert c.corpus != a.corpus
    assert len(a.corpus) == 200 and len(a.qrels["test"]) == 20 and len(a.qrels["train"]) == 10
    assert not set(a.qrels["test"]) & set(a.qrels["train"])
    for judged in a.qrels.values():
        for docs in judged.values():
            assert all(d in a.corpus for d in docs) and max(docs.values()) == 2


def test_synth_cli_same_seed_same_version(runner, tmp_path: Path) -> None:
    args = ["data", "synth", "--documents", "50", "--test-queries", "5", "--train-queries", "5", "-w", str(tmp_path)]
    first = runner.invoke(app, args)
    second = runner.invoke(app, args)
    assert first.exit_code == 0 and second.exit_code == 0, first.output
    assert "wrote dataset" in first.output and "reused dataset" in second.output
    assert len(Workspace(tmp_path).artifacts("datasets")) == 1


def test_fetch_offline_fails_with_one_line(runner, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(datasets.BEIR_URL_ENV, "http://127.0.0.1:9/{name}.zip")  # discard port: refused
    result = runner.invoke(app, ["data", "fetch", "scifact", "-w", str(tmp_path)])
    assert result.exit_code == 1
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and "cannot download http://127.0.0.1:9/scifact.zip" in lines[0]
    assert Workspace(tmp_path).artifacts() == []


def test_fetch_checks_md5_and_imports(ws: Workspace, tmp_path: Path, monkeypatch) -> None:
    folder = write_beir(tmp_path / "src" / "scifact", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    archive = tmp_path / "mirror" / "scifact.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in folder.rglob("*"):
            zipped.write(path, path.relative_to(folder.parent).as_posix())
    monkeypatch.setenv(datasets.BEIR_URL_ENV, (tmp_path / "mirror").as_uri() + "/{name}.zip")
    with pytest.raises(RetrievalError, match="checksum mismatch"):
        datasets.fetch_beir(ws, "scifact")
    monkeypatch.setitem(datasets.BEIR_MD5, "scifact", hashlib.md5(archive.read_bytes()).hexdigest())
    art = datasets.fetch_beir(ws, "scifact").artifact
    assert datasets.load(art).qrels["test"]["q1"] == {"d1": 2, "d3": 1}
    with pytest.raises(InputError, match="unknown BEIR dataset 'scifakt'"):
        datasets.fetch_beir(ws, "scifakt")


def test_subset_keeps_judged_docs_and_bm25_distractors(session_ws: Workspace, tiny) -> None:
    sub = subset(session_ws, tiny, queries=5, seed=1, distractors="bm25:10").artifact
    data, full = datasets.load(sub), datasets.load(tiny)
    assert len(data.qrels["test"]) == 5 and set(data.queries) == set(data.qrels["test"])
    judged = {d for docs in data.qrels["test"].values() for d in docs}
    assert judged <= set(data.corpus)
    assert len(judged) < len(data.corpus) <= len(judged) + 5 * 10
    assert all(full.corpus[d] == doc for d, doc in data.corpus.items())
    assert set(sub.manifest["inputs"]) == {"dataset", "index"}
    again = subset(session_ws, tiny, queries=5, seed=1, distractors="bm25:10")
    assert again.reused
    none = datasets.load(subset(session_ws, tiny, queries=5, seed=1, distractors="none").artifact)
    assert set(none.corpus) == judged
    with pytest.raises(InputError, match="distractors must be"):
        subset(session_ws, tiny, distractors="dense:5")


def test_same_files_from_another_place_reuse_the_dataset(ws: Workspace, beir_folder: Path, tmp_path: Path, monkeypatch) -> None:
    import shutil

    first = datasets.import_beir(ws, beir_folder, "toy")
    copy = shutil.copytree(beir_folder, tmp_path / "elsewhere")
    again = datasets.import_beir(ws, copy, "toy")
    assert again.reused and again.artifact.version == first.artifact.version
    assert first.artifact.summary["origin"] == str(beir_folder.resolve())
    # a download unpacks into a fresh temporary folder each time: the second fetch is a cache hit
    archive = tmp_path / "mirror" / "scifact.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in beir_folder.rglob("*"):
            zipped.write(path, "scifact/" + path.relative_to(beir_folder).as_posix())
    monkeypatch.setenv(datasets.BEIR_URL_ENV, archive.parent.as_uri() + "/{name}.zip")
    monkeypatch.setitem(datasets.BEIR_MD5, "scifact", hashlib.md5(archive.read_bytes()).hexdigest())
    fetched = datasets.fetch_beir(ws, "scifact")
    assert datasets.fetch_beir(ws, "scifact").reused
    assert fetched.artifact.summary["origin"] == archive.as_uri()


def test_missing_trec_dl_file_is_named(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"collection.tsv: no such file"):
        datasets.import_trec_dl(ws, tmp_path / "collection.tsv", tmp_path / "t.tsv", tmp_path / "q.txt", "dl")


def _corpus_lines(tmp_path: Path) -> Path:
    """A corpus.jsonl as write_beir writes it, plus a line in another key order and odd ids."""
    data = datasets.Dataset(
        {"d1": {"title": "T", "text": "one"}, "ünï \"q\"\n": {"title": "", "text": "two ✓"}, "3": {"title": "x", "text": "three"}},
        {}, {},
    )
    datasets.write_beir(data, tmp_path / "c")
    path = tmp_path / "c" / "corpus.jsonl"
    with open(path, "a", encoding="utf-8") as out:
        out.write('{"text": "four", "title": "", "_id": "d4"}\n')  # not write_beir's order: the slow path
    return path


def test_corpus_file_reads_what_the_eager_loader_reads(tmp_path: Path) -> None:
    path = _corpus_lines(tmp_path)
    corpus = datasets.CorpusFile(path)
    assert list(corpus) == ["d1", "ünï \"q\"\n", "3", "d4"]
    assert len(corpus) == 4 and corpus.ids[-1] == "d4" and corpus.ids[1:3] == ["ünï \"q\"\n", "3"]
    assert corpus["ünï \"q\"\n"] == {"title": "", "text": "two ✓"}
    assert corpus["d4"] == {"title": "", "text": "four"} and corpus["3"]["title"] == "x"
    assert "d1" in corpus and "d5" not in corpus and 3 not in corpus
    with pytest.raises(KeyError):
        corpus["d5"]
    with pytest.raises(IndexError):
        corpus.ids[4]
    corpus.close()


def test_corpus_file_resolves_hash_collisions(tmp_path: Path) -> None:
    class Colliding(datasets.CorpusFile):
        _hash = staticmethod(lambda doc_id: 7)  # every id in one bucket: found by comparing ids

    corpus = Colliding(_corpus_lines(tmp_path))
    assert [corpus[d]["text"] for d in ("3", "d4", "d1")] == ["three", "four", "one"]
    assert "d5" not in corpus


def test_lazy_load_matches_eager_load(ws: Workspace, beir_folder: Path) -> None:
    art = datasets.import_beir(ws, beir_folder, "toy").artifact
    eager, lazy = datasets.load(art), datasets.load(art, lazy_corpus=True)
    assert isinstance(lazy.corpus, datasets.CorpusFile)
    assert list(lazy.doc_ids()) == eager.doc_ids() == list(eager.corpus)
    assert {d: lazy.doc_text(d) for d in lazy.doc_ids()} == {d: eager.doc_text(d) for d in eager.corpus}
    assert (lazy.queries, lazy.qrels) == (eager.queries, eager.qrels)


def test_qrels_grades_are_integers_that_fit_the_evaluator(tmp_path: Path) -> None:
    qrels = "query-id\tcorpus-id\tscore\nq1\td1\t99999999999999999999999\n"
    folder = write_beir(tmp_path / "big", GOOD_CORPUS, GOOD_QUERIES, qrels)
    with pytest.raises(InputError, match=r"qrels/test.tsv:2 field 'score': grade '99999999999999999999999' is out of range"):
        datasets.read_beir(folder)


def test_ids_with_whitespace_are_refused_at_import(tmp_path: Path) -> None:
    corpus = GOOD_CORPUS + '{"_id": "d 4", "title": "", "text": "spaced id"}\n'
    with pytest.raises(InputError, match=r"corpus.jsonl:4 field '_id': id 'd 4' holds whitespace"):
        datasets.read_beir(write_beir(tmp_path / "space", corpus, GOOD_QUERIES, GOOD_QRELS))
    queries = GOOD_QUERIES + '{"_id": "q\\t3", "text": "tabbed"}\n'
    with pytest.raises(InputError, match=r"queries.jsonl:3 field '_id': id 'q\\t3' holds whitespace"):
        datasets.read_beir(write_beir(tmp_path / "tab", GOOD_CORPUS, queries, GOOD_QRELS))
    (tmp_path / "collection.tsv").write_text("p 1\tspaced pid\n", encoding="utf-8")
    (tmp_path / "topics.tsv").write_text("1\tquery\n", encoding="utf-8")
    (tmp_path / "qrels.txt").write_text("1 0 p 2\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"collection.tsv:1 field 'pid': id 'p 1' holds whitespace"):
        datasets.read_trec_dl(tmp_path / "collection.tsv", tmp_path / "topics.tsv", tmp_path / "qrels.txt")


def test_a_pair_judged_twice_with_two_grades_is_refused(tmp_path: Path) -> None:
    repeated = GOOD_QRELS + "q1\td1\t2\n"  # the same judgment again: a harmless repeat
    assert datasets.read_beir(write_beir(tmp_path / "same", GOOD_CORPUS, GOOD_QUERIES, repeated)).qrels["test"]["q1"]["d1"] == 2
    conflicting = GOOD_QRELS + "q1\td1\t0\n"
    with pytest.raises(InputError, match=r"qrels/test.tsv:5: query 'q1' document 'd1' judged 0 here and 2 on line 2"):
        datasets.read_beir(write_beir(tmp_path / "two", GOOD_CORPUS, GOOD_QUERIES, conflicting))


def _msmarco_files(folder: Path) -> dict[str, Path]:
    """A tiny MS MARCO-shaped collection: train and dev judged at level 1, a TREC-DL split graded 0-3."""
    folder.mkdir()
    files = {
        "collection": "0\tthe river runs\n1\tmountain paths\n2\triver banks and mountains\n3\tdesert sand\n4\triver fish\n",
        "queries.train": "10\tmountains\n11\tsand\n",
        "qrels.train": "10\t0\t1\t1\n11\t0\t3\t1\n",
        "queries.dev": "20\triver\n",
        "qrels.dev": "20\t0\t0\t1\n",
        "dl19.queries": "30\triver water\n",
        "dl19.qrels": "30 0 0 3\n30 0 2 1\n30 0 4 2\n30 0 3 0\n",
    }
    paths = {}
    for stem, text in files.items():
        paths[stem] = folder / f"{stem}.tsv"
        paths[stem].write_text(text, encoding="utf-8")
    return paths


def test_msmarco_shaped_splits_share_one_corpus_and_keep_their_levels(ws: Workspace, tmp_path: Path) -> None:
    from retrieval_cli import evaluate as evaluation
    from retrieval_cli.evaluate import runs

    f = _msmarco_files(tmp_path / "msmarco")
    splits = [
        datasets.SplitFiles.parse(f"train={f['queries.train']},{f['qrels.train']}"),
        datasets.SplitFiles.parse(f"dev={f['queries.dev']},{f['qrels.dev']}"),
        datasets.SplitFiles.parse(f"dl19={f['dl19.queries']},{f['dl19.qrels']},2"),
    ]
    art = datasets.import_msmarco(ws, f["collection"], splits, "mm").artifact
    assert sorted(p.name for p in (art.path / "qrels").iterdir()) == ["dev.tsv", "dl19.tsv", "train.tsv"]
    assert len(art.file("corpus.jsonl").read_text(encoding="utf-8").splitlines()) == 5  # the corpus, once
    data = datasets.load(art)
    assert (data.level("train"), data.level("dev"), data.level("dl19")) == (1, 1, 2)
    assert art.summary["splits"]["dl19"] == {"queries": 1, "judgments": 4, "relevant": 2, "relevance_level": 2}

    # One run over every split's queries: passage 0 first, then 3, then 2 (4 is not retrieved).
    run = tmp_path / "one.run"
    runs.write_trec({"20": [("0", 3.0), ("3", 2.0), ("2", 1.0)], "30": [("0", 3.0), ("3", 2.0), ("2", 1.0)]}, run, "t")
    dev = evaluation.metrics(evaluation.evaluate(ws, dataset=art, run_file=run, config=evaluation.EvaluateConfig(split="dev", measures=["R@100"])).artifact)
    dl19 = evaluation.metrics(evaluation.evaluate(ws, dataset=art, run_file=run, config=evaluation.EvaluateConfig(split="dl19", measures=["R@100"])).artifact)
    assert dev["measures"]["R@100"] == "R@100" and dev["aggregate"]["R@100"] == pytest.approx(1.0)  # level 1: ir-measures default
    # At level 2 only passages 0 (grade 3) and 4 (grade 2) count; 2 (grade 1) does not: 1 of 2 found.
    assert dl19["measures"]["R@100"] == "R(rel=2)@100" and dl19["aggregate"]["R@100"] == pytest.approx(0.5)
    assert dl19["relevance_level"] == 2 and dev["relevance_level"] == 1


def test_msmarco_import_refuses_a_query_with_two_texts_and_bad_split_arguments(ws: Workspace, tmp_path: Path) -> None:
    f = _msmarco_files(tmp_path / "msmarco")
    f["queries.dev"].write_text("10\tanother text\n20\triver\n", encoding="utf-8")
    splits = [datasets.SplitFiles("train", f["queries.train"], f["qrels.train"]), datasets.SplitFiles("dev", f["queries.dev"], f["qrels.dev"])]
    with pytest.raises(InputError, match=r"queries.dev.tsv field 'query': query '10' has another text"):
        datasets.import_msmarco(ws, f["collection"], splits, "mm")
    with pytest.raises(InputError, match="--split must be NAME=QUERIES,QRELS"):
        datasets.SplitFiles.parse("dev=only-one-file.tsv")
    with pytest.raises(InputError, match="the level must be an integer"):
        datasets.SplitFiles.parse("dl=a.tsv,b.txt,two")


def test_subset_of_every_split_keeps_each_splits_queries(session_ws: Workspace, tiny) -> None:  # noqa: ANN001
    sub = subset(session_ws, tiny, queries=4, split="all", seed=1, distractors="none").artifact
    data, full = datasets.load(sub), datasets.load(tiny)
    assert sorted(data.qrels) == sorted(full.qrels) == ["test", "train"]
    for split in ("test", "train"):
        assert len(data.qrels[split]) == 4 and all(full.qrels[split][q] == j for q, j in data.qrels[split].items())
    judged = {d for split in data.qrels.values() for docs in split.values() for d in docs}
    assert set(data.corpus) == judged  # no distractors asked: exactly the judged documents
    one = datasets.load(subset(session_ws, tiny, queries=4, split="test", seed=1, distractors="none").artifact)
    assert list(one.qrels) == ["test"]
