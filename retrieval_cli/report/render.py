"""One report's table drawn as text: the cells (value, ± over seeds, delta and * marks), the wide
grid, the legend, Markdown and a self-contained HTML page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from retrieval_cli.report.config import ReportConfig
from retrieval_cli.report.table import aggregates

FORMS = ("full", "compact", "marks")


def short_labels(systems: list[str], width: int = 20) -> dict[str, str]:
    """A short, unique label per system: a trained model's name (before its ':'), else the label
    cut to ``width``; numbered where two would look alike."""
    out: dict[str, str] = {}
    for system in systems:
        head = system.split(":", 1)[0] if ":" in system else system
        label = head if len(head) <= width else head[: width - 1] + "…"
        while label in out.values():
            label = f"{label[: width - 3]}#{sum(1 for v in out.values() if v.startswith(label[: width - 3])) + 1}"
        out[system] = label
    return out


def cell(row: pd.Series, form: str = "full") -> str:
    """One table cell: the value (± sd over seeds), and against a baseline the delta with * when
    significant. Narrower forms for a terminal keep the same facts shorter: ``compact`` writes sd
    and delta to three decimals without the leading zero (``0.4321±.012 +.010*``), ``marks`` (the
    narrowest) writes the value so too, keeps the sd, and puts ▲ / ▼ for a significantly better /
    worse value in place of the delta (``.4321±.012▲``)."""
    if pd.isna(row["value"]):
        return ""
    text = f"{row['value']:.4f}"
    has_delta = "delta" in row and not pd.isna(row["delta"])
    seeded = bool(row.get("seeds", 0)) and row["seeds"] > 1 and not pd.isna(row.get("sd"))
    if form != "full":
        text = _bare(row["value"], ".4f") if form == "marks" else text
        text += f"±{_bare(row['sd'], '.3f')}" if seeded else ""
        if form == "marks":
            return text + (("▲" if row["delta"] > 0 else "▼") if has_delta and row["significant"] else "")
        return text + (f" {_bare(row['delta'], '+.3f')}{'*' if row['significant'] else ''}" if has_delta else "")
    if seeded:
        text += f"±{row['sd']:.4f}"
    if has_delta:
        text += f" ({row['delta']:+.4f}{'*' if row['significant'] else ''})"
    elif row.get("baseline") is True:
        text += " (base)"
    return text


def _bare(value: float, spec: str) -> str:
    """A number below 1 without its leading zero (``.012``, ``+.010``, ``-.003``)."""
    return format(value, spec).replace("0.", ".", 1) if abs(value) < 1 else format(value, spec)


def wide(table: pd.DataFrame) -> pd.DataFrame:
    """Systems as rows, (target, measure) as columns, in first-seen order (a target is a dataset
    and split: ``report.table.with_targets``)."""
    return _grid(table, table)


def cells(table: pd.DataFrame, form: str = "full") -> pd.DataFrame:
    """The wide grid of formatted cells (values, deltas and marks)."""
    return _grid(table, table.assign(value=table.apply(lambda row: cell(row, form), axis=1))).fillna("")


def _grid(table: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    columns = list(dict.fromkeys(zip(table["target"], table["measure"])))
    systems = list(dict.fromkeys(table["system"]))
    pivot = values.pivot_table(index="system", columns=["target", "measure"], values="value", aggfunc="first")
    return pivot.reindex(index=systems, columns=pd.MultiIndex.from_tuples(columns, names=["target", "measure"]))


def legend(config: ReportConfig, table: pd.DataFrame) -> str:
    """What the marks in a compared table mean."""
    if "delta" not in table:
        return ""
    names = {"t": "paired t-test", "randomization": f"paired randomization test ({config.resamples} resamples, seed {config.seed})", "wilcoxon": "Wilcoxon signed-rank test"}
    base = table.loc[table["baseline"], "system"].iloc[0]
    on = ", ".join(dict.fromkeys(table.loc[table["baseline"] & ~aggregates(table), "target"]))
    text = (f"Baseline: {base} (on {on}). (delta) against it, on the targets it was evaluated on; * = p < {config.alpha} by {names[config.test]}, "
            f"{config.correction} correction over the systems compared per target and measure.")
    seeds = int(table["seeds"].max()) if "seeds" in table and table["seeds"].notna().any() else 0
    if seeds > 1:
        text += (f" Trained systems: mean±sd over {seeds} training seeds; their tests pair per-query scores averaged over"
                 " the seeds, and 'seeds better' counts the seeds whose value beats the baseline's.")
    if aggregates(table).any():
        text += (" mean: the average over the targets (SUITE-mean: over a suite's datasets); its test pairs the per-target values, and W/T/L counts the"
                 " targets where the system is significantly better / not different / significantly worse.")
    return text


def best_cells(table: pd.DataFrame) -> set[tuple[str, str, str]]:
    """(system, target, measure) of the best value in each column (the highest; diagnostics such
    as Judged@10 are not ranked)."""
    from retrieval_cli.evaluate import ALWAYS

    ranked = table[~table["measure"].isin(ALWAYS) & table["value"].notna()]
    top = ranked.groupby(["target", "measure"])["value"].transform("max")
    best = ranked[ranked["value"] >= top - 1e-12]  # ties are all best
    return {(r["system"], r["target"], r["measure"]) for _, r in best.iterrows()}


@dataclass
class Sheet:
    """The report's tables as text, once, so Markdown and HTML show the same values the same way."""

    header: list[str]
    rows: list[list[str]]
    bold: set[tuple[int, int]]  # (row, column) of the best value per column
    note: str
    tests_header: list[str]
    tests: list[list[str]]
    sources: list[tuple[str, str]]  # (system, the evaluations behind its row)
    key: list[tuple[str, str]]  # (short label, system) where a label is shorter than its system


