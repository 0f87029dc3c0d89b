"""The negatives artifact as data (its records): reading them and turning them into the columns
sentence-transformers losses take directly (the export formats of ``util.mine_hard_negatives``).

Formats, one row per (query, positive) unless said otherwise:

- ``triplet``: anchor, positive, negative; one row per negative (MultipleNegativesRankingLoss, TripletLoss).
- ``triplet-scores``: triplet plus ``label`` = teacher(pos) - teacher(neg), the (query, pos, neg,
  margin) rows of Margin-MSE distillation with one negative per row.
- ``n-tuple``: anchor, positive, negative_1..negative_n; queries with fewer than n negatives are
  skipped and counted (CachedMultipleNegativesRankingLoss).
- ``n-tuple-scores``: n-tuple plus ``label`` = [teacher(pos) - teacher(neg_i)], the margins
  MarginMSELoss regresses (TAS-Balanced's teacher margins). The teacher is the cross-encoder when
  the negatives were mined with one, else the single first-stage engine that scored them all.
- ``labeled-pair``: anchor, text, label (1 positive, 0 negative); one row per document
  (CrossEncoder BinaryCrossEntropyLoss).
- ``labeled-list``: query, docs, labels; one row per query with its positives and negatives
  (CrossEncoder listwise losses: ListNetLoss, LambdaLoss).

Where the queries were cut from their positives (title and ICT pseudo-queries, recorded by
``generate-queries``), every format's positive texts leave the query out.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from retrieval_cli import data as datasets
from retrieval_cli.errors import InputError
from retrieval_cli.mining import strategies
from retrieval_cli.store import Artifact, Workspace
from retrieval_cli.store.atomic import private_sibling

# -scores: the teacher's margins (positive minus each negative); -teacher: its scores, positive first.
FORMATS = ("triplet", "triplet-scores", "n-tuple", "n-tuple-scores", "n-tuple-teacher", "labeled-pair", "labeled-list")
SUFFIXES = (".jsonl", ".parquet")


def read(artifact: Artifact) -> Iterator[dict[str, Any]]:
    """The records of a negatives artifact, one per query, in file order."""
    if artifact.kind != "negatives":
        raise InputError(f"'{artifact.ref}' is a {artifact.kind} artifact, expected negatives")
    with open(artifact.file("negatives.jsonl"), encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def teacher(artifact: Artifact) -> str:
    """Which scorer n-tuple-scores margins come from: cross-encoder, bm25 or dense."""
    config = artifact.config
    if config.get("cross_encoder"):
        return "cross-encoder"
    engines = {strategies.get(s).ranking_of(config.get("candidates")) for s, _ in config.get("components", [])}
    if len(engines) == 1 and next(iter(engines)) in ("bm25", "dense"):
        return next(iter(engines))
    raise InputError(
        f"'{artifact.ref}' has no single scorer for every negative ({config.get('strategy')}); "
        "mine with --cross-encoder to get teacher scores for all of them"
    )


def _text(data: datasets.Dataset, negative: dict[str, Any]) -> str:
    """A mined negative's document text, or a generated negative's own text."""
    return data.doc_text(negative["doc_id"]) if negative.get("doc_id") else negative["text"]


def _score(negative: dict[str, Any], scorer: str) -> float:
    return negative["ce_score"] if scorer == "cross-encoder" else negative["score"]


@dataclass
class ExportResult:
    """What an export wrote: the file, its row count, and what it had to leave out."""

    path: Path
    rows: int
    queries: int
    skipped_short: int  # queries with fewer negatives than the n-tuple width
    columns: list[str]


def rows(
    ws: Workspace, artifact: Artifact, fmt: str, num_negatives: int | None = None, *, with_ids: bool = False
) -> tuple[list[dict[str, Any]], int, int]:
    """(rows, queries, queries skipped as short) for a format; texts come from the mined dataset.

    ``with_ids`` adds ``query_id`` to every row (training groups rows by query; exports do not).
    """
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}", field="format")
    source = ws.inputs_of(artifact)["dataset"]
    # Texts read on demand: rows need a few passages per query, never the corpus held in memory
    # (8.8M MS MARCO passages would be gigabytes of dicts beside the rows).
    data = datasets.load(source, lazy_corpus=True)
    hide = artifact.config.get("split") in datasets.hidden_query_splits(source)
    # n-tuples are this wide (shorter queries skipped); triplets use at most this many negatives.
    width = num_negatives or sum(n for _, n in artifact.config.get("components", [])) or None
    scorer = teacher(artifact) if fmt.endswith(("-scores", "-teacher")) else ""
    out: list[dict[str, Any]] = []
    queries = skipped = 0
    for record in read(artifact):
        queries += 1
        start = len(out)
        _append(out, data, record, fmt, width, scorer, hide)
        if fmt.startswith("n-tuple") and len(record["negatives"]) < (width or 0):
            skipped += 1
        if with_ids:
            for row in out[start:]:
                row["query_id"] = record["query_id"]
    return out, queries, skipped


def _append(
    out: list[dict[str, Any]], data: datasets.Dataset, record: dict[str, Any], fmt: str, width: int | None, scorer: str,
    hide: bool,
) -> None:
    """Append one query record's rows in ``fmt`` (none for an n-tuple query short of negatives);
    ``hide``: the query was cut from its positives, so their texts leave it out."""
    anchor = record["query"]
    negs = record["negatives"]
    positives = record["positives"]

    def positive_text(doc_id: str) -> str:
        text = data.doc_text(doc_id)
        return datasets.without_query(text, anchor) if hide else text

    if fmt == "labeled-list":
        docs = [positive_text(p["doc_id"]) for p in positives] + [_text(data, n) for n in negs]
        out.append({"query": anchor, "docs": docs, "labels": [1] * len(positives) + [0] * len(negs)})
    elif fmt == "labeled-pair":
        out.extend({"anchor": anchor, "text": positive_text(p["doc_id"]), "label": 1} for p in positives)
        out.extend({"anchor": anchor, "text": _text(data, n), "label": 0} for n in negs)
    elif fmt.startswith("triplet"):
        negs = negs[:width] if width else negs
        for p in positives:
            positive = positive_text(p["doc_id"])
            for n in negs:
                row = {"anchor": anchor, "positive": positive, "negative": _text(data, n)}
                if scorer:
                    row["label"] = p["scores"][scorer] - _score(n, scorer)
                out.append(row)
    else:
        assert width is not None
        if len(negs) < width:
            return
        negs = negs[:width]
        for p in positives:
            row = {"anchor": anchor, "positive": positive_text(p["doc_id"])}
            row.update({f"negative_{i}": _text(data, n) for i, n in enumerate(negs, start=1)})
            if fmt == "n-tuple-teacher":
                row["label"] = [p["scores"][scorer], *(_score(n, scorer) for n in negs)]
            elif scorer:
                row["label"] = [p["scores"][scorer] - _score(n, scorer) for n in negs]
            out.append(row)


def export(ws: Workspace, artifact: Artifact, fmt: str, output: Path, num_negatives: int | None = None) -> ExportResult:
    """Write a negatives artifact as training columns to ``output`` (.jsonl or .parquet), atomically."""
    output = Path(output)
    if output.suffix not in SUFFIXES:
        raise InputError(f"output must end in {' or '.join(SUFFIXES)}", path=output)
    if num_negatives is not None and num_negatives < 1:
        raise InputError("num-negatives must be >= 1", field="num_negatives")
    table, queries, skipped = rows(ws, artifact, fmt, num_negatives)
    if not table:
        raise InputError(f"'{artifact.ref}' gives no {fmt} rows ({skipped} of {queries} queries short of negatives)")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_sibling(output, ".tmp")
    try:
        if output.suffix == ".jsonl":
            with open(tmp, "w", encoding="utf-8") as handle:
                for row in table:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            import pandas as pd

            pd.DataFrame(table).to_parquet(tmp, index=False)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(output, len(table), queries, skipped, list(table[0]))


def label(config: dict[str, Any]) -> str:
    """A negatives artifact's strategy and the filters that shape it, briefly: ``bm25 (5,100]
    rel 0.05``, ``cross-encoder/bm25@30``, ``bm25:3,random:1``."""
    strategy = str(config.get("strategy", "?"))
    named = [part.split(":")[0] for part in strategy.split(",")]
    known = [strategies.get(n) for n in named if n in strategies.names()]
    if len(named) == 1 and known and known[0].rescored and config.get("candidates"):
        strategy += f"/{config['candidates']}@{config.get('depth')}"
    parts = [strategy]
    low, high = config.get("range_min") or 0, config.get("range_max")
    ranked = any(s.ranked for s in known)
    if ranked and (low or high):  # random and generated negatives have no rank for a window to cut
        parts.append(f"({low},{high if high is not None else ''}]")
    for key, short in (("max_score", "max"), ("absolute_margin", "abs"), ("relative_margin", "rel")):
        if config.get(key) is not None:
            parts.append(f"{short} {config[key]}")
    if ranked and config.get("sampling") == "random":
        parts.append("sampled")
    return " ".join(parts)
