"""One report's table drawn as text: the cells (value, ± over seeds, delta and * marks), the wide
grid, the legend, Markdown and a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from retrieval_cli.report.config import ReportConfig

FORMS = ("full", "compact", "marks")


def cell(row: pd.Series, form: str = "full") -> str:
    """One table cell: the value (± sd over seeds), and against a baseline the delta with * when
    significant. For a terminal, ``compact`` drops the ± and the parentheses, and ``marks`` (the
    narrowest) keeps only the value and ▲ / ▼ where it is significantly better / worse."""
    if pd.isna(row["value"]):
        return ""
    text = f"{row['value']:.4f}"
    has_delta = "delta" in row and not pd.isna(row["delta"])
    if form == "marks":
        return text + (("▲" if row["delta"] > 0 else "▼") if has_delta and row["significant"] else "")
    if form == "compact":
        return text + (f" {row['delta']:+.4f}{'*' if row['significant'] else ''}" if has_delta else "")
    if row.get("seeds", 0) and row["seeds"] > 1 and not pd.isna(row.get("sd")):
        text += f"±{row['sd']:.4f}"
    if has_delta:
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


def cells(table: pd.DataFrame, form: str = "full") -> pd.DataFrame:
    """The wide grid of formatted cells (values, deltas and marks)."""
    texts = table.assign(value=table.apply(lambda row: cell(row, form), axis=1))
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
    text = (f"Baseline: {base}. (delta) against it; * = p < {config.alpha} by {names[config.test]}, "
            f"{config.correction} correction over the systems compared per dataset and measure.")
    seeds = int(table["seeds"].max()) if "seeds" in table and table["seeds"].notna().any() else 0
    if seeds > 1:
        text += (f" Trained systems: mean±sd over {seeds} training seeds; their tests pair per-query scores averaged over"
                 " the seeds, and 'seeds better' counts the seeds whose value beats the baseline's.")
    if (table["dataset"] == "mean").any():
        text += (" mean: the average over the targets; its test pairs the per-target values, and W/T/L counts the"
                 " targets where the system is significantly better / not different / significantly worse.")
    return text


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
            lines += ["", "| system | dataset | measure | delta | p | p adjusted | improved | hurt | seeds better | W/T/L |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            for _, r in tested.iterrows():
                lines.append(f"| {r['system']} | {r['dataset']} | {r['measure']} | {r['delta']:+.4f} | {r['p']:.4g} | "
                             f"{r['p_adjusted']:.4g}{'*' if r['significant'] else ''} | {_count(r.get('improved'))} | "
                             f"{_count(r.get('hurt'))} | {_count(r.get('seeds_better'))} | {_wtl(r)} |")
    return "\n".join(lines) + "\n"


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


def _count(value: object) -> str:
    return "" if value is None or pd.isna(value) else str(int(value))


def _wtl(row: pd.Series) -> str:
    if "wins" not in row or pd.isna(row.get("wins")):
        return ""
    return f"{int(row['wins'])}/{int(row['ties'])}/{int(row['losses'])}"
