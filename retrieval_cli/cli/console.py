"""What the CLI owns and the library never touches: the terminal, progress bars, error lines."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    import pandas as pd

    from retrieval_cli.store import Artifact, BuildResult, ShardResult

out = Console()
err = Console(stderr=True)


class RichProgress:
    """A ``retrieval_cli.progress.Progress`` callback drawing one rich bar per stage."""

    def __init__(self, bars: Progress | None) -> None:
        self._bars = bars
        self._tasks: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int | None, *, detail: str = "") -> None:
        if self._bars is None:
            return
        if stage not in self._tasks:
            self._tasks[stage] = self._bars.add_task(stage, total=total, detail=detail)
        self._bars.update(self._tasks[stage], completed=done, total=total, detail=detail)

    def clear(self, keep: tuple[str, ...] = ()) -> None:
        """Drop every bar but ``keep``'s (a pipeline's own bar stays while each step draws its stages)."""
        if self._bars is None:
            return
        for stage in [s for s in self._tasks if s not in keep]:
            self._bars.remove_task(self._tasks.pop(stage))


@contextmanager
def progress(quiet: bool) -> Iterator[RichProgress]:
    """Progress bars on a terminal; nothing with --quiet or when stderr is not a TTY."""
    if quiet or not err.is_terminal:
        yield RichProgress(None)
        return
    bars = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[detail]}"), console=err, transient=True,
    )
    with bars:
        yield RichProgress(bars)


def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)


def built(result: BuildResult, what: str) -> None:
    """Say which artifact a command produced, and whether it was reused from the cache."""
    state = "reused" if result.reused else "wrote"
    err.print(f"{state} {what} {result.artifact.ref}  ({result.artifact.path})", highlight=False)


def warnings(summary: dict) -> None:
    """The warnings an artifact's manifest carries, one line each on stderr."""
    for warning in summary.get("warnings", []):
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)


def shard_done(part: "ShardResult", items: str, then: str) -> None:
    """Say what one --shard run did, and what to run next."""
    if part.artifact_exists:
        state = "the artifact already exists"
    else:
        state = f"{part.items} {items} in {part.units} units, {part.computed} computed now ({part.where})"
    err.print(f"shard {part.shard}: {state}; run the command without --shard to {then}", highlight=False)


def comparison(report: "Artifact", title: str) -> None:
    """Print a report artifact's table (one row per system, one column per dataset and measure)
    and its legend: the one place the CLI draws the comparison, for `report` and `pipeline run`.
    Systems get short labels (the model's name, or the retriever's first words) and a key below,
    and a grid too wide for the terminal is split per measure (then narrowed to ▲/▼ marks), so a
    row stays one line at 80 columns; the report files keep the full lineage and every delta."""
    from retrieval_cli.report import load_table
    from retrieval_cli.report.render import short_labels

    table = load_table(report)
    short = short_labels([str(s) for s in dict.fromkeys(table["system"])])
    drawn, marked = comparison_tables(table, short, title, out.width)
    for part in drawn:
        out.print(part)
    for system, label in short.items():
        if label != system:
            out.print(f"[dim]{label}[/] = {system}", highlight=False, soft_wrap=True)
    if marked:
        out.print("▲ / ▼ = significantly better / worse than the baseline (deltas in the report files)", highlight=False)
    if report.summary.get("legend"):
        out.print(report.summary["legend"], highlight=False)


def comparison_tables(table: "pd.DataFrame", short: dict[str, str], title: str, width: int) -> tuple[list[Any], bool]:
    """The rich tables ``comparison`` prints at ``width`` columns, and whether ▲/▼ marks are used."""
    from rich.table import Table

    grids = terminal_grids(table, short, width)
    drawn = []
    for measure, grid in grids:
        headers = [d if measure else f"{d}\n{m}" for d, m in grid.columns]
        part = Table(title=f"{title} · {measure}" if measure else title)
        part.add_column("system", no_wrap=True)  # a system is one line, as the width was chosen for
        for header in headers:
            part.add_column(header)
        for system, row in grid.iterrows():
            part.add_row(short[str(system)], *row.tolist())
        drawn.append(part)
    return drawn, any("▲" in v or "▼" in v for _, g in grids for v in g.to_numpy().ravel())


def terminal_grids(table: "pd.DataFrame", short: dict[str, str], width: int) -> list[tuple[str, "pd.DataFrame"]]:
    """(measure or "", grid) to print so that every system stays on one line within ``width``
    columns: the whole grid as the report files write it, else shorter (``compact``), else one grid
    per measure, else ▲/▼ marks in place of deltas (the narrowest; printed even if it still
    overflows). Every form keeps the ± over seeds and the significance the legend speaks of."""
    from retrieval_cli.report import cells

    label = max([len("system"), *map(len, short.values())])

    def fits(grid: "pd.DataFrame", split: bool) -> bool:
        # rich's default box: one border column, then each column's text with a space either side and a border.
        heads = [(d,) if split else (d, m) for d, m in grid.columns]
        widths = [max([*map(len, head), *(len(str(v)) for v in grid[c])]) for head, c in zip(heads, grid.columns)]
        return 1 + label + 3 + sum(w + 3 for w in widths) <= width

    def per_measure(grid: "pd.DataFrame") -> list[tuple[str, "pd.DataFrame"]]:
        measures = list(dict.fromkeys(m for _, m in grid.columns))
        return [(m, grid.loc[:, [c for c in grid.columns if c[1] == m]]) for m in measures]

    if fits(whole := cells(table, "full"), split=False):
        return [("", whole)]
    for form in ("compact", "marks"):
        grid = cells(table, form)
        if fits(grid, split=False):
            return [("", grid)]
        parts = per_measure(grid)
        if len(parts) > 1 and all(fits(g, split=True) for _, g in parts):
            return parts
    return parts


def short_labels(systems: list[str], width: int = 20) -> dict[str, str]:
    """The report's short labels (``report.render.short_labels``), for the terminal's tables."""
    from retrieval_cli.report.render import short_labels as labels

    return labels(systems, width)
