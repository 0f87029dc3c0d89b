"""What a researcher reads first about a mining run, accumulated query by query and chunk by chunk
(so chunks mined apart, by shards or an interrupted run, merge into a single pass's summary)."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from retrieval_cli.mining.config import FILTERS


@dataclass
class Stats:
    """What a researcher reads first about a mining run, accumulated query by query."""

    wanted: int
    queries: int
    processed: int
    dropped: Counter = field(default_factory=Counter)
    by_strategy: Counter = field(default_factory=Counter)
    ranks: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    ce_scores: list[float] = field(default_factory=list)
    short: int = 0
    judged_kept: int = 0
    unjudged_kept: int = 0
    estimate_queries: int = 0
    eligible: int = 0
    eligible_relevant: int = 0
    unexcluded: int = 0
    unexcluded_relevant: int = 0
    # The LLM judge (mining.judge): negatives judged, relabelled and failed (dropped ones are in
    # ``dropped["judge"]``), and its agreement with the qrels on documents they judge.
    judge_judged: int = 0
    judge_relabelled: int = 0
    judge_failed: int = 0
    judge_tp: int = 0
    judge_fp: int = 0
    judge_fn: int = 0
    judge_tn: int = 0

    def add(self, record: dict[str, Any], counts: Counter, judged: dict[str, int], positives: list[str]) -> None:
        self.short += len(record["negatives"]) < self.wanted
        if set(judged) - set(positives):  # judged beyond its positives: the estimate can see false negatives
            self.estimate_queries += 1
            self.eligible += counts["eligible"]
            self.eligible_relevant += counts["eligible_judged_relevant"]
            self.unexcluded += counts["unexcluded"]
            self.unexcluded_relevant += counts["unexcluded_relevant"]
        for n in record["negatives"]:
            self.by_strategy[n["strategy"]] += 1
            for value, sink in ((n["rank"], self.ranks), (n["score"], self.scores), (n["ce_score"], self.ce_scores)):
                if value is not None:
                    sink.append(value)
            if n["doc_id"] in judged:
                self.judged_kept += 1
            else:
                self.unjudged_kept += 1

    _COUNTS = ("short", "judged_kept", "unjudged_kept", "estimate_queries", "eligible", "eligible_relevant", "unexcluded", "unexcluded_relevant",
               "judge_judged", "judge_relabelled", "judge_failed", "judge_tp", "judge_fp", "judge_fn", "judge_tn")
    _LISTS = ("ranks", "scores", "ce_scores")

    def state(self) -> dict[str, Any]:
        """The accumulated values (not the summary), so chunks mined apart merge exactly."""
        return {
            **{k: getattr(self, k) for k in self._COUNTS + self._LISTS},
            "dropped": dict(self.dropped), "by_strategy": dict(self.by_strategy),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Stats:
        stats = cls(wanted=0, queries=0, processed=0)
        for key in cls._COUNTS:
            setattr(stats, key, int(state.get(key, 0)))  # chunks mined before a count existed lack it
        for key in cls._LISTS:
            setattr(stats, key, [float(v) for v in state[key]])
        stats.dropped, stats.by_strategy = Counter(state["dropped"]), Counter(state["by_strategy"])
        return stats

    def merge(self, other: Stats) -> None:
        """Add a later chunk's values: lists keep chunk order, so summaries equal a single pass's."""
        for key in self._COUNTS:
            setattr(self, key, getattr(self, key) + getattr(other, key))
        for key in self._LISTS:
            getattr(self, key).extend(getattr(other, key))
        self.dropped.update(other.dropped)
        self.by_strategy.update(other.by_strategy)

    def judged(self, counts: Counter, cells: Counter) -> None:
        """Add one query's judge counts (``judge.apply``) and agreement cells (``judge.agreement``)."""
        self.dropped["judge"] += counts["dropped"]
        self.judge_judged += counts["judged"]
        self.judge_relabelled += counts["relabelled"]
        self.judge_failed += counts["failed"]
        for cell in ("tp", "fp", "fn", "tn"):
            setattr(self, f"judge_{cell}", getattr(self, f"judge_{cell}") + cells[cell])

    def judge_summary(self) -> dict[str, Any]:
        """What the judge did, and how far its "relevant" agrees with the qrels where they judge."""
        tp, fp, fn, tn = self.judge_tp, self.judge_fp, self.judge_fn, self.judge_tn
        return {
            "judged": self.judge_judged, "dropped": self.dropped.get("judge", 0), "relabelled": self.judge_relabelled,
            "failed": self.judge_failed,
            "agreement": {"documents": tp + fp + fn + tn, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
                          "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn), "accuracy": _ratio(tp + tn, tp + fp + fn + tn)},
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "processed": self.processed,
            "skipped_without_positives": self.queries - self.processed,
            "short_of_negatives": self.short,
            "negatives": sum(self.by_strategy.values()),
            "by_strategy": dict(sorted(self.by_strategy.items())),
            "dropped": {f: self.dropped.get(f, 0) for f in FILTERS},
            "rank": _summarise(self.ranks),
            "score": _summarise(self.scores),
            "ce_score": _summarise(self.ce_scores),
            "judged_kept": self.judged_kept,
            "unjudged_kept": self.unjudged_kept,
            "false_negative_estimate": {
                # Over queries judged beyond their positives. rate: share of the negatives the
                # same selection would keep without exclusion by judgment that the qrels judge
                # relevant. eligible_rate: the same share over every candidate past the window
                # and score filters (what random sampling would draw from).
                "queries": self.estimate_queries,
                "would_keep": self.unexcluded,
                "judged_relevant": self.unexcluded_relevant,
                "rate": _ratio(self.unexcluded_relevant, self.unexcluded),
                "eligible": self.eligible,
                "eligible_judged_relevant": self.eligible_relevant,
                "eligible_rate": _ratio(self.eligible_relevant, self.eligible),
            },
        }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _summarise(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "median": None}
    return {"mean": round(statistics.fmean(values), 4), "median": round(statistics.median(values), 4)}
