"""The one cache-entry API: entries are written whole, checked when read, and recomputed when
damaged; every cache (mining chunks, dense shard parts, LLM generations, downloads, embeddings)
goes through it, so a tampered part is never assembled into an artifact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from conftest import mine, mine_shard
from retrieval_cli import data as datasets
from retrieval_cli import index as indexing
from retrieval_cli.data import synthetic
from retrieval_cli.mining import MiningConfig
from retrieval_cli.store import Cache, Shard, Workspace


def test_an_entry_round_trips_and_a_changed_one_is_dropped(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    entry = cache.entry("job/unit-1")
    assert entry.load() is None
    stored = entry.store({"a": [1, 2]}, lambda folder: (folder / "v.bin").write_bytes(b"abcd"))
    assert stored.data == {"a": [1, 2]} and entry.load().file("v.bin").read_bytes() == b"abcd"

    record = entry.path / "entry.json"
    edited = json.loads(record.read_text(encoding="utf-8"))
    edited["data"]["a"] = [1, 3]  # still valid JSON, data changed
    record.write_text(json.dumps(edited), encoding="utf-8")
    assert entry.load() is None and not entry.path.exists()  # removed: recomputed, never trusted

    entry.store({"a": 1}, lambda folder: (folder / "v.bin").write_bytes(b"abcd"))
    (entry.path / "v.bin").write_bytes(b"abce")  # same size, other bytes: only the checksum tells
    assert entry.load() is None

    entry.store({"a": 1}, lambda folder: (folder / "v.bin").write_bytes(b"abcd"))
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"abcd")  # same bytes, but read through a link out of the cache
    (entry.path / "v.bin").unlink()
    (entry.path / "v.bin").symlink_to(outside)
    assert entry.load() is None


def test_an_edited_mining_chunk_is_mined_again_not_assembled(tmp_path: Path) -> None:
    data = synthetic.generate(synthetic.SynthConfig(documents=120, test_queries=4, train_queries=16, seed=3))
    config = MiningConfig(strategy="bm25", range_max=20, num_negatives=2, chunk_size=4, range_min=0, sampling="top")
    clean = mine(Workspace(tmp_path / "clean"), datasets.save(Workspace(tmp_path / "clean"), data, "m", {"s": 1}).artifact, config).artifact

    ws = Workspace(tmp_path / "ws")
    art = datasets.save(ws, data, "m", {"s": 1}).artifact
    part = mine_shard(ws, art, config, Shard(0, 2))
    chunk = part.where / "chunk-0" / "entry.json"
    record = json.loads(chunk.read_text(encoding="utf-8"))
    line = json.loads(record["data"]["lines"][0])
    line["query"] = "an edited query"
    line["negatives"], line["positives"] = line["positives"], line["negatives"]  # a positive turned negative
    record["data"]["lines"][0] = json.dumps(line)
    chunk.write_text(json.dumps(record), encoding="utf-8")

    assembled = mine(ws, art, config).artifact
    assert assembled.version == clean.version
    assert assembled.file("negatives.jsonl").read_bytes() == clean.file("negatives.jsonl").read_bytes()
    assert ws.verify(assembled) == []


def test_a_tampered_dense_shard_part_is_encoded_again_not_assembled(tmp_path: Path) -> None:
    data = synthetic.generate(synthetic.SynthConfig(documents=70, test_queries=3, train_queries=0, seed=11))
    config = indexing.DenseConfig(batch_size=4)  # 32-text chunks: 70 passages make 3 chunks
    clean_ws = Workspace(tmp_path / "clean")
    clean = indexing.build_dense(clean_ws, datasets.save(clean_ws, data, "sh", {"s": 1}).artifact, config).artifact

    ws = Workspace(tmp_path / "ws")
    art = datasets.save(ws, data, "sh", {"s": 1}).artifact
    part = indexing.encode_shard(ws, art, config, Shard(0, 2))
    (vectors,) = part.where.glob("chunk-0-*/vectors.npy")
    np.save(vectors, np.load(vectors)[::-1].copy())  # same size, rows reversed

    assembled = indexing.build_dense(ws, art, config).artifact
    assert assembled.version == clean.version
    for name in ("embeddings.f16.npy", "docids.txt", "index.faiss"):
        assert assembled.file(name).read_bytes() == clean.file(name).read_bytes(), name
