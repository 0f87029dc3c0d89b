"""Rankings fused into one: reciprocal-rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009) and
min-max normalised score fusion with a weight, the standard hybrid of BM25 and dense retrieval.

Pyserini's fusion (``pyserini.fusion`` over ``TrecRun``) computes them, so a fused ranking here is
the one ``python -m pyserini.fusion`` writes for the same runs: RRF scores each document
Σ 1/(k + rank) over the runs that retrieved it; ``norm`` scales each run's scores per query to
[0, 1] and adds them as ``weight``·first + (1 − weight)·second. Ties go to the smaller document id.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from retrieval_cli.errors import InputError

Ranking = Mapping[str, Sequence[tuple[str, float]]]  # query id -> [(doc id, score)] best first

METHODS = ("rrf", "norm")
RRF_K = 60  # Cormack et al.'s constant, Pyserini's default


def check(method: str, rrf_k: int = RRF_K, weight: float = 0.5, inputs: int = 2) -> None:
    """A fusion's settings make sense: a known method, k >= 1, a weight in [0, 1], two rankings for norm."""
    if method not in METHODS:
        raise InputError(f"fusion must be one of {', '.join(METHODS)}, got {method!r}", field="fusion")
    if rrf_k < 1:
        raise InputError(f"rrf-k must be >= 1, got {rrf_k}", field="rrf_k")
    if not 0 <= weight <= 1:
        raise InputError(f"fusion weight must be in [0, 1], got {weight}", field="fusion_weight")
    if inputs < 2 or (method == "norm" and inputs != 2):
        raise InputError(f"{method} fuses {'exactly two' if method == 'norm' else 'two or more'} rankings, got {inputs}", field="fuse")


def fuse(rankings: Sequence[Ranking], method: str = "rrf", *, rrf_k: int = RRF_K, weight: float = 0.5, depth: int | None = None) -> dict[str, list[tuple[str, float]]]:
    """One ranking per query from ``rankings`` (each best first), cut to ``depth`` documents.

    A query missing from some rankings is fused from the others; one missing from all is absent."""
    check(method, rrf_k, weight, len(rankings))
    from pyserini.fusion import interpolation, reciprocal_rank_fusion
    from pyserini.trectools import RescoreMethod

    runs = [_trec_run(r, f"run{i}") for i, r in enumerate(rankings)]
    present = [r for r in runs if r is not None]
    if not present:
        raise InputError("the rankings to fuse hold no query", field="fuse")
    if len(present) == 1:
        if method == "norm":
            raise InputError("norm fuses two rankings, and one holds no query", field="fuse")
        # Pyserini merges two or more runs; RRF of one is its ranks rescored, the order unchanged.
        only = next(r for r in rankings if any(r.values()))
        return {q: [(d, 1 / (rrf_k + rank)) for rank, (d, _) in enumerate(hits[:depth], start=1)] for q, hits in only.items() if hits}
    if method == "rrf":
        fused = reciprocal_rank_fusion(present, rrf_k=rrf_k, k=depth)
    else:
        fused = interpolation([r.rescore(RescoreMethod.NORMALIZE) for r in present], alpha=weight, k=depth)
    out: dict[str, list[tuple[str, float]]] = {}
    for topic, docid, score in fused.run_data[["topic", "docid", "score"]].itertuples(index=False):
        out.setdefault(str(topic), []).append((str(docid), float(score)))
    return out


def rrf_score(doc: str, rankings: Sequence[Sequence[tuple[str, float]]], rrf_k: int = RRF_K) -> float:
    """One document's RRF score from one query's rankings: Σ 1/(k + rank) where it was retrieved
    (0 where none did: a positive outside every first stage's depth)."""
    total = 0.0
    for hits in rankings:
        rank = next((r for r, (d, _) in enumerate(hits, start=1) if d == doc), None)
        total += 1 / (rrf_k + rank) if rank is not None else 0.0
    return total


def _trec_run(ranking: Ranking, tag: str):  # noqa: ANN202 - pyserini's TrecRun, imported lazily
    """The ranking as Pyserini's TrecRun (ranks 1..n in the order given), None when empty."""
    from pyserini.trectools import TrecRun

    rows = [(q, "Q0", d, rank, float(s), tag) for q, hits in ranking.items() for rank, (d, s) in enumerate(hits, start=1)]
    return TrecRun.from_list(rows) if rows else None
