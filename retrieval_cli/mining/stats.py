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

    _COUNTS = ("short", "judged_kept", "unjudged_kept", "estimate_queries", "eligible", "eligible_relevant", "unexcluded", "unexcluded_relevant")
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
            setattr(stats, key, int(state[key]))
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
