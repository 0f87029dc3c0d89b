"""Report artifacts: systems x datasets x metrics, each system described by its lineage.

The table is long-form underneath (one row per system, dataset, measure). With a baseline, each
other system's row gains its delta against the baseline, a paired test's p-value over the queries
both answered (``significance``), the p-value adjusted over the systems compared on that dataset
and measure, whether it is significant, and how many queries improved or got worse.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from retrieval_cli import evaluate as evaluation
from retrieval_cli.errors import InputError
from retrieval_cli.mining import records as negatives_io
from retrieval_cli.progress import Progress, silent
from retrieval_cli.report import plots, significance
from retrieval_cli.store import Artifact, BuildResult, Versioned, Workspace


@dataclass
class ReportConfig(Versioned):
    """How systems are compared: against which evaluation, by which paired test and correction."""

    baseline: str | None = None  # evaluation reference; None: no comparison columns
    test: str = "t"  # t | randomization | wilcoxon
    correction: str = "holm"  # holm | bonferroni | none, over the systems compared per dataset and measure
    alpha: float = 0.05
    seed: int = 13  # randomization test
    resamples: int = 10_000

    def irrelevant(self) -> set[str]:
        """Without a baseline nothing is compared; only the randomization test draws samples."""
        if self.baseline is None:
            return {f.name for f in fields(self)}
        return set() if self.test == "randomization" else {"seed", "resamples"}

    def check(self) -> None:
        significance.check(self.test, self.correction)
        if not 0 < self.alpha < 1:
            raise InputError(f"alpha must be in (0, 1), got {self.alpha}", field="alpha")
        if self.resamples < 100:
            raise InputError(f"resamples must be >= 100, got {self.resamples}", field="resamples")


@dataclass
class System:
    """How one evaluated system was made, read from its artifact lineage."""

    label: str
    retriever: str
    model: str = ""
    negatives: str = ""
    training: str = ""
    rerank: str = ""


def describe(ws: Workspace, evaluation_artifact: Artifact) -> System:
    """Describe the system behind an evaluation: retriever, model, negatives, training, reranker."""
    inputs = ws.inputs_of(evaluation_artifact)
    cfg = evaluation_artifact.config
    rerank = cfg.get("rerank") or ""
    index = inputs.get("index")
    if index is None:
        run = cfg.get("run_file", {}).get("path", "run")
        retriever, model = f"run:{Path(run).stem}", ""
    elif index.config.get("kind") == "bm25":
        ic = index.config
        stemmer = "" if ic.get("stemmer", "porter") == "porter" else f" stemmer={ic['stemmer']}"
        retriever, model = f"BM25 k1={ic['k1']} b={ic['b']}{stemmer}", ""
    else:
        ic = index.config
        retriever, model = f"dense {ic['faiss']}", ic["model"]
    negatives = training = ""
    model_artifact = ws.inputs_of(index).get("model") if index is not None else None
    if model_artifact is not None:
        mc = model_artifact.config
        training = " · ".join(str(mc[k]) for k in ("loss", "sampler") if k in mc)
        neg = ws.inputs_of(model_artifact).get("negatives")
        if neg is not None:
            negatives = negatives_io.label(neg.config)
        # Trained: "NAME: base + negatives · loss · sampler", the lineage a reader compares by.
        model = model_artifact.name
        label = f"{model}: {mc.get('base', '?')}" + (f" + {negatives}" if negatives else "")
        label += f" · {training}" if training else ""
        if not retriever.startswith("dense flat"):
            label += f" ({retriever})"
    else:
        label = f"{model} ({retriever})" if model else retriever
    if rerank:
        label += f" + rerank {rerank}"
    return System(label=label, retriever=retriever, model=model, negatives=negatives, training=training, rerank=rerank)


def build_table(ws: Workspace, evaluations: list[Artifact]) -> pd.DataFrame:
    """Long table: system, dataset, split, measure, value, plus the lineage columns."""
    rows = []
    described = [(ev, describe(ws, ev), evaluation.metrics(ev)) for ev in evaluations]
    # Two evaluations that describe alike on one dataset would collapse into one cell of the
    # table; name their artifacts so both stay visible.
    seen = Counter((system.label, m["dataset"]) for _, system, m in described)
    for ev, system, m in described:
        label = system.label
        if seen[(label, m["dataset"])] > 1:
            label += f" [{ev.name}@{ev.version[:6]}]"
        for measure, value in m["aggregate"].items():
            rows.append({
                "system": label, "dataset": m["dataset"], "split": m["split"], "measure": measure,
                "value": value, "queries": m["queries"], "evaluation": ev.ref, "retriever": system.retriever,
                "model": system.model, "negatives": system.negatives, "training": system.training,
                "rerank": system.rerank,
            })
    return pd.DataFrame(rows)


def compare(table: pd.DataFrame, evaluations: list[Artifact], baseline: Artifact, config: ReportConfig) -> pd.DataFrame:
    """Add baseline, delta, p, p_adjusted, significant, improved, hurt columns to a long table.

    Pairs are the queries both the system and the baseline were scored on (same dataset and split);
    Judged@10 and other diagnostics are not tested.
    """
    per_query = {ev.ref: evaluation.per_query(ev) for ev in evaluations}
    base = table[table["evaluation"] == baseline.ref]
    table = table.assign(baseline=table["evaluation"] == baseline.ref, delta=float("nan"), p=float("nan"),
                         p_adjusted=float("nan"), significant=False, improved=pd.NA, hurt=pd.NA)
    table = table.astype({"improved": "Int64", "hurt": "Int64"})
    for _, b in base.iterrows():
        if b["measure"] in evaluation.ALWAYS:
            continue
        family = table.index[(table["dataset"] == b["dataset"]) & (table["split"] == b["split"])
                             & (table["measure"] == b["measure"]) & ~table["baseline"]]
        b_values = per_query[baseline.ref].get(b["measure"], {})
        pvalues = []
        for i in family:
            values = per_query[table.at[i, "evaluation"]].get(b["measure"], {})
            shared = sorted(set(values) & set(b_values))
            x = [values[q] for q in shared]
            y = [b_values[q] for q in shared]
            table.at[i, "delta"] = table.at[i, "value"] - b["value"]
            table.at[i, "p"] = significance.paired_p(x, y, config.test, seed=config.seed, resamples=config.resamples)
            table.at[i, "improved"] = sum(1 for u, v in zip(x, y) if u > v + 1e-12)
            table.at[i, "hurt"] = sum(1 for u, v in zip(x, y) if u < v - 1e-12)
            pvalues.append(table.at[i, "p"])
        for i, adjusted in zip(family, significance.adjust(pvalues, config.correction)):
            table.at[i, "p_adjusted"] = adjusted
            table.at[i, "significant"] = bool(adjusted < config.alpha)
    return table


def cell(row: pd.Series) -> str:
    """One table cell: the value, and against a baseline the delta with * when significant."""
    if pd.isna(row["value"]):
        return ""
    text = f"{row['value']:.4f}"
    if "delta" in row and not pd.isna(row["delta"]):
        text += f" ({row['delta']:+.4f}{'*' if row['significant'] else ''})"
    elif row.get("baseline") is True:
        text += " (base)"
    return text


def wide(table: pd.DataFrame) -> pd.DataFrame:
    """Systems as rows, (dataset, measure) as columns, in first-seen order."""
    columns = list(dict.fromkeys(zip(table["dataset"], table["measure"])))
    systems = list(dict.fromkeys(table["system"]))
    pivot = table.pivot_table(index="system", columns=["dataset", "measure"], values="value", aggfunc="first")
    return pivot.reindex(index=systems, columns=pd.MultiIndex.from_tuples(columns, names=["dataset", "measure"]))


def cells(table: pd.DataFrame) -> pd.DataFrame:
    """The wide grid of formatted cells (values, deltas and marks)."""
    texts = table.assign(value=table.apply(cell, axis=1))
    columns = list(dict.fromkeys(zip(table["dataset"], table["measure"])))
    systems = list(dict.fromkeys(table["system"]))
    pivot = texts.pivot_table(index="system", columns=["dataset", "measure"], values="value", aggfunc="first")
    return pivot.reindex(index=systems, columns=pd.MultiIndex.from_tuples(columns, names=["dataset", "measure"])).fillna("")


def legend(config: ReportConfig, table: pd.DataFrame) -> str:
    """What the marks in a compared table mean."""
    if "delta" not in table:
        return ""
    names = {"t": "paired t-test", "randomization": f"paired randomization test ({config.resamples} resamples, seed {config.seed})", "wilcoxon": "Wilcoxon signed-rank test"}
    base = table.loc[table["baseline"], "system"].iloc[0]
    return (f"Baseline: {base}. (delta) against it; * = p < {config.alpha} by {names[config.test]}, "
            f"{config.correction} correction over the systems compared per dataset and measure.")


def to_markdown(table: pd.DataFrame, config: ReportConfig | None = None) -> str:
    grid = cells(table)
    headers = ["system"] + [f"{d} {m}" for d, m in grid.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for system, row in grid.iterrows():
        lines.append("| " + " | ".join([str(system), *row.tolist()]) + " |")
    note = legend(config or ReportConfig(), table)
    if note:
        lines += ["", note]
        tested = table[table["p"].notna()]
        if not tested.empty:
            lines += ["", "| system | dataset | measure | delta | p | p adjusted | improved | hurt |", "|---|---|---|---|---|---|---|---|"]
            for _, r in tested.iterrows():
                lines.append(f"| {r['system']} | {r['dataset']} | {r['measure']} | {r['delta']:+.4f} | {r['p']:.4g} | "
                             f"{r['p_adjusted']:.4g}{'*' if r['significant'] else ''} | {r['improved']} | {r['hurt']} |")
    return "\n".join(lines) + "\n"


def figures(ws: Workspace, table: pd.DataFrame, evaluations: list[Artifact], baseline: Artifact | None, folder: Path) -> dict[str, Path]:
    """Draw the report's PNG plots into ``folder``; name -> file for those with something to show."""
    by_ref = {ev.ref: ev for ev in evaluations}
    drawn = {
        "metrics": plots.metric_bars(table, by_ref, folder / "metrics.png"),
        "recall": plots.recall_curves(ws, table, by_ref, folder / "recall-at-k.png"),
        "loss": plots.loss_curves(ws, table, by_ref, folder / "training-loss.png"),
        "mining": plots.mining_stats(ws, table, by_ref, folder / "mining.png"),
    }
    if baseline is not None:
        first = next((m for m in table["measure"] if m not in evaluation.ALWAYS), None)
        if first:
            drawn["deltas"] = plots.query_deltas(table, by_ref, baseline, first, folder / "query-deltas.png")
    return {k: v for k, v in drawn.items() if v is not None}


