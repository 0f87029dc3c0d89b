"""The GPU check's logic, run CPU against CPU on the synthetic set: the same script a GPU machine
runs (`make gpu-check`), so what it compares and writes is tested where no GPU is."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import gpu_check


@pytest.mark.slow
def test_the_gpu_check_compares_two_passes_and_writes_its_benchmarks_section(tmp_path: Path) -> None:
    config = gpu_check.CheckConfig(data=None, device="cpu", reference="cpu", queries=24, train_batch=8, batch_size=32,
                                   repeats=1, synth_documents=80, search_documents=3000, search_queries=300, faiss_queries=100, ce_pairs=64)
    result = gpu_check.run_check(config, tmp_path)
    assert result["failures"] == []
    assert {(r["model"], r["measure"]) for r in result["rows"]} == {(m, k) for m in ("untrained", "trained") for k in ("nDCG@10", "R@100")}
    assert all(r["delta"] == 0 for r in result["rows"])  # the same device twice: the same computation
    assert result["negatives_agreement"] == 1.0
    assert all(run["seconds"]["train"] > 0 for run in result["runs"])
    speed = result["throughput"]
    assert speed["texts"] == 80 and set(speed["passages_per_s"]) == {"retrieval-cli", "sentence-transformers"}
    assert speed["search"]["same_within_rounding"] == 100 and speed["search"]["same_results"] >= 90  # torch on the CPU = faiss-cpu
    assert speed["search"]["pair_seconds"]["faiss-cpu"] > 0
    assert speed["cross_encoder"]["pairs"] == 64 and speed["cross_encoder"]["pairs_per_s"]["cpu"] > 0
    assert "| faiss-cpu |" in result["markdown"] and "cross-encoder (64 pairs" in result["markdown"]
    from importlib import metadata

    assert f"torch {metadata.version('torch')}, sentence-transformers {metadata.version('sentence-transformers')}" in result["markdown"]

    bench = tmp_path / "BENCHMARKS.md"
    bench.write_text("# Benchmarks\n\nrows\n", encoding="utf-8")
    once = gpu_check.replace_section(bench.read_text(encoding="utf-8"), result["markdown"])
    assert once.startswith("# Benchmarks\n\nrows\n") and once.count(gpu_check.START) == 1
    twice = gpu_check.replace_section(once, result["markdown"].replace("## GPU", "## GPU again"))
    assert twice.count(gpu_check.START) == 1 and "## GPU again" in twice and twice.startswith("# Benchmarks")
    assert gpu_check.kept_section(twice).startswith(gpu_check.START) and gpu_check.kept_section("no section") == ""


def test_a_breached_tolerance_is_one_line_naming_the_cell() -> None:
    cpu = gpu_check.DeviceRun("cpu", untrained={"nDCG@10": 0.4000, "Judged@10": 0.1}, trained={"nDCG@10": 0.45})
    gpu = gpu_check.DeviceRun("cuda", untrained={"nDCG@10": 0.4015, "Judged@10": 0.3}, trained={"nDCG@10": 0.455})
    rows, failures = gpu_check.compare(cpu, gpu)
    assert failures == ["FAIL untrained nDCG@10: cuda 0.4015 vs cpu 0.4000 (|delta| 0.0015 > 0.001)"]
    assert [r["ok"] for r in rows] == [False, True]  # Judged@10 is not held; the trained model's 0.005 is within 0.01
    assert gpu_check.main(["--device", "cuda:7", "--data", "."]) == 2  # no such device here: one line, exit 2
