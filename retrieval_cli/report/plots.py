"""Report figures as PNG files (matplotlib, headless): what a reader checks before trusting a table.

- metric bars with 95% confidence intervals over queries (t distribution);
- per-query differences against the baseline, sorted (how many queries move, and how far);
- recall@k curves for k = 1..1000 from each evaluation's run, computed by ir-measures;
- training loss curves of the models behind the systems (their ``training_log.jsonl``);
- mining statistics of the negatives behind them: estimated false-negative rate and mean rank.

Each function draws one figure from report data and returns the file it wrote, or None when
there is nothing to draw (no baseline, no trained model, no judged negatives).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrieval_cli import data as datasets
from retrieval_cli import evaluate as evaluation
from retrieval_cli.evaluate import runs
from retrieval_cli.report.compare import per_query
from retrieval_cli.mining import records as negatives_io
from retrieval_cli.store import Artifact, Workspace
from retrieval_cli.training import training_log

RECALL_CUTOFFS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, same pixels on every machine
    import matplotlib.pyplot as plt

    return plt


def _short(label: str, width: int = 48) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _save(fig: Any, path: Path, rect: tuple[float, float, float, float] | None = None) -> Path:
    """Lay the figure out (within ``rect`` of the page, leaving room for a figure legend) and write it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def _first(evaluations: dict[str, Artifact], refs: object) -> Artifact | None:
    """A row's evaluation (the first seed's, for a row over seeds): what its curves are drawn from."""
    return evaluations.get(refs.split(",")[0]) if isinstance(refs, str) and refs else None


def confidence_interval(values: list[float], level: float = 0.95) -> float:
    """Half-width of the t-based confidence interval of the mean."""
    from scipy import stats

    n = len(values)
    if n < 2:
        return 0.0
    return float(stats.t.ppf(0.5 + level / 2, n - 1) * np.std(values, ddof=1) / np.sqrt(n))


