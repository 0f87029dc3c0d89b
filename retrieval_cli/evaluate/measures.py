"""What a measure is, apart from who computes it: ir-measures strings resolved against a dataset's
relevance level, and a run scored by ir-measures (aggregates and per-query values in one pass).

Binary measures that accept a relevance threshold get the dataset's level unless the string sets
one (so ``R@100`` on TREC-DL means ``R(rel=2)@100``, as ``trec_eval -l 2``); graded measures such
as nDCG use the grades as gains.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

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


def computable(name: str, measure: Any) -> None:
    """Refuse, before any work, a measure that parses but that nothing here can compute: a cutoff
    below 1 (trec_eval aborts the process on ``nDCG@0``), parameters ir-measures rejects (``SDCG``
    without ``max_rel``), or no installed provider for it (``alpha_nDCG`` and ``ERR_IA`` need
    subtopic judgments and a diversity provider)."""
    import re

    from ir_measures import DefaultPipeline

    cutoff = measure.params.get("cutoff")
    if cutoff is not None and (not isinstance(cutoff, int) or cutoff < 1):
        raise InputError(f"measure {name!r}: the cutoff must be a whole number >= 1, got {cutoff!r}", field="measure")
    try:
        measure.validate_params()
    except Exception as exc:  # noqa: BLE001 - ir-measures says why in an AssertionError or ValueError
        why = re.sub(r"=<object object at 0x[0-9a-f]+>", " (not given)", str(exc)) or type(exc).__name__
        raise InputError(f"measure {name!r}: {why}", field="measure") from None
    providers = [p.NAME for p in DefaultPipeline.providers if _supports(p, measure)]
    if not providers:
        raise InputError(f"measure {name!r}: no installed ir-measures provider computes it (diversity measures such as alpha_nDCG"
                         " and ERR_IA need subtopic judgments); use nDCG@10, R@100, RR@10, P@10, AP", field="measure")


def _supports(provider: Any, measure: Any) -> bool:
    try:
        return bool(provider.is_available() and provider.supports(measure))
    except Exception:  # noqa: BLE001 - a provider that cannot tell does not compute it
        return False


def check_measures(names: list[str]) -> None:
    """Each measure parses and can be computed here (``resolve_measures`` without a dataset)."""
    resolve_measures(names, 1)


def resolve_measures(names: list[str], relevance_level: int) -> dict[str, Any]:
    """Map each label to an ir-measures measure, adding the dataset's relevance level where
    fitting; each is checked computable first (``computable``)."""
    import ir_measures

    resolved: dict[str, Any] = {}
    for name in [*names, *ALWAYS]:
        try:
            measure = ir_measures.parse_measure(name)
        except (ValueError, NameError, TypeError, AttributeError):
            raise InputError(f"unknown measure {name!r}{suggestion(name)}", field="measure") from None
        computable(name, measure)
        # ir-measures drops parameters equal to their default (R(rel=1)@100 prints as R@100),
        # so an explicit rel= is detected in the text the user wrote.
        explicit_rel = "rel=" in name.replace(" ", "")
        if "rel" in measure.SUPPORTED_PARAMS and "rel" not in measure.params and not explicit_rel:
            measure = measure(rel=relevance_level)
        resolved.setdefault(name, measure)
    return resolved


class RunScorer:
    """A run scored by ir-measures a group of queries at a time, so memory follows the group, not
    the run. Each group is scored against its own queries' judgments (ir-measures gives a judged
    query missing from the run its measure's default), and every per-query value feeds the
    measure's own aggregator, as ``Evaluator.calc`` does over one whole run."""

    def __init__(self, qrels: dict[str, dict[str, int]], measures: dict[str, Any]) -> None:
        self.qrels = qrels
        self.measures = measures
        # Two labels may name one measure (R@100 and R(rel=1)@100): compute each measure once and
        # give its values to every label that names it.
        self.distinct = {str(m): m for m in measures.values()}
        self.aggregators = {key: m.aggregator() for key, m in self.distinct.items()}
        self.values: dict[str, list[tuple[str, float]]] = {}
        self.scored: set[str] = set()

    def add(self, run: Mapping[str, list[tuple[str, float]]], query_ids: Iterable[str]) -> None:
        """Score the judged queries among ``query_ids`` (each once over all calls) on their hits in ``run``."""
        import ir_measures

        group = [q for q in dict.fromkeys(query_ids) if q in self.qrels and q not in self.scored]
        if not group:
            return
        self.scored.update(group)
        qrel_rows = [ir_measures.Qrel(q, d, g) for q in group for d, g in self.qrels[q].items()]
        evaluator = ir_measures.evaluator(list(self.distinct.values()), qrel_rows)
        for metric in evaluator.iter_calc(runs.to_scored_docs({q: run[q] for q in group if q in run})):
            key = str(metric.measure)
            self.aggregators[key].add(metric.value)
            self.values.setdefault(key, []).append((metric.query_id, float(metric.value)))

    def result(self) -> tuple[dict[str, float], list[tuple[str, str, float]]]:
        """(label -> aggregate, sorted (query id, label, value)); judged queries never added count as
        queries without hits, as in one call over the whole run."""
        self.add({}, self.qrels)
        aggregate = {label: float(self.aggregators[str(m)].result()) for label, m in self.measures.items()}
        per_query = [(qid, label, value) for label, m in self.measures.items() for qid, value in self.values.get(str(m), [])]
        return aggregate, sorted(per_query)


def score_run(
    run: runs.Run, qrels: dict[str, dict[str, int]], measures: dict[str, Any]
) -> tuple[dict[str, float], list[tuple[str, str, float]]]:
    """Aggregate and per-query values of each measure over a whole run, computed by ir-measures."""
    scorer = RunScorer(qrels, measures)
    scorer.add(run, qrels)
    return scorer.result()
