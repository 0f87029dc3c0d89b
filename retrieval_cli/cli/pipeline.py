"""``retrieval-cli pipeline``: run a recipe's comparison DAG, or show which steps are done."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from retrieval_cli.cli import console
from retrieval_cli.cli.options import QuietOpt, WorkspaceOpt, workspace
from retrieval_cli.errors import InputError

app = typer.Typer(no_args_is_help=True, help="Run recipes: dataset -> negatives -> models -> evaluations -> report.")

RecipeArg = Annotated[Path, typer.Argument(metavar="RECIPE", help="Recipe file (recipes/*.yaml).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a recipe field: SECTION.FIELD=VALUE (YAML), e.g. dataset.beir=data/beir/nfcorpus; repeatable.")]


def _load(recipe_path: Path, overrides: list[str] | None):  # noqa: ANN202
    from retrieval_cli import pipeline

    return pipeline.load(recipe_path, pipeline.parse_overrides(overrides or []))


def _status_table(rows: list[tuple[str, str, str, str]], title: str) -> Table:
    """Steps, their kinds, states and artifacts; a long name or reference folds onto more lines,
    never cut with an ellipsis, so it can be read (and copied) whole at 80 columns."""
    table = Table(title=title)
    for header in ("step", "kind", "state", "artifact"):
        table.add_column(header, overflow="fold")
    colours = {"done": "green", "reused": "green", "built": "cyan", "missing": "yellow", "changed": "yellow"}
    for step, kind, state, ref in rows:
        table.add_row(step, kind, f"[{colours.get(state, 'white')}]{state}[/]", ref)
    return table


@app.command("status")
def status_cli(recipe_path: RecipeArg, overrides: SetOpt = None, workspace_path: WorkspaceOpt = None) -> None:
    """Each step's state from the recipe's lock: done, changed (would rerun) or missing."""
    from retrieval_cli import pipeline

    ws = workspace(workspace_path)
    recipe = _load(recipe_path, overrides)
    rows = [(step.name, step.kind, state, ref) for step, state, ref in pipeline.status(ws, recipe)]
    console.out.print(_status_table(rows, f"recipe {recipe.name}"))
    todo = sum(1 for r in rows if r[2] != "done")
    console.out.print(f"{len(rows) - todo} of {len(rows)} steps done", highlight=False)


def _bill(ws, recipe) -> None:  # noqa: ANN001
    """``--dry-run``: each step's state and, for the steps still to run, the cost model's time and
    peak memory on the recipe's device (2 CPU cores, or one GPU for a cuda device)."""
    from retrieval_cli.pipeline import cost
    from retrieval_cli.pipeline.estimate import estimate, machine_of

    machine = machine_of(str(recipe.sections.get("device", "auto")))
    rows = estimate(ws, recipe, machine)
    table = Table(title=f"recipe {recipe.name}: the bill on {'one GPU' if machine == 'gpu' else '2 CPU cores'}")
    for header in ("step", "state", "time", "peak GB"):
        table.add_column(header, overflow="fold")
    colours = {"done": "green", "missing": "yellow", "changed": "yellow"}
    for row in rows:
        time = "" if row.state == "done" else "?" if row.seconds is None else _duration(row.seconds)
        peak = "" if row.peak_mb is None else f"{row.peak_mb / 1000:.1f}"
        table.add_row(row.step, f"[{colours.get(row.state, 'white')}]{row.state}[/]", time, peak)
    console.out.print(table)
    todo = [r for r in rows if r.state != "done"]
    priced = [r for r in todo if r.seconds is not None]
    unknown = f"; {len(todo) - len(priced)} not priced (sizes or speed unknown until earlier steps run)" if len(priced) < len(todo) else ""
    console.out.print(f"{len(rows) - len(todo)} of {len(rows)} steps done; the rest: about {_duration(sum(r.seconds for r in priced))} "
                      f"run one after another, peak {max((r.peak_mb or 0) for r in priced) / 1000 if priced else 0:.1f} GB{unknown}", highlight=False)
    console.out.print(f"cost model: {cost.provenance()}; rough beyond the measured sizes (BENCHMARKS.md, Cost model)", highlight=False, style="dim")


WORK = "work (cost-model seconds)"  # the bar whose remaining time is the cost model's, not the step count's


def _estimates(ws, recipe) -> dict[str, float | None]:  # noqa: ANN001
    """Each step still to run and the cost model's seconds for it (None: not priced); {} when the
    steps cannot be priced at all (a run never waits on its estimate)."""
    from retrieval_cli.errors import RetrievalError
    from retrieval_cli.pipeline.estimate import estimate

    try:
        return {e.step: e.seconds for e in estimate(ws, recipe) if e.state != "done"}
    except (RetrievalError, OSError, ValueError, KeyError):
        return {}


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