def metric_bars(table: pd.DataFrame, evaluations: dict[str, Artifact], path: Path) -> Path | None:
    """One panel per (target, measure): a bar per system with its 95% CI over queries, and for a
    system trained with several seeds each seed's value (the seed spread)."""
    plt = _pyplot()
    tested = table[~table["measure"].isin(evaluation.ALWAYS)]
    panels = list(dict.fromkeys(zip(tested["target"], tested["measure"])))
    if not panels:
        return None
    systems = list(dict.fromkeys(tested["system"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 + 2.2 * len(panels), 1.2 + 0.45 * len(systems)), squeeze=False)
    for ax, (target, measure) in zip(axes[0], panels):
        rows = tested[(tested["target"] == target) & (tested["measure"] == measure)].set_index("system").reindex(systems)
        errors = []
        for _, row in rows.iterrows():
            ev = _first(evaluations, row["evaluation"])
            values = list(evaluation.per_query(ev).get(measure, {}).values()) if ev is not None else []
            errors.append(confidence_interval(values))
        colors = ["#999999" if bool(r.get("baseline", False)) is True else "#3b75af" for _, r in rows.iterrows()]
        ax.barh(range(len(systems)), rows["value"].fillna(0), xerr=errors, color=colors, capsize=3)
        for y, (_, row) in enumerate(rows.iterrows()):  # a system over seeds: each seed's value as a dot
            seeds = row.get("seed_values")
            if isinstance(seeds, list) and len(seeds) > 1:
                ax.plot(seeds, [y] * len(seeds), "o", color="#d62728", markersize=3, zorder=3)
        ax.set_yticks(range(len(systems)), [_short(s) for s in systems] if ax is axes[0][0] else [""] * len(systems))
        ax.invert_yaxis()
        ax.set_title(f"{target} {measure}", fontsize=9)
        ax.set_xlim(0, 1)
    fig.suptitle("Mean over queries with 95% confidence intervals (grey: baseline; red dots: each training seed)", fontsize=9)
    return _save(fig, path)


def query_deltas(table: pd.DataFrame, evaluations: dict[str, Artifact], measure: str, path: Path) -> Path | None:
    """Per-query difference of each system from the baseline on ``measure``, sorted: one small
    panel per target (dataset and split), each system against the baseline on that target, seeds
    averaged on both sides; a system keeps one colour in every panel, and one legend below names
    each system once (short labels, as the HTML's key gives them in full)."""
    if "baseline" not in table:
        return None
    from retrieval_cli.report.render import short_labels

    plt = _pyplot()
    rows = table[table["measure"] == measure]
    # Per-query values averaged over a row's seeds, as the paired tests take them (compare.per_query).
    bases = {r["target"]: per_query(evaluations, r["evaluation"], measure) for _, r in rows[rows["baseline"].astype(bool)].iterrows()}
    others = rows[~rows["baseline"].astype(bool) & rows["target"].isin(list(bases))]
    if others.empty:
        return None
    targets = list(dict.fromkeys(others["target"]))
    systems = list(dict.fromkeys(others["system"]))
    colour = {system: plt.get_cmap("tab10" if len(systems) <= 10 else "tab20")(i % 20) for i, system in enumerate(systems)}
    columns = min(3, len(targets))
    lines = -(-len(targets) // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(3.3 * columns, 2.4 * lines + 0.9), squeeze=False, sharey=True)
    for k, target in enumerate(targets):
        ax = axes[k // columns][k % columns]
        base = bases[target]
        for _, row in others[others["target"] == target].iterrows():
            values = per_query(evaluations, row["evaluation"], measure)
            deltas = sorted((values[q] - base[q] for q in values if q in base), reverse=True)
            ax.plot(range(1, len(deltas) + 1), deltas, color=colour[row["system"]], linewidth=1.2)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_title(_short(str(target), 40), fontsize=8)
        ax.tick_params(labelsize=7)
    for k in range(len(targets), lines * columns):
        axes[k // columns][k % columns].set_visible(False)
    short = short_labels([str(s) for s in systems])
    handles = [plt.Line2D([], [], color=colour[s], linewidth=1.2) for s in systems]
    fig.legend(handles, [short[str(s)] for s in systems], loc="lower center", ncol=min(3, len(systems)), fontsize=7, frameon=False)
    fig.suptitle(f"Per-query {measure} - baseline, queries sorted by difference", fontsize=9)
    return _save(fig, path, rect=(0, 0.12 if len(systems) <= 3 else 0.2, 1, 0.95))


def recall_at(ws: Workspace, ev: Artifact, cutoffs: tuple[int, ...] = RECALL_CUTOFFS) -> dict[int, float]:
    """Mean recall at each cutoff of an evaluation's run, by ir-measures (the split's relevance level)."""
    import ir_measures

    data = datasets.load(ws.inputs_of(ev)["dataset"])
    split = evaluation.metrics(ev)["split"]
    qrels = data.split_qrels(split)
    measures = [ir_measures.R(rel=data.level(split)) @ k for k in cutoffs]
    rows = [ir_measures.Qrel(q, d, g) for q, docs in qrels.items() for d, g in docs.items()]
    run = runs.read_trec(ev.file("run.trec"))
    values = ir_measures.calc_aggregate(measures, rows, runs.to_scored_docs({q: h for q, h in run.items() if q in qrels}))
    return {k: float(values.get(m, 0.0)) for k, m in zip(cutoffs, measures)}


def recall_curves(ws: Workspace, table: pd.DataFrame, evaluations: dict[str, Artifact], path: Path) -> Path | None:
    """Recall@k for k = 1..1000 (log axis), one line per system, one panel per target."""
    plt = _pyplot()
    systems = table.drop_duplicates(["system", "target"])[["system", "target", "evaluation"]]
    names = list(dict.fromkeys(systems["target"]))
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 3.8), squeeze=False)
    for ax, target in zip(axes[0], names):
        for _, row in systems[systems["target"] == target].iterrows():
            curve = recall_at(ws, _first(evaluations, row["evaluation"]))
            ax.plot(list(curve), list(curve.values()), label=_short(row["system"], 60), linewidth=1.2)
        ax.set_xscale("log")
        ax.set_xlabel("k")
        ax.set_ylabel("recall@k")
        ax.set_ylim(0, 1)
        ax.set_title(f"{target}: recall at depth k", fontsize=9)
        ax.legend(fontsize=7)
    return _save(fig, path)


def _model_of(ws: Workspace, ev: Artifact) -> Artifact | None:
    index = ws.inputs_of(ev).get("index")
    return ws.inputs_of(index).get("model") if index is not None else None


def loss_curves(ws: Workspace, table: pd.DataFrame, evaluations: dict[str, Artifact], path: Path) -> Path | None:
    """Training loss per step of every trained bi-encoder behind the systems."""
    plt = _pyplot()
    curves = {}
    for _, row in table.drop_duplicates(["system", "target"]).iterrows():
        model = _model_of(ws, _first(evaluations, row["evaluation"]))
        if model is None or not (model.path / "training_log.jsonl").is_file():
            continue
        points = [(r["step"], r["loss"]) for r in training_log(model) if "loss" in r]
        if points:
            curves[row["system"]] = points
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for label, points in curves.items():
        steps, losses = zip(*points)
        window = max(1, len(losses) // 20)  # a light moving average; raw values stay in the log
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, label=_short(label, 60), linewidth=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("Training loss (moving average)", fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, path)


def mining_stats(ws: Workspace, table: pd.DataFrame, evaluations: dict[str, Artifact], path: Path) -> Path | None:
    """Estimated false-negative rate and mean rank of the negatives behind each trained system."""
    plt = _pyplot()
    bars = {}
    for _, row in table.drop_duplicates(["system", "target"]).iterrows():
        model = _model_of(ws, _first(evaluations, row["evaluation"]))
        negatives = ws.inputs_of(model).get("negatives") if model is not None else None
        if negatives is None:
            continue
        summary = negatives.summary
        estimate = (summary.get("false_negative_estimate") or {}).get("rate")
        rank = (summary.get("rank") or {}).get("mean")
        bars[_short(f"{negatives.name}: {negatives_io.label(negatives.config)}")] = (estimate, rank)
    if not bars:
        return None
    labels = list(bars)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 0.8 + 0.45 * len(labels)))
    estimates = [v[0] if v[0] is not None else 0.0 for v in bars.values()]
    left.barh(labels, estimates, color="#c4603b")
    left.set_xlim(0, max(0.1, max(estimates) * 1.2))
    for i, (estimate, _) in enumerate(bars.values()):
        if estimate is None:
            left.text(0.002, i, "n/a (no judgments beyond positives)", va="center", fontsize=7)
    left.set_title("estimated false-negative rate", fontsize=9)
    left.invert_yaxis()
    right.barh(labels, [v[1] or 0 for v in bars.values()], color="#3b75af")
    right.set_title("mean rank of kept negatives", fontsize=9)
    right.set_yticks(range(len(labels)), [""] * len(labels))
    right.invert_yaxis()
    return _save(fig, path)
