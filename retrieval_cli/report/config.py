"""How systems are compared in a report: against which baseline, by which paired test and
correction, at which significance level."""

from __future__ import annotations

from dataclasses import dataclass, fields

from retrieval_cli.errors import InputError
from retrieval_cli.report import significance
from retrieval_cli.store import Versioned, added


@dataclass
class ReportConfig(Versioned):
    """How systems are compared: against which evaluation, by which paired test and correction."""

    baseline: str | None = None  # evaluation reference; None: no comparison columns
    test: str = "t"  # t | randomization | wilcoxon
    correction: str = "holm"  # holm | bonferroni | none, over the systems compared per dataset and measure
    alpha: float = 0.05
    seed: int = 13  # randomization test
    resamples: int = 10_000
    # Suites of targets averaged apart (name -> dataset names): a recipe's evaluate_on suites.
    suites: dict[str, list[str]] = added(default_factory=dict)

    def irrelevant(self) -> set[str]:
        """Without a baseline nothing is compared; only the randomization test draws samples."""
        if self.baseline is None:
            return {f.name for f in fields(self)} - {"suites"}
        return set() if self.test == "randomization" else {"seed", "resamples"}

    def check(self) -> None:
        significance.check(self.test, self.correction)
        if not 0 < self.alpha < 1:
            raise InputError(f"alpha must be in (0, 1), got {self.alpha}", field="alpha")
        if self.resamples < 100:
            raise InputError(f"resamples must be >= 100, got {self.resamples}", field="resamples")
