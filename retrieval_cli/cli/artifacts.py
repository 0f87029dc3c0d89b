"""``retrieval-cli artifacts``: see and check what the workspace holds."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from rich.tree import Tree

from retrieval_cli.cli import console
from retrieval_cli.cli.options import JsonOpt, WorkspaceOpt, workspace
from retrieval_cli.errors import ArtifactError

app = typer.Typer(no_args_is_help=True, help="List, show, trace and verify artifacts.")


@app.command("list")
def list_cli(
    kind: Annotated[Optional[str], typer.Argument(help="Only this kind (datasets, indexes, ...).")] = None,
    workspace_path: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List finished artifacts, oldest first; damaged ones (unreadable manifests) after them."""
    ws = workspace(workspace_path)
    found, damaged = ws.scan(kind)
    if as_json:
        rows = [{"ref": a.ref, "created": a.manifest.get("created"), "path": str(a.path)} for a in found]
        rows += [{"ref": f"{f.parent.parent.name}/{f.parent.name}@{f.name}", "damaged": why, "path": str(f)} for f, why in damaged]
        console.out.print_json(json.dumps(rows))
        return
    table = Table()
    for column in ("kind", "name", "version", "created", "seconds"):
        table.add_column(column)
    for a in found:
        table.add_row(a.kind, a.name, a.version, a.manifest.get("created", "")[:19], f"{a.manifest.get('seconds', 0):.1f}")
    for folder, _why in damaged:
        table.add_row(folder.parent.parent.name, folder.parent.name, folder.name, "[red]damaged[/]", "")
    console.out.print(table)
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


def _tree(node: dict[str, Any], tree: Tree) -> None:
    for role, child in node["inputs"].items():
        gone = f" [red]({child['missing']})[/]" if child.get("missing") else ""
        _tree(child, tree.add(f"[dim]{role}:[/] {child['ref']}{gone}"))


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
    tree = Tree(lineage["ref"])
    _tree(lineage, tree)
    console.out.print(tree)


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
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go; remove nothing.")] = False,
    damaged: Annotated[bool, typer.Option("--damaged", help="Also remove versions whose manifest cannot be read.")] = False,
    workspace_path: WorkspaceOpt = None,
) -> None:
    """Remove versions nothing refers to (kept: the latest of each name, what pipeline locks name,
    and their inputs) and temporary folders left by crashed builds."""
    from retrieval_cli.pipeline import pinned
    from retrieval_cli.store import collect

    ws = workspace(workspace_path)
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
