"""What a measure is, apart from who computes it: ir-measures strings resolved against a dataset's
relevance level, and a run scored by ir-measures (aggregates and per-query values in one pass).

Binary measures that accept a relevance threshold get the dataset's level unless the string sets
one (so ``R@100`` on TREC-DL means ``R(rel=2)@100``, as ``trec_eval -l 2``); graded measures such
as nDCG use the grades as gains.
"""

from __future__ import annotations

from typing import Any

from retrieval_cli.errors import InputError
from retrieval_cli.evaluate import runs

DEFAULT_MEASURES = ("nDCG@10", "R@100")


ALWAYS = ("Judged@10",)  # shows how much of the top 10 was ever judged (pooling bias)


def suggestion(name: str) -> str:
    """'; did you mean ...?' for a measure string ir-measures cannot parse: the measure's name in
    ir-measures' spelling (ndcg@10 -> nDCG@10), a close name, or what a cutoff must look like."""
    import difflib
    import re

    from ir_measures import measures

    known = sorted(measures.registry)
    match = re.match(r"\s*([^@(]+)(.*)\Z", name)
    head, rest = (match.group(1).strip(), match.group(2)) if match else (name, "")
    by_case = {k.lower(): k for k in known}
    by_case.update({k.lower(): k for k in ("nDCG", "R", "P", "RR", "AP", "Judged")})  # the usual spellings win
    spelled = by_case.get(head.lower()) or next(iter(difflib.get_close_matches(head, known, n=1, cutoff=0.6)), None)
    if rest.startswith("@") and not rest[1:].isdigit():
        rest = "@10"  # the cutoff is a number of documents
        if spelled is None and head in known:
            spelled = head
    if spelled is None:
        return "; measures are ir-measures strings such as nDCG@10, R@100, RR@10, P@10, AP, Judged@10"
    return f"; did you mean {spelled}{rest}?"


def resolve_measures(names: list[str], relevance_level: int) -> dict[str, Any]:
    """Map each label to an ir-measures measure, adding the dataset's relevance level where fitting."""
    import ir_measures

    resolved: dict[str, Any] = {}
    for name in [*names, *ALWAYS]:
        try:
            measure = ir_measures.parse_measure(name)
        except (ValueError, NameError, TypeError, AttributeError):
            raise InputError(f"unknown measure {name!r}{suggestion(name)}", field="measure") from None
        # ir-measures drops parameters equal to their default (R(rel=1)@100 prints as R@100),
        # so an explicit rel= is detected in the text the user wrote.
        explicit_rel = "rel=" in name.replace(" ", "")
        if "rel" in measure.SUPPORTED_PARAMS and "rel" not in measure.params and not explicit_rel:
            measure = measure(rel=relevance_level)
        resolved.setdefault(name, measure)
    return resolved


def score_run(
    run: runs.Run, qrels: dict[str, dict[str, int]], measures: dict[str, Any]
) -> tuple[dict[str, float], list[tuple[str, str, float]]]:
    """Aggregate and per-query values of each measure, computed by ir-measures."""
    import ir_measures

    qrel_rows = [ir_measures.Qrel(q, d, g) for q, docs in qrels.items() for d, g in docs.items()]
    # Two labels may name one measure (R@100 and R(rel=1)@100): compute each measure once and
    # give its values to every label that names it.
    distinct = {str(m): m for m in measures.values()}
    evaluator = ir_measures.evaluator(list(distinct.values()), qrel_rows)
    scored = runs.to_scored_docs({q: hits for q, hits in run.items() if q in qrels})
    # One pass gives both the aggregates (ir-measures' own aggregators) and the per-query values.
    aggregated, metrics = evaluator.calc(scored)
    values = {str(m): float(v) for m, v in aggregated.items()}
    per_measure: dict[str, list[tuple[str, float]]] = {}
    for m in metrics:
        per_measure.setdefault(str(m.measure), []).append((m.query_id, float(m.value)))
    aggregate = {label: values.get(str(m), 0.0) for label, m in measures.items()}
    per_query = [
        (qid, label, value) for label, m in measures.items() for qid, value in per_measure.get(str(m), [])
    ]
    return aggregate, sorted(per_query)
