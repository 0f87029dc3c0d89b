"""TREC run files (``qid Q0 docid rank score tag``): strict reading and stable writing."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from retrieval_cli.data.readers import read_lines
from retrieval_cli.errors import InputError

Run = dict[str, list[tuple[str, float]]]  # query id -> [(doc id, score)] best first


def trec_lines(run: Mapping[str, list[tuple[str, float]]], tag: str) -> Iterator[str]:
    """A run's TREC lines, ranks 1..n per query; ties keep the order given."""
    for qid, hits in run.items():
        for rank, (doc_id, score) in enumerate(hits, start=1):
            yield f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}\n"


def write_trec(run: Mapping[str, list[tuple[str, float]]], path: Path, tag: str) -> None:
    """Write a run with ranks 1..n per query; ties keep the order given."""
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(trec_lines(run, tag))


def read_trec(path: Path) -> Run:
    """Read a TREC run file; each query's hits sorted by score (descending), then rank."""
    path = Path(path)
    rows: dict[str, list[tuple[float, int, str]]] = {}
    seen: set[tuple[str, str]] = set()
    for number, text in read_lines(path):
        columns = text.split()
        if len(columns) != 6:
            raise InputError(
                f"expected 6 columns (qid Q0 docid rank score tag), got {len(columns)}", path=path, line=number
            )
        qid, _, doc_id, rank_text, score_text, _ = columns
        try:
            rank = int(rank_text)
        except ValueError:
            raise InputError(f"rank {rank_text!r} is not an integer", path=path, line=number, field="rank") from None
        try:
            score = float(score_text)
        except ValueError:
            raise InputError(f"score {score_text!r} is not a number", path=path, line=number, field="score") from None
        if not math.isfinite(score):
            raise InputError(f"score {score_text!r} is not finite", path=path, line=number, field="score")
        if (qid, doc_id) in seen:
            raise InputError(f"document '{doc_id}' appears twice for query '{qid}'", path=path, line=number)
        seen.add((qid, doc_id))
        rows.setdefault(qid, []).append((score, rank, doc_id))
    if not rows:
        raise InputError("empty run file", path=path)
    return {
        qid: [(doc_id, score) for score, rank, doc_id in sorted(hits, key=lambda h: (-h[0], h[1]))]
        for qid, hits in rows.items()
    }


def drop_self_hits(run: Run) -> Run:
    """Remove documents whose id equals the query id (BEIR's ArguAna/Quora convention)."""
    return {qid: [(d, s) for d, s in hits if d != qid] for qid, hits in run.items()}


def truncate(run: Run, depth: int) -> Run:
    return {qid: hits[:depth] for qid, hits in run.items()}


def to_scored_docs(run: Mapping[str, Iterable[tuple[str, float]]]) -> list:
    """The run as ir-measures ScoredDoc tuples."""
    import ir_measures

    return [ir_measures.ScoredDoc(qid, doc_id, score) for qid, hits in run.items() for doc_id, score in hits]
