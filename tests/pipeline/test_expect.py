"""Expected results, Pyserini-style: OK within the tolerance, OKish within the looser one, FAIL
beyond it or when a cell is missing; a FAIL is one line naming the cell and both values."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from retrieval_cli.errors import InputError
from retrieval_cli.pipeline import expect

TABLE = pd.DataFrame([
    {"system": "bm25", "dataset": "home", "measure": "nDCG@10", "value": 0.5012},
    {"system": "bm25", "dataset": "home", "measure": "R@100", "value": 0.8100},
    {"system": "dense", "dataset": "home", "measure": "nDCG@10", "value": 0.6000},
])


def test_cells_are_ok_okish_or_fail(tmp_path: Path) -> None:
    path = tmp_path / "expected.json"
    path.write_text(json.dumps({
        "bm25": {"home": {"nDCG@10": 0.5000, "R@100": 0.8000}},
        "dense": {"home": {"nDCG@10": 0.6000, "RR@10": 0.4}},
    }), encoding="utf-8")
    wanted = expect.Expectation(path, tolerance=0.005, okish=0.02)
    verdicts = {(c.system, c.measure): c.verdict for c in expect.compare(TABLE, wanted)}
    assert verdicts == {("bm25", "nDCG@10"): "OK", ("bm25", "R@100"): "OKish", ("dense", "nDCG@10"): "OK", ("dense", "RR@10"): "FAIL"}
    with pytest.raises(expect.ExpectationFailed) as info:
        expect.enforce(expect.compare(TABLE, wanted), wanted)
    assert str(info.value) == f"{path}: dense | home RR@10: expected 0.4000 ± 0.005, measured missing"
    assert info.value.exit_code == 1

    drifted = expect.Expectation(path, tolerance=0.005, okish=0.005)
    with pytest.raises(expect.ExpectationFailed, match=r"bm25 \| home R@100: expected 0.8000 ± 0.005, measured 0.8100 \(1 more cells failed\)"):
        expect.enforce(expect.compare(TABLE, drifted), drifted)


def test_written_values_check_ok_and_bad_files_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    expect.write(path, TABLE)
    assert all(c.verdict == "OK" for c in expect.compare(TABLE, expect.Expectation(path)))
    with pytest.raises(InputError, match="no expected values yet"):
        expect.read(tmp_path / "none.json")
    path.write_text('{"bm25": {"home": {"nDCG@10": "high"}}}', encoding="utf-8")
    with pytest.raises(InputError, match="must map system -> dataset -> measure -> number"):
        expect.read(path)
    with pytest.raises(InputError, match="report.tolerance: needs report.expect"):
        expect.from_recipe(tmp_path / "r.yaml", {"tolerance": 0.01})
