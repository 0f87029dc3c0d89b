"""``retrieval-cli report``: one table over evaluation artifacts, systems described by lineage."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from retrieval_cli.cli import console
from retrieval_cli.cli.options import ForceOpt, QuietOpt, WorkspaceOpt, workspace
from retrieval_cli.errors import InputError


def report_cli(
    evaluations: Annotated[Optional[list[str]], typer.Argument(help="Evaluation references.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Report the latest version of every evaluation.")] = False,
    name: Annotated[str, typer.Option("--name", "-n", help="Report artifact name.")] = "report",
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write a report artifact (Markdown, CSV) and print its table."""
    from retrieval_cli import reporting

    ws = workspace(workspace_path)
    if all_ and evaluations:
        raise InputError("give evaluation references or --all, not both")
    if all_:
        latest = {a.name: a for a in ws.artifacts("evaluations")}
        chosen = list(latest.values())
    else:
        chosen = [ws.resolve(ref, kind="evaluations") for ref in evaluations or []]
    with console.progress(quiet) as bar:
        result = reporting.report(ws, chosen, name=name, force=force, progress=bar)
    grid = reporting.wide(reporting.load_table(result.artifact))
    table = Table(title=f"report {result.artifact.ref}")
    table.add_column("system")
    for dataset, measure in grid.columns:
        table.add_column(f"{dataset}\n{measure}", justify="right")
    for system, row in grid.iterrows():
        table.add_row(str(system), *("" if v != v else f"{v:.4f}" for v in row.tolist()))
    console.out.print(table)
    console.built(result, "report")
    console.out.print(f"Markdown: {result.artifact.file('report.md')}", highlight=False)