def to_html(table: pd.DataFrame, config: ReportConfig, pictures: dict[str, Path]) -> str:
    """A self-contained page: the table, the legend, the tests, and every plot inlined as PNG data."""
    import base64
    import html

    grid = cells(table)
    grid.columns = [f"{d} {m}" for d, m in grid.columns]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>retrieval-cli report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}</style>",
        "</head><body><h1>retrieval-cli report</h1>",
        grid.to_html(escape=True),
    ]
    note = legend(config, table)
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
        tested = table[table["p"].notna()][["system", "dataset", "measure", "delta", "p", "p_adjusted", "significant", "improved", "hurt"]]
        if not tested.empty:
            parts.append(tested.to_html(index=False, float_format=lambda v: f"{v:.4g}", escape=True))
    for name, path in pictures.items():
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def report(
    ws: Workspace,
    evaluations: list[Artifact],
    config: ReportConfig | None = None,
    *,
    name: str = "report",
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Write a report artifact (Markdown, CSV, JSON) over the given evaluation artifacts."""
    config = config or ReportConfig()
    config.check()
    baseline = ws.resolve(config.baseline, kind="evaluations") if config.baseline else None
    if not evaluations:
        raise InputError("no evaluations to report: give evaluation references or --all")
    for ev in evaluations:
        if ev.kind != "evaluations":
            raise InputError(f"'{ev.ref}' is a {ev.kind} artifact, expected evaluations")
    if baseline is not None and all(ev.path != baseline.path for ev in evaluations):
        evaluations = [baseline, *evaluations]
    inputs = {f"evaluation{i}": ev for i, ev in enumerate(evaluations)}
    resolved: dict[str, Any] = {"evaluations": len(evaluations)}
    if baseline is not None:
        resolved["baseline"] = baseline.ref

    def build(folder: Path) -> dict[str, Any]:
        progress("report", 0, None)
        table = build_table(ws, evaluations)
        if baseline is not None:
            table = compare(table, evaluations, baseline, config)
        grid = wide(table)
        markdown = to_markdown(table, config)
        progress("plots", 0, None)
        pictures = figures(ws, table, evaluations, baseline, folder / "plots")
        progress("plots", 1, 1)
        markdown += "".join(f"\n![{name}](plots/{path.name})\n" for name, path in pictures.items())
        (folder / "report.md").write_text(markdown, encoding="utf-8")
        (folder / "report.html").write_text(to_html(table, config, pictures), encoding="utf-8")
        grid.to_csv(folder / "report.csv", float_format="%.6f")
        table.to_csv(folder / "long.csv", index=False, float_format="%.6f")
        records = json.loads(table.to_json(orient="records"))  # NaN/NA become null
        (folder / "table.json").write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
        progress("report", 1, 1)
        summary: dict[str, Any] = {"systems": int(table["system"].nunique()), "datasets": int(table["dataset"].nunique())}
        if baseline is not None:
            summary["significant"] = int(table["significant"].sum())
            summary["legend"] = legend(config, table)
        return summary

    return ws.build("reports", name, config, inputs, build, resolved=resolved, force=force)


def load_table(report_artifact: Artifact) -> pd.DataFrame:
    return pd.DataFrame(json.loads(report_artifact.file("table.json").read_text(encoding="utf-8")))
