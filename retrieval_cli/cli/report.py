"""``retrieval-cli report``: one table over evaluation artifacts, systems described by lineage."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from retrieval_cli.cli import console
from retrieval_cli.cli.options import ForceOpt, QuietOpt, WorkspaceOpt, workspace
from retrieval_cli.errors import InputError


def report_cli(
    evaluations: Annotated[Optional[list[str]], typer.Argument(help="Evaluation references.")] = None,
    all_: Annotated[bool, typer.Option("--all", metavar="", help="Report every evaluation: each ranking once, with every measure any of its evaluations scored; name versions (NAME@VERSION) to choose.")] = False,
    baseline: Annotated[Optional[list[str]], typer.Option(help="Evaluation the others are compared with (deltas, paired tests); repeat it for one baseline per target (dataset and split), so one report compares two systems on every target.")] = None,
    test: Annotated[str, typer.Option(help="Paired test per query: t, randomization (seeded) or wilcoxon.")] = "t",
    correction: Annotated[str, typer.Option(help="Multiple-comparison correction: holm, bonferroni or none.")] = "holm",
    alpha: Annotated[float, typer.Option(help="Significance level for the * marks.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of the randomization test.")] = 13,
    resamples: Annotated[int, typer.Option(help="Resamples of the randomization test.")] = 10_000,
    name: Annotated[str, typer.Option("--name", "-n", help="Report artifact name.")] = "report",
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write a report artifact (Markdown, HTML, CSV, JSON, plots) and print its table."""
    from retrieval_cli.report import reporting

    ws = workspace(workspace_path)
    if all_ and evaluations:
        raise InputError("give evaluation references or --all, not both")
    if all_:
        chosen, left_out = reporting.every_evaluation(ws)
        for line in left_out:
            console.err.print(f"[yellow]left out[/] {line}", highlight=False, soft_wrap=True)
    else:
        chosen = [ws.resolve(ref, kind="evaluations") for ref in evaluations or []]
    first, *others = baseline or [None]
    per_target = [ws.resolve(ref, kind="evaluations") for ref in others]
    config = reporting.ReportConfig(baseline=first, test=test, correction=correction, alpha=alpha, seed=seed, resamples=resamples)
    with console.progress(quiet) as bar:
        result = reporting.report(ws, chosen, config, name=name, baselines=per_target, force=force, progress=bar)
    console.comparison(result.artifact, f"report {result.artifact.ref}")
    console.built(result, "report")
    console.out.print(f"Markdown: {result.artifact.file('report.md')}", highlight=False)
    console.out.print(f"HTML:     {result.artifact.file('report.html')}", highlight=False)
