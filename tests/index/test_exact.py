"""Exact top-k on the model's device (torch) against faiss-cpu flat: the same ids and ranks, ties
broken the same canonical way (run here with torch on the CPU; ``make gpu-check`` on a GPU)."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval_cli import index as indexing
from retrieval_cli.index.exact import TorchFlat, canonical
from retrieval_cli.store import Workspace


def test_canonical_orders_ties_by_position_and_pads_last() -> None:
    scores = np.array([[1.0, 2.0, 1.0, 2.0, 0.0, 1.0]], dtype=np.float32)
    positions = np.array([[4, 7, 2, 3, -1, 1]])
    got_scores, got_positions = canonical(scores, positions, 5)
    assert got_positions.tolist() == [[3, 7, 1, 2, 4]] and got_scores.tolist() == [[2.0, 2.0, 1.0, 1.0, 1.0]]


def _vectors(rows: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("rows_per_chunk", [1 << 20, 257])
def test_torch_search_equals_faiss_flat_ids_ranks_and_ties(rows_per_chunk: int) -> None:
    import faiss

    corpus = _vectors(2000, 32, 1)
    corpus[1500:1510] = corpus[10]  # ten exact duplicates of one passage: exact ties, as MS MARCO has
    index = faiss.IndexFlatIP(32)
    index.add(corpus)
    queries = np.concatenate([_vectors(60, 32, 2), corpus[[10, 11]]])
    faiss_scores, faiss_positions = index.search(queries, 20 + 16)
    faiss_scores, faiss_positions = canonical(faiss_scores, faiss_positions, 20)
    torch_scores, torch_positions = TorchFlat(index, "cpu", rows_per_chunk=rows_per_chunk).search(queries, 20)
    assert (torch_positions == faiss_positions).all()
    assert np.abs(torch_scores - faiss_scores).max() < 1e-5
    assert torch_positions[60, :11].tolist() == [10, *range(1500, 1510)]  # the tie in corpus order


def test_a_dense_searcher_gives_the_same_hits_on_either_path(session_ws: Workspace, tiny) -> None:  # noqa: ANN001
    flat = indexing.build_dense(session_ws, tiny, indexing.DenseConfig()).artifact
    on_faiss = indexing.DenseSearcher(session_ws, flat)
    on_torch = indexing.DenseSearcher(session_ws, flat, exact_on="cpu")
    assert on_faiss.exact is None and on_torch.exact is not None
    queries = {f"q{i}": text for i, text in enumerate(["usb cable", "red running shoes", "coffee grinder", "laptop stand"])}
    faiss_hits, torch_hits = on_faiss.search(queries, 50), on_torch.search(queries, 50)
    for qid in queries:
        assert [d for d, _ in faiss_hits[qid]] == [d for d, _ in torch_hits[qid]]
        assert max(abs(a - b) for (_, a), (_, b) in zip(faiss_hits[qid], torch_hits[qid])) < 1e-5
