"""Running a recipe: every step (or the named ones and what they need) through the library, each
step's lock written as it finishes, so an interrupted run keeps what finished.

A full run calls the library for every step anyway, whose artifact versions make it a cache hit
when nothing changed, so the lock decides what is *shown*, never what is correct. What builds,
builds in a process of its own (``pipeline.isolation``); the lock only decides where the library
is asked first: a done step in the runner, with a workspace that may reuse but not build.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from retrieval_cli.errors import InputError
from retrieval_cli.pipeline import expect, isolation
from retrieval_cli.pipeline.dag import Step
from retrieval_cli.pipeline.locks import done, write_entry
from retrieval_cli.pipeline.plan import plan
from retrieval_cli.pipeline.recipe import Recipe
from retrieval_cli.progress import Progress, accepting_detail, silent
from retrieval_cli.store import Artifact, BuildResult, NeedsBuild, Workspace


def status(ws: Workspace, recipe: Recipe) -> list[tuple[Step, str, str]]:
    """Per step: (step, state, artifact ref). State: done (hash matches the lock and the artifact
    exists), changed (its spec or an input changed since the lock), missing (never run or gone).
    Only reads manifests: checksums are checked when a step uses an artifact, not to list it."""
    listing = dataclasses.replace(ws, verify_reads="none")
    return [(step, *done(listing, recipe, step)[:2]) for step in plan(recipe)]


def check_reads(recipe: Recipe, steps: list[Step] | None = None) -> None:
    """Every file and folder the recipe imports exists (before any work): one line naming the
    recipe, the field and the path, which is relative to the recipe file. ``steps``: the recipe's
    plan when the caller has made it."""
    missing = [(where, path) for step in (steps or plan(recipe)) for where, path in step.reads if not path.exists()]
    if missing:
        where, path = missing[0]
        more = f" ({len(missing) - 1} more paths missing)" if len(missing) > 1 else ""
        raise InputError(f"{recipe.path}: {where}: no such file or folder {path} (paths are relative to the recipe file){more}")


def run(
    ws: Workspace,
    recipe: Recipe,
    *,
    steps: list[str] | None = None,
    progress: Progress = silent,
    on_step: Callable[[Step, str, Artifact | None], None] | None = None,
    isolate: bool = True,
) -> dict[str, Artifact]:
    """Run the recipe; returns step name -> artifact. ``on_step(step, state, artifact)`` hears
    ``start`` and then ``reused`` or ``built`` for each step it runs; each step's lock is written
    when it finishes, so an interrupted run keeps what finished.

    ``isolate`` (the default) builds each step in a process of its own (``pipeline.isolation``):
    a step that dies is one line naming it, and one step's JVM never lives in another's process.

    ``steps`` runs only those steps (make's targets): their inputs come from the locks when done,
    and are run first otherwise."""
    planned = plan(recipe)
    check_reads(recipe, planned)
    progress = accepting_detail(progress)
    by_name = {s.name: s for s in planned}
    wanted = set(by_name)
    if steps is not None:
        unknown = [s for s in steps if s not in by_name]
        if unknown:
            raise InputError(f"{recipe.path}: no step '{unknown[0]}' (steps: {', '.join(by_name)})")
        wanted = set()
        todo = list(steps)
        while todo:  # the named steps and, for inputs not done, what they need
            name = todo.pop()
            if name in wanted:
                continue
            wanted.add(name)
            for dep in by_name[name].deps:
                if dep not in wanted and done(ws, recipe, by_name[dep])[0] != "done":
                    todo.append(dep)
    made: dict[str, Artifact] = {}
    built: set[str] = set()  # steps that built this run: what depends on them is not probed in-process
    ordered = [s for s in planned if s.name in wanted]
    for index, step in enumerate(ordered):
        for dep in step.deps:
            if dep not in made:
                state, _, artifact = done(ws, recipe, by_name[dep])
                if artifact is None:  # it was done when planned; something removed it since
                    raise InputError(f"{recipe.path}: step {step.name} needs {dep}, which is {state}: run it first")
                made[dep] = artifact
        if on_step:
            on_step(step, "start", None)
        given = {d: made[d] for d in step.deps}
        result = _make(ws, recipe, step, given, isolate, probe=not built.intersection(step.deps), progress=progress)
        if not result.reused:
            built.add(step.name)
        artifact = made[step.name] = result.artifact
        write_entry(ws, recipe, step, artifact, touch=steps is not None)
        if on_step:
            on_step(step, "reused" if result.reused else "built", artifact)
        progress("pipeline", index + 1, len(ordered))
    return made


def _make(ws: Workspace, recipe: Recipe, step: Step, given: dict[str, Artifact], isolate: bool, *, probe: bool,
          progress: Progress = silent) -> BuildResult:
    """One step's artifact. Isolated, a step whose lock says done (``probe``: and whose inputs were
    reused) is asked here with a reuse-only workspace, which is a cache hit or NeedsBuild before any
    work (an unchanged rerun starts no process); anything that builds runs in its own process.
    ``progress`` hears the step's own stages (encoding, training steps), from its process too."""
    if not isolate:
        return step.make(ws, given, progress=progress)
    if probe and done(ws, recipe, step)[0] == "done":
        try:
            return step.make(dataclasses.replace(ws, reuse_only=True), given)
        except NeedsBuild:
            pass  # something behind the step changed (a source file, a model): build it
    return isolation.run_step(recipe, step.name, ws, given, progress)


def expectation(recipe: Recipe) -> expect.Expectation | None:
    """The recipe's expected values (``report.expect``), if it states any."""
    return expect.from_recipe(recipe.path, dict(recipe.sections.get("report") or {}))


def check(ws: Workspace, recipe: Recipe, report: Artifact | None = None) -> tuple[expect.Expectation, list[expect.Cell]]:
    """Each expected cell's verdict against the recipe's report (the one its lock names, unless
    given); an InputError when the recipe states no expectations or its report was not made."""
    wanted = expectation(recipe)
    if wanted is None:
        raise InputError(f"{recipe.path}: report.expect: the recipe states no expected values")
    from retrieval_cli.report import load_table

    return wanted, expect.compare(load_table(report or report_of(ws, recipe)), wanted)


def report_of(ws: Workspace, recipe: Recipe) -> Artifact:
    """The report the recipe's lock names, when that step is done."""
    step = next(s for s in plan(recipe) if s.name == "report")
    state, _, report = done(ws, recipe, step)
    if report is None:
        raise InputError(f"{recipe.path}: the report step is {state}: run the recipe first")
    return report