@app.command("run")
def run_cli(
    recipe_path: RecipeArg,
    overrides: SetOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", metavar="", help="Print the steps, which are done, and what each still to run will cost (time, peak memory); run nothing.")] = False,
    step: Annotated[Optional[list[str]], typer.Option("--step", help="Run only this step (repeatable), e.g. mine:bm25; inputs not done run first.")] = None,
    workspace_path: WorkspaceOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run every step of a recipe; unchanged steps reuse their artifacts, so edits rerun only their branch."""
    from retrieval_cli import pipeline

    ws = workspace(workspace_path)
    recipe = _load(recipe_path, overrides)
    if dry_run:
        pipeline.check_reads(recipe)  # a path that is not there: the one line, not the plan first
        _bill(ws, recipe)
        return
    rows: list[tuple[str, str, str, str]] = []
    bill = _estimates(ws, recipe)
    total = sum(v for v in bill.values() if v)
    started: dict[str, float] = {}

    with console.progress(quiet) as bar:
        def on_step(step: pipeline.Step, state: str, artifact) -> None:  # noqa: ANN001
            if state == "start":
                bar.clear(keep=("pipeline", WORK))  # the step before's stages
                started[step.name] = time.monotonic()
                expected = f" (about {_duration(bill[step.name])})" if bill.get(step.name) else ""
                console.err.print(f"[dim]step {step.name}{expected}[/]", highlight=False)
                return
            rows.append((step.name, step.kind, state, artifact.ref))
            bill.pop(step.name, None)
            if total:  # the run's progress in the cost model's seconds: its ETA weighs a training above an index
                bar(WORK, int(total - sum(v for v in bill.values() if v)), int(total))
            if state == "built":
                left = sum(v for v in bill.values() if v)
                rest = f"; about {_duration(left)} of work left by the cost model" if left else ""
                console.err.print(f"[dim]  built in {_duration(time.monotonic() - started[step.name])}{rest}[/]", highlight=False)

        made = pipeline.run(ws, recipe, steps=step, progress=bar, on_step=on_step)
    console.out.print(_status_table(rows, f"recipe {recipe.name}"))
    if "report" not in made:
        return
    report = made["report"]
    console.comparison(report, "comparison")
    if pipeline.expectation(recipe) is not None:
        _verdicts(*pipeline.check(ws, recipe, report))
    console.out.print(f"report: {report.file('report.md')} and report.html beside it", highlight=False)


def _verdicts(wanted, cells) -> None:  # noqa: ANN001
    """Print each expected cell's verdict; exit 1 (one line) on a FAIL."""
    from retrieval_cli.pipeline import expect

    colours = {expect.OK: "green", expect.OKISH: "yellow", expect.FAIL: "red"}
    short = console.short_labels(list(dict.fromkeys(c.system for c in cells)))
    for cell in cells:
        console.out.print(cell.line(short[cell.system]), style=colours[cell.verdict], highlight=False, markup=False)
    counts = {v: sum(1 for c in cells if c.verdict == v) for v in colours}
    console.out.print(", ".join(f"{n} {v}" for v, n in counts.items()) + f" (tolerance {wanted.tolerance}, okish {wanted.okish})", highlight=False)
    expect.enforce(cells, wanted)


@app.command("check")
def check_cli(
    recipe_path: RecipeArg,
    overrides: SetOpt = None,
    write: Annotated[bool, typer.Option("--write", metavar="", help="Record the report's values as the expected ones (after checking them by eye).")] = False,
    workspace_path: WorkspaceOpt = None,
) -> None:
    """Hold the recipe's report against its expected values (report.expect): OK, OKish or FAIL per
    cell, Pyserini-style; exit 1 on a FAIL."""
    from retrieval_cli import pipeline
    from retrieval_cli.pipeline import expect
    from retrieval_cli.report import load_table

    ws = workspace(workspace_path)
    recipe = _load(recipe_path, overrides)
    if write:
        wanted = pipeline.expectation(recipe)
        if wanted is None:
            raise InputError(f"{recipe.path}: report.expect: name the file the expected values go to")
        from retrieval_cli.pipeline.run import report_of

        expect.write(wanted.path, load_table(report_of(ws, recipe)))
        console.err.print(f"wrote {wanted.path}", highlight=False)
        return
    _verdicts(*pipeline.check(ws, recipe))


@app.command("makefile")
def makefile_cli(
    recipe_path: RecipeArg,
    overrides: SetOpt = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the Makefile here \\[default: stdout].")] = None,
    cli: Annotated[str, typer.Option(help="Command the Makefile runs steps with (make variable RETRIEVAL_CLI).")] = "retrieval-cli",
    workspace_path: WorkspaceOpt = None,
) -> None:
    """Write the recipe as a Makefile whose targets are the steps' lock files: `make -j` runs
    independent steps in parallel and reruns only the steps an edit changed."""
    from retrieval_cli import pipeline
    from retrieval_cli.store import atomic_write_text

    ws = workspace(workspace_path)
    text = pipeline.makefile(ws, _load(recipe_path, overrides), cli=cli, output=output)
    if output is None:
        console.out.print(text, highlight=False, markup=False, soft_wrap=True)
    else:
        atomic_write_text(output, text)
        console.err.print(f"wrote {output}", highlight=False)
