"""Exact inner-product top-k on the device that holds the model: the corpus vectors of a flat
faiss index copied to the device in chunks, each query chunk scored against each with one matrix
product and ``torch.topk``, the chunks' candidates merged. MS MARCO's dense mining (8.8M passages
x 503k queries x 384 dimensions, ~3.4e15 multiply-adds) is hours on faiss-cpu and about a minute
on one H100 this way.

Both this path and faiss-cpu order a query's results the same canonical way: by score, ties by
corpus position (lower first). faiss's heap orders exact ties arbitrarily (duplicate passages,
which MS MARCO has, score exactly alike), so each side fetches ``TIE_MARGIN`` extra candidates and
``canonical`` sorts and cuts them: the two give the same ids and ranks unless more than
``TIE_MARGIN`` documents tie at the k-th score."""

from __future__ import annotations

from typing import Any

import numpy as np

TIE_MARGIN = 16


def canonical(scores: np.ndarray, positions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's candidates ordered by score (highest first), ties by position (lowest first),
    cut to ``k``; padding (position -1, as faiss pads) sorts last."""
    keyed = np.where(positions < 0, -np.inf, scores)
    order = np.lexsort((np.where(positions < 0, np.iinfo(np.int64).max, positions), -keyed), axis=-1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(positions, order, axis=1)


class TorchFlat:
    """A flat inner-product index held on a torch device (float32, as faiss's flat index holds
    it): ``search`` returns what faiss's ``IndexFlatIP.search`` would, canonically ordered."""

    def __init__(self, faiss_index: Any, device: str, rows_per_chunk: int = 1 << 20) -> None:
        """``faiss_index`` is a flat index (read memory-mapped): its vectors are reconstructed a
        chunk at a time straight to ``device``, so the host never holds them whole."""
        import torch

        self.device = torch.device(device)
        self.total = int(faiss_index.ntotal)
        self.chunks = []
        for start in range(0, self.total, rows_per_chunk):
            rows = faiss_index.reconstruct_n(start, min(rows_per_chunk, self.total - start))
            self.chunks.append((start, torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)).to(self.device)))

    def rows(self, positions: Any) -> Any:
        """The vectors at ``positions`` (a long tensor on this device, any shape), as held: what
        ADORE's loss scores its retrieved documents by."""
        import torch

        if len(self.chunks) == 1:
            return self.chunks[0][1][positions]
        flat = positions.reshape(-1)
        out = torch.empty((flat.numel(), self.chunks[0][1].shape[1]), device=self.device)
        for start, block in self.chunks:
            inside = (flat >= start) & (flat < start + block.shape[0])
            out[inside] = block[flat[inside] - start]
        return out.reshape(*positions.shape, -1)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, positions) of each query's top ``k``, as numpy arrays (queries x k)."""
        import torch

        k = min(k, self.total)
        wanted = min(k + TIE_MARGIN, self.total)
        with torch.inference_mode():
            q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32)).to(self.device)
            found_scores, found_positions = [], []
            for start, block in self.chunks:
                top = torch.topk(q @ block.T, min(wanted, block.shape[0]), dim=1)
                found_scores.append(top.values)
                found_positions.append(top.indices + start)
            scores, positions = torch.cat(found_scores, dim=1), torch.cat(found_positions, dim=1)
            if scores.shape[1] > wanted:
                top = torch.topk(scores, wanted, dim=1)
                scores, positions = top.values, torch.gather(positions, 1, top.indices)
        return canonical(scores.cpu().numpy(), positions.cpu().numpy().astype(np.int64), k)