@dataclass(frozen=True)
class Column:
    """One column of the tests table: its header and how a compared row of the long table shows
    in it. Declared once here (``TEST_COLUMNS``), so Markdown and HTML show the same columns in
    the same order; a new column is one entry (and, if new, its value computed by ``compare``)."""

    header: str
    cell: Callable[[pd.Series], str]


def _count(value: object) -> str:
    return "" if value is None or pd.isna(value) else str(int(value))


def _wtl(row: pd.Series) -> str:
    if "wins" not in row or pd.isna(row.get("wins")):
        return ""
    return f"{int(row['wins'])}/{int(row['ties'])}/{int(row['losses'])}"


TEST_COLUMNS = (
    Column("system", lambda r: str(r["system"])),
    Column("target", lambda r: str(r["target"])),
    Column("measure", lambda r: str(r["measure"])),
    Column("delta", lambda r: f"{r['delta']:+.4f}"),
    Column("p", lambda r: f"{r['p']:.3g}"),
    Column("p adjusted", lambda r: f"{r['p_adjusted']:.3g}{'*' if r['significant'] else ''}"),
    Column("improved", lambda r: _count(r.get("improved"))),
    Column("hurt", lambda r: _count(r.get("hurt"))),
    Column("seeds better", lambda r: _count(r.get("seeds_better"))),
    Column("W/T/L", _wtl),  # the mean rows: targets significantly better / not different / worse
)
TESTS_HEADER = [c.header for c in TEST_COLUMNS]


