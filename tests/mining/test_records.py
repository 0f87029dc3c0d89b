"""Exports of a negatives artifact to sentence-transformers columns."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import mine
from retrieval_cli import data as datasets
from retrieval_cli.errors import InputError
from retrieval_cli.mining import MiningConfig
from retrieval_cli.mining import records as negatives
from retrieval_cli.store import Workspace


@pytest.fixture(scope="module")
def mined(session_ws: Workspace, tiny):  # noqa: ANN001, ANN201
    art = mine(session_ws, tiny, MiningConfig(strategy="bm25", range_max=30, num_negatives=3, range_min=0, sampling="top")).artifact
    records = [json.loads(line) for line in art.file("negatives.jsonl").read_text().splitlines()]
    return art, records, datasets.load(tiny)


def _read(path) -> list[dict]:  # noqa: ANN001
    if str(path).endswith(".parquet"):
        return pd.read_parquet(path).to_dict("records")
    return [json.loads(line) for line in open(path, encoding="utf-8")]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_triplet_rows_are_positives_times_negatives(session_ws, mined, tmp_path, suffix) -> None:  # noqa: ANN001
    art, records, data = mined
    result = negatives.export(session_ws, art, "triplet", tmp_path / f"t{suffix}")
    rows = _read(result.path)
    assert len(rows) == result.rows == sum(len(r["positives"]) * len(r["negatives"]) for r in records)
    first = records[0]
    assert rows[0] == {
        "anchor": first["query"],
        "positive": data.doc_text(first["positives"][0]["doc_id"]),
        "negative": data.doc_text(first["negatives"][0]["doc_id"]),
    }


def test_n_tuple_skips_short_queries_and_scores_are_margins(session_ws, mined, tmp_path) -> None:  # noqa: ANN001
    art, records, data = mined
    full = [r for r in records if len(r["negatives"]) >= 3]
    result = negatives.export(session_ws, art, "n-tuple-scores", tmp_path / "n.jsonl")
    assert result.skipped_short == len(records) - len(full)
    assert result.columns == ["anchor", "positive", "negative_1", "negative_2", "negative_3", "label"]
    row = _read(result.path)[0]
    record = full[0]
    pos = record["positives"][0]["scores"]["bm25"]
    assert row["label"] == pytest.approx([pos - n["score"] for n in record["negatives"]])
    assert row["negative_3"] == data.doc_text(record["negatives"][2]["doc_id"])
    two = negatives.export(session_ws, art, "n-tuple", tmp_path / "n2.jsonl", num_negatives=2)
    assert two.columns == ["anchor", "positive", "negative_1", "negative_2"]
    # The teacher's own scores, positive first (what listwise distillation softmaxes).
    teacher = _read(negatives.export(session_ws, art, "n-tuple-teacher", tmp_path / "t.jsonl").path)[0]
    assert teacher["label"] == pytest.approx([pos, *(n["score"] for n in record["negatives"])])


def test_labeled_pairs(session_ws, mined, tmp_path) -> None:  # noqa: ANN001
    art, records, _ = mined
    rows = _read(negatives.export(session_ws, art, "labeled-pair", tmp_path / "p.parquet").path)
    assert sum(r["label"] for r in rows) == sum(len(r["positives"]) for r in records)
    assert len(rows) == sum(len(r["positives"]) + len(r["negatives"]) for r in records)


def test_export_errors(session_ws, mined, tmp_path, tiny) -> None:  # noqa: ANN001
    art = mined[0]
    with pytest.raises(InputError, match=r"must end in \.jsonl or \.parquet"):
        negatives.export(session_ws, art, "triplet", tmp_path / "t.csv")
    with pytest.raises(InputError, match="format must be one of"):
        negatives.export(session_ws, art, "quad", tmp_path / "t.jsonl")
    mixed = mine(session_ws, tiny, MiningConfig(strategy="bm25:2,random:1", range_max=30, range_min=0, sampling="top")).artifact
    with pytest.raises(InputError, match="no single scorer"):
        negatives.export(session_ws, mixed, "n-tuple-scores", tmp_path / "m.jsonl")
    assert not list(tmp_path.iterdir())  # no half-written file


def test_labeled_lists_one_row_per_query(session_ws, mined, tmp_path) -> None:  # noqa: ANN001
    art, records, data = mined
    rows = _read(negatives.export(session_ws, art, "labeled-list", tmp_path / "l.jsonl").path)
    assert len(rows) == len(records)
    first = records[0]
    assert rows[0]["query"] == first["query"]
    assert rows[0]["labels"] == [1] * len(first["positives"]) + [0] * len(first["negatives"])
    assert rows[0]["docs"][-1] == data.doc_text(first["negatives"][-1]["doc_id"])
