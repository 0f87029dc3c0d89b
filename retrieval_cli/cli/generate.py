"""``retrieval-cli generate-queries``: pseudo training queries from the corpus (title or ICT)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from retrieval_cli.cli import console
from retrieval_cli.cli.options import ForceOpt, NameOpt, QuietOpt, WorkspaceOpt, workspace


def generate_queries_cli(
    dataset: Annotated[str, typer.Argument(help="Dataset reference (datasets/NAME[@VERSION] or NAME).")],
    method: Annotated[str, typer.Option(help="title: the title is the query (title → body); ict: one sentence of the passage is the query (inverse cloze, Lee et al. 2019).")] = "title",
    split: Annotated[str, typer.Option(help="Split to put the generated queries in.")] = "train",
    max_queries: Annotated[Optional[int], typer.Option(help="Sample at most this many queries (with --seed).")] = None,
    min_words: Annotated[int, typer.Option(help="Skip titles / sentences shorter than this.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed for sentence choice and sampling.")] = 13,
    name: NameOpt = None,
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Make a new dataset whose SPLIT holds pseudo-queries, each with its source document as positive."""
    from retrieval_cli import generation

    ws = workspace(workspace_path)
    source = ws.resolve(dataset, kind="datasets")
    config = generation.QueryGenConfig(method=method, split=split, max_queries=max_queries, min_words=min_words, seed=seed)
    with console.progress(quiet) as bar:
        result = generation.generate_queries(ws, source, config, name=name, force=force, progress=bar)
    console.built(result, "dataset")
    made = result.artifact.summary.get("splits", {}).get(split, {})
    console.out.print(f"{made.get('queries', 0)} {method} queries with {made.get('relevant', 0)} positives in split '{split}'", highlight=False)
