"""What a mining run is: one strategy or a mixture with per-query counts, its rank window, score
filters, sampling, and the scorers (first stage, cross-encoder, LLM) it uses."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from retrieval_cli import data as datasets
from retrieval_cli import llm as llmlib
from retrieval_cli import models
from retrieval_cli.errors import InputError, check_at_least
from retrieval_cli.mining import strategies
from retrieval_cli.store import Versioned, added, recorded_at_default, unversioned

STRATEGIES = strategies.names()  # the registry's (mining/strategies/: one module a strategy)


FIRST_STAGES = ("bm25", "dense")


HYBRID = "hybrid"  # BM25 and dense rankings fused by reciprocal rank (index.fusion): a first stage of both


SAMPLINGS = ("top", "random")


FILTERS = ("positive", "window", "max_score", "absolute_margin", "relative_margin", "adaptive_margin", "judged_relevant", "self", "duplicate",
           "judge")


DEFAULT_NEGATIVES = 4


# Fields that version the negatives only when a strategy of the run reads them (the LLM's
# settings); every other field versions them always.
_JUDGE_FIELDS = {"judge_threshold", "judge_relabel", "judge_prompt"}  # read only with a judge
_USED_FIELDS = ("llm", "api_key_env", "llm_prompt", "llm_sampling", "llm_max_words", "llm_min_words", "max_failures", "simans_a", "simans_b")


@dataclass
class MiningConfig(Versioned):
    """Everything that decides which negatives are mined; the artifact's config."""

    strategy: str = "bm25"  # one strategy, or a mixture with counts: "bm25:3,random:1"
    split: str = "train"
    num_negatives: int | None = None  # per query; a mixture's counts sum to it
    # The window and sampling defaults were chosen on an LLM-written dev split of Cranfield
    # (recipes/results/mining-defaults.md): BM25's top ranks are full of unlabeled positives, and
    # uniform sampling over ranks 11-100 did no harm where best-first did (sentence-transformers'
    # published hard negatives use the same: range_min 10, sampling random).
    range_min: int = 10  # skip candidates ranked 1..range_min
    range_max: int = 100  # consider candidates ranked up to range_max
    depth: int | None = None  # first-stage candidates per query [default: range_max]
    sampling: str = "random"  # top: best-ranked survivors; random: uniform among survivors
    seed: int = 13
    max_score: float | None = None
    absolute_margin: float | None = None
    relative_margin: float | None = None
    # A per-query margin (LG-ANNA's adaptive margins): drop candidates scoring >= positive - K x the
    # spread (standard deviation) of the query's own candidate scores. Versions only when set.
    adaptive_margin: float | None = added(None)
    candidates: str = "bm25"  # first stage the cross-encoder re-scores
    model: str = models.DEFAULT_MODEL  # bi-encoder for dense candidates (when no dense index is given)
    cross_encoder: str | None = None
    max_positives: int | None = None  # use at most this many positives per query (sparse labels, as MS MARCO)
    # Documents whose id is the query's: the policy evaluate uses (data.drop_self_hits). The decision
    # it reaches, not the option, versions the negatives.
    self_hits: str = unversioned("auto")
    # strategy llm: generated passages that look relevant but do not answer ("Don't Retrieve, Generate")
    llm: str = llmlib.DEFAULT_LLM
    api_key_env: str = ""
    llm_prompt: str = "negative.txt"
    llm_sampling: llmlib.SamplingParams = field(default_factory=lambda: llmlib.SamplingParams(max_tokens=96, temperature=0.8))
    llm_max_words: int = 120
    llm_min_words: int = 5
    concurrency: int = unversioned(4)  # parallel requests for HTTP LLM backends: how fast, not what
    max_failures: float = 0.05
    # strategy simans: the draw's sharpness a and centre b, in candidate-score spreads from the positive
    simans_a: float = 0.5
    simans_b: float = 0.0
    # The LLM judge (mining.judge): kept negatives it calls relevant with P(yes) above the threshold
    # are dropped, or with judge_relabel made positives. An --llm value; versions only when set.
    judge: str | None = added(None)
    judge_threshold: float = added(0.5)
    judge_relabel: bool = added(False)
    judge_prompt: str = added("judge.txt")
    batch_size: int = 32  # cross-encoder batch size
    # Queries searched and scored together: memory, not what is mined (any split gives the same bytes).
    chunk_size: int = recorded_at_default(256)
    device: str = unversioned("auto")  # where the dense model and the cross-encoder run
    components: list[tuple[str, int]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.components = parse_strategy(self.strategy, self.num_negatives)

    def irrelevant(self) -> set[str]:
        used = set().union(*(s.uses for s in self.variants))
        return {f for f in _USED_FIELDS if f not in used} | (_JUDGE_FIELDS if self.judge is None else set())

    @property
    def variants(self) -> list[strategies.Strategy]:
        """The run's strategies from the registry, in the mixture's order: what they rank by,
        re-score or write is read off them."""
        return [strategies.get(name) for name, _ in self.components]

    @property
    def first_stage_depth(self) -> int:
        return self.depth if self.depth is not None else self.range_max

    @property
    def label(self) -> str:
        """A name fragment: ``bm25`` or ``bm25-3-random-1``."""
        if len(self.components) == 1:
            return self.components[0][0]
        return "-".join(f"{s}-{n}" for s, n in self.components)

    def rankings(self) -> set[str]:
        """The first-stage rankings the strategies read: bm25, dense, and ``hybrid`` when fused."""
        return {r for s in self.variants if (r := s.ranking_of(self.candidates)) is not None}

    def engines(self) -> set[str]:
        """First-stage engines the strategies need: a fused ranking needs both."""
        wanted = self.rankings()
        return (wanted - {HYBRID}) | (set(FIRST_STAGES) if HYBRID in wanted else set())

    def check(self) -> None:
        """Every option in its range, before any work starts."""
        for name in ("max_score", "absolute_margin", "relative_margin", "adaptive_margin"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):  # NaN would keep everything, inf nothing
                raise InputError(f"{name.replace('_', '-')} must be a finite number, got {value}", field=name)
        if not 0 <= self.judge_threshold <= 1:
            raise InputError(f"judge-threshold is a probability in [0, 1], got {self.judge_threshold}", field="judge_threshold")
        if self.judge is None and (self.judge_relabel or self.judge_threshold != 0.5 or self.judge_prompt != "judge.txt"):
            raise InputError("judge-threshold, judge-relabel and judge-prompt need --judge LLM", field="judge")
        if self.candidates not in (*FIRST_STAGES, HYBRID):
            raise InputError(f"candidates must be bm25, dense or hybrid, got {self.candidates!r}", field="candidates")
        if self.sampling not in SAMPLINGS:
            raise InputError(f"sampling must be top or random, got {self.sampling!r}", field="sampling")
        if self.range_min < 0:
            raise InputError(f"range-min must be >= 0, got {self.range_min}", field="range_min")
        if self.range_max <= self.range_min:
            raise InputError(
                f"the window (range-min {self.range_min}, range-max {self.range_max}] holds no rank: "
                "range-max must be greater than range-min" + (" (range-min defaults to 10; --range-min 0 keeps the top ranks)" if self.range_min == 10 else ""),
                field="range_max",
            )
        if self.depth is not None and self.depth < self.range_max:
            raise InputError(
                f"depth {self.depth} is below range-max {self.range_max}: ranks past the depth are never retrieved",
                field="depth",
            )
        if self.absolute_margin is not None and self.absolute_margin < 0:
            raise InputError(f"absolute-margin must be >= 0, got {self.absolute_margin}", field="absolute_margin")
        if self.adaptive_margin is not None and self.adaptive_margin < 0:
            raise InputError(f"adaptive-margin must be >= 0, got {self.adaptive_margin}", field="adaptive_margin")
        if self.relative_margin is not None and not 0 <= self.relative_margin < 1:
            raise InputError(f"relative-margin must be in [0, 1), got {self.relative_margin}", field="relative_margin")
        if self.self_hits not in datasets.SELF_HITS:
            raise InputError(f"self-hits must be auto, drop or keep, got {self.self_hits!r}", field="self_hits")
        if self.max_positives is not None and self.max_positives < 1:
            raise InputError(f"max-positives must be >= 1, got {self.max_positives}", field="max_positives")
        check_at_least(self, 1, "batch_size", "chunk_size")
        models.check_device(self.device)
        for strategy in self.variants:  # each strategy's own fields
            strategy.check(self)
        datasets.check_split_name(self.split)


def parse_strategy(text: str, num_negatives: int | None) -> list[tuple[str, int]]:
    """``bm25`` → [("bm25", n)]; ``bm25:3,random:1`` → [("bm25", 3), ("random", 1)].

    In a mixture the counts are negatives per query; ``num_negatives``, if given, must equal
    their sum (so a typo cannot silently change the training budget).
    """
    if num_negatives is not None and num_negatives < 1:
        raise InputError(f"num-negatives must be >= 1, got {num_negatives}", field="num_negatives")
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 1 and ":" not in parts[0]:
        strategies.get(parts[0])  # an unknown name is an error naming the close matches
        return [(parts[0], num_negatives or DEFAULT_NEGATIVES)]
    components: list[tuple[str, int]] = []
    for part in parts:
        match = re.fullmatch(r"([a-z0-9-]+):(\d+)", part)
        if not match:
            raise InputError(f"mixture part {part!r} must be STRATEGY:COUNT, e.g. bm25:3", field="strategy")
        name, count = match.group(1), int(match.group(2))
        strategies.get(name)
        if count < 1:
            raise InputError(f"mixture count for {name} must be >= 1", field="strategy")
        if name in (s for s, _ in components):
            raise InputError(f"strategy {name!r} appears twice in the mixture", field="strategy")
        components.append((name, count))
    total = sum(n for _, n in components)
    if num_negatives is not None and num_negatives != total:
        raise InputError(f"num-negatives {num_negatives} differs from the mixture's total {total}", field="num_negatives")
    return components
