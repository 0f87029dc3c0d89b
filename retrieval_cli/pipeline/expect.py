"""Expected results, checked Pyserini-style: a recipe's ``report.expect`` names a JSON file of
expected values (system -> target -> measure -> value, a target being a dataset or ``dataset/split``); after a run each expected cell is OK
(within ``tolerance``), OKish (within ``okish``) or FAIL (further off, or missing), so a CI smoke
run fails when a number drifts."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from retrieval_cli.errors import InputError, RetrievalError
from retrieval_cli.store import atomic_write_text

OK, OKISH, FAIL = "OK", "OKish", "FAIL"


@dataclass(frozen=True)
class Expectation:
    """Where the expected values are and how close a run must come."""

    path: Path
    tolerance: float = 0.005
    okish: float = 0.02

    def check(self) -> None:
        if not 0 <= self.tolerance <= self.okish:
            raise InputError(f"need 0 <= tolerance <= okish, got {self.tolerance} and {self.okish}", field="tolerance")


@dataclass(frozen=True)
class Cell:
    system: str
    dataset: str
    measure: str
    expected: float
    measured: float | None
    verdict: str

    @property
    def got(self) -> str:
        return "missing" if self.measured is None else f"{self.measured:.4f}"

    def line(self, system: str | None = None) -> str:
        """The verdict as one line (``system``: a shorter label for the terminal)."""
        return f"{self.verdict:5} {system or self.system} | {self.dataset} {self.measure}: {self.expected:.4f} expected, {self.got} measured"


class ExpectationFailed(RetrievalError):
    """A run's number left its expected value's tolerance (exit code 1)."""


def cells_of(table: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """A report's values as an expectations file holds them: system -> target -> measure -> value
    (a target is the report's column: the dataset, ``dataset/split`` where the split is not test
    alone)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for row in table.to_dict("records"):
        if isinstance(row["value"], float) and not math.isnan(row["value"]):
            out.setdefault(row["system"], {}).setdefault(row.get("target") or row["dataset"], {})[row["measure"]] = round(float(row["value"]), 6)
    return out


def read(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    if not Path(path).is_file():
        raise InputError("no expected values yet: check the report, then record it with `retrieval-cli pipeline check RECIPE --write`", path=path)
    try:
        expected = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read expected values ({exc.strerror})", path=path) from None
    except ValueError as exc:
        raise InputError(f"not valid JSON ({exc})", path=path) from None
    if not isinstance(expected, dict) or not all(
        isinstance(d, dict) and all(isinstance(m, dict) and all(isinstance(v, (int, float)) for v in m.values()) for m in d.values())
        for d in expected.values()
    ):
        raise InputError("expected values must map system -> dataset -> measure -> number", path=path)
    if not any(by_measure for by_dataset in expected.values() for by_measure in by_dataset.values()):
        raise InputError("holds no expected values, so it would check nothing: record them with "
                         "`retrieval-cli pipeline check RECIPE --write`", path=path)
    return expected


def write(path: Path, table: pd.DataFrame) -> None:
    """Record a report's values as the expected ones (after a run a person has checked)."""
    atomic_write_text(Path(path), json.dumps(cells_of(table), indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def compare(table: pd.DataFrame, expectation: Expectation) -> list[Cell]:
    """Each expected cell's verdict against a report's table."""
    measured = cells_of(table)
    verdicts = []
    for system, by_dataset in read(expectation.path).items():
        for dataset, by_measure in by_dataset.items():
            for measure, value in by_measure.items():
                got = measured.get(system, {}).get(dataset, {}).get(measure)
                off = math.inf if got is None else abs(got - value)
                verdict = OK if off <= expectation.tolerance + 1e-12 else OKISH if off <= expectation.okish + 1e-12 else FAIL
                verdicts.append(Cell(system, dataset, measure, float(value), got, verdict))
    return verdicts


def enforce(cells: list[Cell], expectation: Expectation) -> None:
    """Raise on the first FAIL: one line naming the cell, the expected and the measured value."""
    failed = [c for c in cells if c.verdict == FAIL]
    if failed:
        c = failed[0]
        more = f" ({len(failed) - 1} more cells failed)" if len(failed) > 1 else ""
        raise ExpectationFailed(
            f"{expectation.path}: {c.system} | {c.dataset} {c.measure}: expected {c.expected:.4f} ± {expectation.tolerance}, "
            f"measured {c.got}{more}"
        )


def from_recipe(path: Path, fragment: dict[str, Any]) -> Expectation | None:
    """The ``report`` section's ``expect`` (a path relative to the recipe), ``tolerance`` and ``okish``."""
    if "expect" not in fragment:
        for key in ("tolerance", "okish"):
            if key in fragment:
                raise InputError(f"{path}: report.{key}: needs report.expect (the expected values file)")
        return None
    tolerance = fragment.get("tolerance", 0.005)
    okish = fragment.get("okish", max(0.02, 4 * float(tolerance)) if isinstance(tolerance, (int, float)) else 0.02)
    for key, value in (("tolerance", tolerance), ("okish", okish)):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InputError(f"{path}: report.{key}: expected a number, got {value!r}")
    expectation = Expectation((Path(path).parent / str(fragment["expect"])).resolve(), float(tolerance), float(okish))
    try:
        expectation.check()
    except InputError as exc:
        raise InputError(f"{path}: report: {exc}") from None
    return expectation
