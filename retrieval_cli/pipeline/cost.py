"""What a step costs before it runs: seconds = fixed + a term per passage (importing, indexing,
encoding the corpus) + a term per query (encoding queries, Lucene search, selecting negatives) + a
term per query-passage pair (exact dense search), and peak memory linear in passages and queries.

The terms are fitted by ``make bench`` (``bench/scaling.py``) on its measured points, by
non-negative least squares on relative error, and kept in ``costs.json`` beside this module with
their provenance: per stage, for 2 CPU cores and for one GPU. A single power law fitted over
points whose cost is mostly per query projected MS MARCO's dense mining at 1.6 h; its own points
(5e-9 s per query-passage pair) say 7 h, which this model gives."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

COSTS_FILE = Path(__file__).with_name("costs.json")
TERMS = ("fixed", "per_passage", "per_query", "per_pair")


@dataclass(frozen=True)
class Cost:
    """One stage's cost on one kind of machine; ``assumed`` names terms not measured (they come
    from a stated assumption, e.g. a GPU's pair term before ``make gpu-check`` measured it)."""

    fixed: float = 0.0
    per_passage: float = 0.0
    per_query: float = 0.0
    per_pair: float = 0.0
    mb_fixed: float = 0.0
    mb_per_passage: float = 0.0
    mb_per_query: float = 0.0
    assumed: tuple[str, ...] = field(default=())

    def seconds(self, passages: int, queries: int) -> float:
        return self.fixed + self.per_passage * passages + self.per_query * queries + self.per_pair * passages * queries

    def peak_mb(self, passages: int, queries: int) -> float:
        return self.mb_fixed + self.mb_per_passage * passages + self.mb_per_query * queries


@dataclass(frozen=True)
class Point:
    """One measured run of a stage: its sizes, seconds and peak memory."""

    passages: int
    queries: int
    seconds: float
    peak_mb: float


def _columns(point: Point, terms: Sequence[str]) -> list[float]:
    values = {"fixed": 1.0, "per_passage": float(point.passages), "per_query": float(point.queries),
              "per_pair": float(point.passages) * point.queries}
    return [values[t] for t in terms]


def fit(points: Sequence[Point], terms: Sequence[str] = TERMS) -> Cost:
    """The terms (a subset of ``TERMS``: a stage whose points all share one query count cannot
    tell a query term from a passage term, so it fits fewer) by non-negative least squares on
    relative error, so a 0.2 s point weighs as much as a 1,000 s one; memory likewise on its own."""
    import numpy as np
    from scipy.optimize import nnls

    if len(points) < len(terms):
        raise ValueError(f"{len(terms)} terms need at least {len(terms)} points, got {len(points)}")
    design = np.array([_columns(p, terms) for p in points])
    seconds = np.array([max(p.seconds, 1e-3) for p in points])
    coef, _ = nnls(design / seconds[:, None], np.ones_like(seconds))
    mb_terms = [t for t in ("fixed", "per_passage", "per_query") if t in terms or t == "fixed"]
    mb_design = np.array([_columns(p, mb_terms) for p in points])
    mb = np.array([p.peak_mb for p in points])
    mb_coef, _ = nnls(mb_design, mb)
    values = dict(zip(terms, (float(c) for c in coef)))
    memory = {f"mb_{t}": float(c) for t, c in zip(mb_terms, mb_coef)}
    return Cost(**values, **memory)


def fit_error(cost: Cost, points: Sequence[Point]) -> float:
    """The largest relative error of the fitted seconds on the points it was fitted on."""
    return max(abs(cost.seconds(p.passages, p.queries) - p.seconds) / max(p.seconds, 1e-3) for p in points)


def to_record(cost: Cost) -> dict[str, Any]:
    record = {k: v for k, v in asdict(cost).items() if v}
    if cost.assumed:
        record["assumed"] = list(cost.assumed)
    return record


def from_record(record: dict[str, Any]) -> Cost:
    return Cost(**{**{k: v for k, v in record.items() if k != "assumed"}, "assumed": tuple(record.get("assumed", ()))})


@lru_cache(maxsize=2)
def _tables(path: Path) -> dict[str, Any]:
    """costs.json, read once per process."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def costs(path: Path = COSTS_FILE) -> dict[str, dict[str, Cost]]:
    """Machine class (``cpu``: 2 cores; ``gpu``: one GPU) -> stage -> Cost, as ``make bench`` wrote them."""
    return {machine: {stage: from_record(r) for stage, r in stages.items()} for machine, stages in _tables(path)["machines"].items()}


def provenance(path: Path = COSTS_FILE) -> str:
    """Where the coefficients came from (the bench run and machine), for the dry-run's footer."""
    return str(_tables(path).get("measured", ""))
