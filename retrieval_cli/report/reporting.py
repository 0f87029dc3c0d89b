"""Report artifacts: systems x datasets x metrics, each system described by its lineage.

The table is long-form underneath (``report.table``: one row per system, dataset, measure, seeds
folded into one row). With a baseline, ``report.compare`` adds each system's delta, a paired
test's p-value, the p-value adjusted over the systems compared, whether it is significant, and how
many queries improved or got worse, per target and across targets; ``report.render`` draws it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from retrieval_cli import evaluate as evaluation
from retrieval_cli.errors import InputError
from retrieval_cli.progress import Progress, silent
from retrieval_cli.report import plots
from retrieval_cli.report.compare import across_targets, compare
from retrieval_cli.report.config import ReportConfig
from retrieval_cli.report.render import legend, to_html, to_markdown, wide
from retrieval_cli.report.table import aggregates, build_table, with_targets
from retrieval_cli.store import Artifact, BuildResult, Workspace


def figures(ws: Workspace, table: pd.DataFrame, evaluations: list[Artifact], folder: Path) -> dict[str, Path]:
    """Draw the report's PNG plots into ``folder``; name -> file for those with something to show."""
    by_ref = {ev.ref: ev for ev in evaluations}
    drawn = {
        "metrics": plots.metric_bars(table, by_ref, folder / "metrics.png"),
        "recall": plots.recall_curves(ws, table, by_ref, folder / "recall-at-k.png"),
        "loss": plots.loss_curves(ws, table, by_ref, folder / "training-loss.png"),
        "mining": plots.mining_stats(ws, table, by_ref, folder / "mining.png"),
    }
    first = next((m for m in table["measure"] if m not in evaluation.ALWAYS), None)
    if first:
        drawn["deltas"] = plots.query_deltas(table, by_ref, first, folder / "query-deltas.png")
    return {k: v for k, v in drawn.items() if v is not None}


def every_evaluation(ws: Workspace) -> tuple[list[Artifact], list[str]]:
    """What ``report --all`` reports: every evaluation version whose lineage is whole (versions
    that scored one ranking with other measures merge into one system in the table; different
    settings stay different systems), and a line for each one left out, saying why."""
    def gone(tree: dict[str, Any]) -> str | None:
        for sub in tree["inputs"].values():
            why = f"input {sub['ref']} is {sub['missing']}" if "missing" in sub else gone(sub)
            if why:
                return why
        return None

    chosen, left_out = [], []
    scanned, damaged = ws.scan("evaluations")
    for ev in scanned:
        why = gone(ws.lineage(ev))
        if why:
            left_out.append(f"{ev.ref}: {why}")
        else:
            chosen.append(ev)
    left_out.extend(f"{folder}: damaged ({why})" for folder, why in damaged)
    return chosen, left_out


def comparable(evaluations: list[Artifact], baselines: list[Artifact]) -> None:
    """A baseline is compared on the queries it answered, its own targets (dataset and split):
    refuse one that shares no target with the evaluations it would be compared with, rather than
    print a table where nothing is compared (a baseline on train beside systems on test). Two
    systems as baselines of one target are refused by ``compare``."""
    def target(ev: Artifact) -> str:
        scored = evaluation.metrics(ev)
        return f"{scored['dataset']}/{scored['split']}"

    own = {b.path for b in baselines}
    base = dict.fromkeys(target(b) for b in baselines)
    others = dict.fromkeys(target(ev) for ev in evaluations if ev.path not in own)
    if others and not set(others) & set(base):
        raise InputError(
            f"baseline '{baselines[0].ref}' is evaluated on {', '.join(base)} and no other evaluation is (they are on "
            f"{', '.join(others)}): name a baseline evaluated on the same dataset and split", field="baseline")


def report(
    ws: Workspace,
    evaluations: list[Artifact],
    config: ReportConfig | None = None,
    *,
    name: str = "report",
    baselines: list[Artifact] | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Write a report artifact (Markdown, CSV, JSON) over the given evaluation artifacts.
    ``baselines``: the baseline's evaluation on each target (each dataset is compared with its own);
    by default the one ``config.baseline`` names."""
    config = config or ReportConfig()
    config.check()
    baseline = ws.resolve(config.baseline, kind="evaluations") if config.baseline else None
    if not evaluations:
        raise InputError("no evaluations to report: give evaluation references or --all")
    for ev in evaluations:
        if ev.kind != "evaluations":
            raise InputError(f"'{ev.ref}' is a {ev.kind} artifact, expected evaluations")
    # The baseline on each target (the named one first, each once); none without a baseline. Each
    # joins the report when it is not among the evaluations given.
    compared = list({b.path: b for b in [baseline, *(baselines or [])]}.values()) if baseline is not None else []
    evaluations = [*(b for b in compared if all(ev.path != b.path for ev in evaluations)), *evaluations]
    if compared:
        comparable(evaluations, compared)
    inputs = {f"evaluation{i}": ev for i, ev in enumerate(evaluations)}
    resolved: dict[str, Any] = {"evaluations": len(evaluations)}
    if baseline is not None:
        resolved["baseline"] = baseline.ref
    if len(compared) > 1:
        resolved["baselines"] = [b.ref for b in compared]

    def build(folder: Path) -> dict[str, Any]:
        progress("report", 0, None)
        table = build_table(ws, evaluations)
        if baseline is not None:
            table = compare(table, evaluations, compared, config)
        table = across_targets(table, config if baseline is not None else None, config.suites)
        grid = wide(table)
        markdown = to_markdown(table, config)
        progress("plots", 0, None)
        pictures = figures(ws, table[~aggregates(table)], evaluations, folder / "plots")
        progress("plots", 1, 1)
        markdown += "".join(f"\n![{name}](plots/{path.name})\n" for name, path in pictures.items())
        (folder / "report.md").write_text(markdown, encoding="utf-8")
        (folder / "report.html").write_text(to_html(table, config, pictures), encoding="utf-8")
        grid.to_csv(folder / "report.csv", float_format="%.6f")
        table.to_csv(folder / "long.csv", index=False, float_format="%.6f")
        records = json.loads(table.to_json(orient="records"))  # NaN/NA become null
        (folder / "table.json").write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
        progress("report", 1, 1)
        summary: dict[str, Any] = {"systems": int(table["system"].nunique()), "datasets": int(table.loc[~aggregates(table), "dataset"].nunique())}
        if baseline is not None:
            summary["significant"] = int(table["significant"].sum())
            summary["legend"] = legend(config, table)
        return summary

    return ws.build("reports", name, config, inputs, build, resolved=resolved, force=force)


def load_table(report_artifact: Artifact) -> pd.DataFrame:
    """A report's long table (with its targets: reports written before they existed get them)."""
    return with_targets(pd.DataFrame(json.loads(report_artifact.file("table.json").read_text(encoding="utf-8"))))
