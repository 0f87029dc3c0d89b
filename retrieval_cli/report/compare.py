"""Comparing systems with a baseline: per dataset, measure and split, the delta, a paired test
over the queries both answered (per-query scores averaged over seeds), the p-value adjusted over
the systems compared, and how many queries improved or got worse; across targets, the mean over
datasets with a paired test over the per-target values, and wins / ties / losses."""

from __future__ import annotations

import pandas as pd

from retrieval_cli import evaluate as evaluation
from retrieval_cli.errors import InputError
from retrieval_cli.report import significance
from retrieval_cli.report.config import ReportConfig
from retrieval_cli.report.table import SEP, aggregates
from retrieval_cli.store import Artifact

MEAN = "mean"  # the dataset column of the across-targets rows


def per_query(evaluations: dict[str, Artifact], refs: str, measure: str) -> dict[str, float]:
    """Per-query values of a row's evaluation, averaged over its seeds (queries every seed scored)."""
    tables = [evaluation.per_query(evaluations[ref]).get(measure, {}) for ref in refs.split(SEP)]
    shared = set(tables[0]).intersection(*tables[1:])
    return {q: sum(t[q] for t in tables) / len(tables) for q in shared}


def compare(table: pd.DataFrame, evaluations: list[Artifact], baselines: list[Artifact], config: ReportConfig) -> pd.DataFrame:
    """Add baseline, delta, p, p_adjusted, significant, improved, hurt (and over seeds,
    seeds_better) columns to a long table; each target (dataset and split) is compared with the
    baseline evaluated on it, and a target with no baseline gets no delta. Judged@10 and other
    diagnostics are not tested."""
    by_ref = {ev.ref: ev for ev in evaluations}
    refs = {b.ref for b in baselines}
    # A row is the baseline when the baseline's evaluation is behind it (with the ones that scored
    # the same ranking with other measures).
    is_baseline = table["refs"].map(lambda every: bool(set(str(every).split(SEP)) & refs))
    table = table.assign(baseline=is_baseline, delta=float("nan"), p=float("nan"),
                         p_adjusted=float("nan"), significant=False, improved=pd.NA, hurt=pd.NA, seeds_better=pd.NA)
    table = table.astype({"improved": "Int64", "hurt": "Int64", "seeds_better": "Int64"})
    for (target, measure), rows in table[table["baseline"]].groupby(["target", "measure"]):
        if len(rows) > 1:  # the seeds of one system are one row; two rows are two systems
            raise InputError(f"two baselines on {target}: {' and '.join(rows['system'])}; give one per dataset and split", field="baseline")
    for _, b in table[table["baseline"]].iterrows():
        if b["measure"] in evaluation.ALWAYS:
            continue
        family = table.index[(table["target"] == b["target"]) & (table["measure"] == b["measure"]) & ~table["baseline"]]
        b_values = per_query(by_ref, b["evaluation"], b["measure"])
        pvalues = []
        for i in family:
            values = per_query(by_ref, table.at[i, "evaluation"], b["measure"])
            shared = sorted(set(values) & set(b_values))
            x = [values[q] for q in shared]
            y = [b_values[q] for q in shared]
            table.at[i, "delta"] = table.at[i, "value"] - b["value"]
            table.at[i, "p"] = significance.paired_p(x, y, config.test, seed=config.seed, resamples=config.resamples)
            table.at[i, "improved"] = sum(1 for u, v in zip(x, y) if u > v + 1e-12)
            table.at[i, "hurt"] = sum(1 for u, v in zip(x, y) if u < v - 1e-12)
            seed_values = table.at[i, "seed_values"]
            if isinstance(seed_values, list):
                table.at[i, "seeds_better"] = sum(1 for v in seed_values if v > b["value"] + 1e-12)
            pvalues.append(table.at[i, "p"])
        for i, adjusted in zip(family, significance.adjust(pvalues, config.correction)):
            table.at[i, "p_adjusted"] = adjusted
            table.at[i, "significant"] = bool(adjusted < config.alpha)
    return table


def across_targets(table: pd.DataFrame, config: ReportConfig | None, suites: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Append, per system and measure evaluated on every target (a dataset and split), a ``mean``
    row: the average over the targets (BEIR-style macro average), and the same over each suite's
    datasets (``suites``: name -> dataset names) as NAME-mean. Against a baseline, its delta,
    test and wins / ties / losses exist only where the baseline was compared on every target (a
    mean of the deltas it has would not be the difference of the means); its test is paired over
    the per-target values, and wins / ties / losses count the per-target significant differences."""
    own = table[~aggregates(table)]
    targets = list(dict.fromkeys(own["target"]))
    groups = {MEAN: targets}
    for suite, members in (suites or {}).items():
        chosen = list(dict.fromkeys(own.loc[own["dataset"].isin(members), "target"]))
        if len(chosen) >= 2 and len(chosen) < len(targets):
            groups[f"{suite}-{MEAN}"] = chosen
    rows = [row for label, chosen in groups.items() if len(chosen) >= 2 for row in _mean_rows(own, label, chosen, config)]
    if not rows:
        return table
    means = pd.DataFrame(rows)
    if config is not None and "delta" in table:
        if "p" not in means:
            means["p"] = float("nan")
        for _, family in means[means["p"].notna()].groupby(["target", "measure"]):
            adjusted = significance.adjust(list(family["p"]), config.correction)
            means.loc[family.index, "p_adjusted"] = adjusted
            means.loc[family.index, "significant"] = [bool(a < config.alpha) for a in adjusted]
        means["significant"] = means.get("significant", False)
        means["significant"] = means["significant"].fillna(False).astype(bool)
    return pd.concat([table, means], ignore_index=True)


def _mean_rows(table: pd.DataFrame, label: str, targets: list[str], config: ReportConfig | None) -> list[dict]:
    """One ``label`` row per system and measure evaluated on each of ``targets``: their mean."""
    rows = []
    compared = config is not None and "delta" in table
    tested = table[~table["measure"].isin(evaluation.ALWAYS) & table["target"].isin(targets)]
    for (system, measure), group in tested.groupby(["system", "measure"], sort=False):
        if sorted(group["target"]) != sorted(targets):
            continue  # not on every target: no mean
        row = {"system": system, "dataset": label, "split": "", "target": label, "measure": measure, "value": group["value"].mean(),
               "queries": int(group["queries"].sum()), "evaluation": "", "targets": len(group)}
        for column in ("retriever", "model", "negatives", "training", "rerank", "seeds"):
            row[column] = group[column].iloc[0]
        if compared:
            row["baseline"] = bool(group["baseline"].all())
            if not row["baseline"] and group["delta"].notna().all():
                row["delta"] = float(group["delta"].mean())
                row["wins"] = int(((group["delta"] > 0) & group["significant"]).sum())
                row["losses"] = int(((group["delta"] < 0) & group["significant"]).sum())
                row["ties"] = len(group) - row["wins"] - row["losses"]
                x = list(group["value"])
                y = [v - d for v, d in zip(group["value"], group["delta"])]  # the baseline's value per target
                row["p"] = significance.paired_p(x, y, config.test, seed=config.seed, resamples=config.resamples)
        rows.append(row)
    return rows
