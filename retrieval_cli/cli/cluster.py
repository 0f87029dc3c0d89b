"""``retrieval-cli cluster-queries``: k-means a split's queries into topics (TAS-Balanced)."""

from __future__ import annotations

from typing import Annotated

import typer

from retrieval_cli.cli import console
from retrieval_cli.cli.options import (
    DatasetArg, DatasetOpt, DeviceOpt, ForceOpt, NameOpt, QueryPromptOpt, QuietOpt, WorkspaceOpt, dataset_ref, workspace,
)
from retrieval_cli.training.clustering import ClusterConfig

_D = ClusterConfig()  # the options' defaults are the config's


def cluster_queries_cli(
    dataset: DatasetArg = None,
    dataset_opt: DatasetOpt = None,
    split: Annotated[str, typer.Option(help="Split whose queries are clustered.")] = _D.split,
    model: Annotated[str, typer.Option(help="Bi-encoder that embeds the queries: alias (minilm), models/NAME, folder or hub id.")] = _D.model,
    k: Annotated[int, typer.Option("--k", help="Number of clusters.")] = _D.k,
    iterations: Annotated[int, typer.Option(help="k-means iterations.")] = _D.iterations,
    restarts: Annotated[int, typer.Option(help="k-means runs from different starts; the tightest is kept.")] = _D.restarts,
    seed: Annotated[int, typer.Option(help="k-means seed; same seed, same clusters.")] = _D.seed,
    examples: Annotated[int, typer.Option(help="Queries nearest each centroid kept as examples.")] = _D.examples,
    batch_size: Annotated[int, typer.Option(help="Queries embedded at once (how fast, not what).")] = _D.batch_size,
    show: Annotated[int, typer.Option(help="Largest clusters to print with their examples.")] = 5,
    query_prompt: QueryPromptOpt = _D.query_prompt,
    device: DeviceOpt = _D.device,
    name: NameOpt = None,
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Embed the queries of a split and cluster them with faiss k-means (spherical, seeded)."""
    from rich.table import Table

    from retrieval_cli.training import clustering

    ws = workspace(workspace_path)
    data = ws.resolve(dataset_ref(dataset, dataset_opt), kind="datasets")
    config = clustering.ClusterConfig(
        split=split, model=model, k=k, iterations=iterations, restarts=restarts, seed=seed, examples=examples,
        batch_size=batch_size, query_prompt=query_prompt, device=device,
    )
    with console.progress(quiet) as bar:
        result = clustering.cluster_queries(ws, data, config, name=name, force=force, progress=bar)
    console.built(result, "clusters")
    summary = result.artifact.summary
    size = summary["size"]
    console.out.print(
        f"{summary['queries']} queries in {summary['k']} clusters: size min {size['min']}, median {size['median']}, "
        f"max {size['max']}; {summary['empty_clusters']} empty",
        highlight=False,
    )
    clusters = clustering.described(result.artifact)
    table = Table("cluster", "size", "histogram", "nearest queries")
    largest = max(c["size"] for c in clusters) or 1
    for c in clusters[:show]:
        table.add_row(str(c["cluster"]), str(c["size"]), "█" * max(1, round(20 * c["size"] / largest)), " | ".join(c["examples"][:3]))
    console.out.print(table)
