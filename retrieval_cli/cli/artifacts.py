"""``retrieval-cli artifacts``: see and check what the workspace holds."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from rich.tree import Tree

from retrieval_cli.cli import console
from retrieval_cli.cli.options import JsonOpt, WorkspaceOpt, existing, workspace
from retrieval_cli.errors import ArtifactError
from retrieval_cli.store import differences, settings_line

app = typer.Typer(no_args_is_help=True, help="List, show, trace and verify artifacts.")


@app.command("list")
def list_cli(
    kind: Annotated[Optional[str], typer.Argument(help="Only this kind (datasets, indexes, ...).")] = None,
    workspace_path: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List finished artifacts, oldest first; damaged ones (unreadable manifests) after them."""
    ws = existing(workspace(workspace_path))
    found, damaged = ws.scan(kind)
    if as_json:
        rows = [{"ref": a.ref, "created": a.manifest.get("created"), "path": str(a.path)} for a in found]
        rows += [{"ref": f"{f.parent.parent.name}/{f.parent.name}@{f.name}", "damaged": why, "path": str(f)} for f, why in damaged]
        console.out.print_json(json.dumps(rows))
        return
    # Names stay whole (the kind and the date give way first); a name with several versions
    # says, per version, which fields differ from the one before it.
    longest = max([len("name"), *(len(a.name) for a in found)])
    table = Table()
    table.add_column("kind", no_wrap=True, overflow="ellipsis", max_width=11)
    table.add_column("name", no_wrap=True, min_width=min(longest, 48))
    table.add_column("version", no_wrap=True, min_width=12)
    table.add_column("created", no_wrap=True, overflow="ellipsis", max_width=11)
    notes = []
    previous: dict[tuple[str, str], Any] = {}
    for a in found:
        before = previous.get((a.kind, a.name))
        if before is not None:
            fields = ", ".join(k for k, _, _ in differences(before, a))
            notes.append(f"{a.kind}/{a.name}@{a.version[:6]} differs from @{before.version[:6]} in: {fields}")
        previous[(a.kind, a.name)] = a
        table.add_row(a.kind, a.name, a.version, a.manifest.get("created", "")[5:16].replace("T", " "))
    for folder, _why in damaged:
        table.add_row(folder.parent.parent.name, folder.parent.name, folder.name, "[red]damaged[/]", "")
    console.out.print(table)
    for note in notes:  # one name, several versions: what sets them apart (`artifacts diff A B` in full)
        console.out.print(f"[dim]{note}[/]", highlight=False, soft_wrap=True)
    if damaged:
        console.err.print(
            f"{len(damaged)} damaged (unreadable manifest): rebuild with --force, or `artifacts gc --damaged` removes them",
            highlight=False,
        )


@app.command("show")
def show_cli(ref: Annotated[str, typer.Argument(help="Artifact reference or path.")], workspace_path: WorkspaceOpt = None) -> None:
    """Print an artifact's manifest."""
    artifact = workspace(workspace_path).resolve(ref)
    console.out.print_json(json.dumps(artifact.manifest))


def _settings(config: dict[str, Any], depth: int) -> str:
    """A node's settings line as wide as the terminal leaves it (a tree level indents by 4): in a
    wide terminal nothing is cut, so the seed and every other short setting shows."""
    return settings_line(config, width=max(70, console.out.width - 4 * depth - 4))


def _tree(node: dict[str, Any], tree: Tree, depth: int = 1) -> None:
    for role, child in node["inputs"].items():
        gone = f" [red]({child['missing']})[/]" if child.get("missing") else ""
        settings = _settings(child.get("config", {}), depth)
        _tree(child, tree.add(f"[dim]{role}:[/] {child['ref']}{gone}" + (f"\n[dim]{settings}[/]" if settings else "")), depth + 1)


@app.command("lineage")
def lineage_cli(
    ref: Annotated[str, typer.Argument(help="Artifact reference or path.")],
    workspace_path: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the chain of artifacts an artifact was made from."""
    ws = workspace(workspace_path)
    lineage = ws.lineage(ws.resolve(ref))
    if as_json:
        console.out.print_json(json.dumps(lineage))
        return
    settings = _settings(lineage["config"], 0)
    tree = Tree(lineage["ref"] + (f"\n[dim]{settings}[/]" if settings else ""))
    _tree(lineage, tree)
    console.out.print(tree)


@app.command("diff")
def diff_cli(
    first: Annotated[str, typer.Argument(help="Artifact reference (KIND/NAME@VERSION).")],
    second: Annotated[str, typer.Argument(help="Artifact reference to compare with.")],
    workspace_path: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the config fields and inputs that differ between two artifacts."""
    ws = workspace(workspace_path)
    a, b = ws.resolve(first), ws.resolve(second)
    rows = differences(a, b)
    if as_json:
        console.out.print_json(json.dumps([{"field": k, "first": x, "second": y} for k, x, y in rows], default=str))
        return
    if not rows:
        console.out.print(f"{a.ref} and {b.ref} have the same config and inputs", highlight=False)
        return
    table = Table("field", a.ref, b.ref)
    for key, x, y in rows:
        table.add_row(key, json.dumps(x, default=str), json.dumps(y, default=str))
    console.out.print(table)


@app.command("verify")
def verify_cli(ref: Annotated[str, typer.Argument(help="Artifact reference or path.")], workspace_path: WorkspaceOpt = None) -> None:
    """Recompute payload checksums; exit 2 when any file is missing or changed."""
    ws = workspace(workspace_path)
    ws.verify_reads = "none"  # resolve it as it is; verify below reports every problem
    artifact = ws.resolve(ref)
    problems = ws.verify(artifact)
    if problems:
        raise ArtifactError(f"{artifact.ref} failed verification: " + "; ".join(problems))
    console.out.print(f"{artifact.ref}: {len(artifact.manifest['files'])} files verified", highlight=False)


@app.command("gc")
def gc_cli(
    dry_run: Annotated[bool, typer.Option("--dry-run", metavar="", help="List what would go; remove nothing.")] = False,
    damaged: Annotated[bool, typer.Option("--damaged", metavar="", help="Also remove versions whose manifest cannot be read.")] = False,
    workspace_path: WorkspaceOpt = None,
) -> None:
    """Remove versions nothing refers to, and temporary folders left by crashed builds.

    Kept: the latest version of each name, what pipeline locks name, and their inputs.
    """
    from retrieval_cli.pipeline import pinned
    from retrieval_cli.store import collect

    ws = existing(workspace(workspace_path))
    result = collect(ws, keep=pinned(ws), dry_run=dry_run, damaged=damaged)  # what recipes' lock files name stays
    verb = "would remove" if dry_run else "removed"
    for ref in result.versions:
        console.out.print(f"{verb} {ref}", highlight=False)
    for folder in result.damaged:
        console.out.print(f"{verb if damaged else 'kept'} damaged {folder}", highlight=False)
    for name in result.temporary:
        console.out.print(f"{verb} temporary {name}", highlight=False)
    console.out.print(
        f"{verb} {len(result.versions)} versions and {len(result.temporary)} temporary folders, "
        f"{result.bytes / 1e6:.1f} MB", highlight=False,
    )