def sheet(table: pd.DataFrame, config: ReportConfig | None = None) -> Sheet:
    """Format the long table once: signed deltas, * where significant, p-values to 3 significant
    digits, the best value per column marked."""
    grid = cells(table)
    best = best_cells(table)
    columns = list(grid.columns)
    bold = {(i, j + 1) for i, system in enumerate(grid.index) for j, (d, m) in enumerate(columns) if (system, d, m) in best}
    note = legend(config or ReportConfig(), table)
    tests = []
    if note and "p" in table:
        tests = [[column.cell(r) for column in TEST_COLUMNS] for _, r in table[table["p"].notna()].iterrows()]
    sources = []
    if "refs" in table:
        for system, rows in table.groupby("system", sort=False):
            refs = dict.fromkeys(ref for every in rows["refs"].dropna() for ref in str(every).split(","))
            sources.append((str(system), ", ".join(refs)))
    # A page shows systems by short labels, so a row stays narrow; the key gives each in full.
    key = [(label, system) for system, label in short_labels([str(s) for s in grid.index]).items() if label != system]
    return Sheet(["system"] + [f"{d} {m}" for d, m in columns], [[str(s), *row.tolist()] for s, row in grid.iterrows()],
                 bold, note, TESTS_HEADER if tests else [], tests, sources, key)


def to_markdown(table: pd.DataFrame, config: ReportConfig | None = None) -> str:
    """The report as Markdown: the table (best per column in bold), the legend, the tests, and the
    artifacts behind each row."""
    s = sheet(table, config)

    def row(cells: list[str], i: int | None = None) -> str:
        return "| " + " | ".join(f"**{c}**" if i is not None and (i, j) in s.bold and c else c for j, c in enumerate(cells)) + " |"

    lines = [row(s.header), "|" + "---|" * len(s.header), *(row(r, i) for i, r in enumerate(s.rows))]
    if s.note:
        lines += ["", s.note + " Bold: the best value in its column."]
    if s.tests:
        lines += ["", row(s.tests_header), "|" + "---|" * len(s.tests_header), *(row(r) for r in s.tests)]
    if s.sources:
        lines += ["", "Artifacts behind each row:", ""] + [f"- {system}: {refs}" for system, refs in s.sources]
    return "\n".join(lines) + "\n"


def to_html(table: pd.DataFrame, config: ReportConfig, pictures: dict[str, Path]) -> str:
    """A self-contained page with what the Markdown holds (the same cells, marks and bold), and
    every plot inlined as PNG data."""
    import base64
    import html

    s = sheet(table, config)

    def html_table(header: list[str], rows: list[list[str]], bold: set[tuple[int, int]] = frozenset()) -> str:  # type: ignore[assignment]
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{'<b>' if (i, j) in bold and c else ''}{html.escape(c)}{'</b>' if (i, j) in bold and c else ''}</td>"
                             for j, c in enumerate(r)) + "</tr>"
            for i, r in enumerate(rows)
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    # The page fits its window: systems by short labels (the key below gives each in full), the
    # grid scrolling inside its own box when it is wider, plots scaled down to the page's width.
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
        "<title>retrieval-cli report</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:100%}table{border-collapse:collapse;margin-bottom:1em}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}td:first-child,th:first-child{text-align:left}"
        ".key td{white-space:normal;text-align:left}th{background:#f3f3f3}.scroll{overflow-x:auto;max-width:100%}"
        "img{max-width:100%;height:auto}code{word-break:break-all}</style>",
        "</head><body><h1>retrieval-cli report</h1>",
        f"<div class='scroll'>{html_table(s.header, _labelled(s.rows, s.key), s.bold)}</div>",
    ]
    if s.key:
        parts.append(f"<div class='scroll key'>{html_table(['label', 'system'], [list(k) for k in s.key])}</div>")
    if s.note:
        parts.append(f"<p>{html.escape(s.note)} Bold: the best value in its column.</p>")
    if s.tests:
        parts.append(f"<div class='scroll'>{html_table(s.tests_header, _labelled(s.tests, s.key))}</div>")
    if s.sources:
        parts.append("<h2>Artifacts behind each row</h2><ul>" + "".join(
            f"<li>{html.escape(system)}: <code>{html.escape(refs)}</code></li>" for system, refs in s.sources) + "</ul>")
    for name, path in pictures.items():
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _labelled(rows: list[list[str]], key: list[tuple[str, str]]) -> list[list[str]]:
    """``rows`` with each system (the first cell) by its short label."""
    short = {system: label for label, system in key}
    return [[short.get(r[0], r[0]), *r[1:]] for r in rows]
