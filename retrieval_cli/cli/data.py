"""``retrieval-cli data``: get datasets into the workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from retrieval_cli.cli import console
from retrieval_cli.cli.options import DatasetArg, DatasetOpt, ForceOpt, NameOpt, QuietOpt, WorkspaceOpt, dataset_ref, workspace

app = typer.Typer(no_args_is_help=True, help="Import, download, subset or generate datasets.")
import_app = typer.Typer(no_args_is_help=True, help="Import a dataset from files.")
app.add_typer(import_app, name="import")


def _made(quiet: bool, make) -> None:  # noqa: ANN001
    """Run ``make(progress)`` under the progress bar, then say what dataset it made."""
    with console.progress(quiet) as bar:
        result = make(bar)
    _summary(result)


def _summary(result) -> None:  # noqa: ANN001
    console.built(result, "dataset")
    stats = result.artifact.summary
    default = stats.get("relevance_level", 1)
    splits = ", ".join(
        f"{s}: {v['queries']} queries" + (f" at level {v['relevance_level']}" if v.get("relevance_level", default) != default else "")
        for s, v in stats.get("splits", {}).items()
    )
    console.out.print(f"{stats.get('documents')} documents, {stats.get('queries')} queries ({splits})", highlight=False)
    console.warnings(stats)


@import_app.command("beir")
def import_beir_cli(
    folder: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset artifact name.")],
    relevance_level: Annotated[int, typer.Option(help="Lowest grade binary measures count as relevant.")] = 1,
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Validate a BEIR folder and store it as a dataset artifact."""
    from retrieval_cli import data as datasets

    _made(quiet, lambda bar: datasets.import_beir(
        workspace(workspace_path), folder, name, relevance_level=relevance_level, force=force, progress=bar))


@import_app.command("trec-dl")
def import_trec_dl_cli(
    collection: Annotated[Path, typer.Option(help="MS MARCO collection.tsv (pid<TAB>passage).")],
    topics: Annotated[Path, typer.Option(help="Topics TSV (qid<TAB>query).")],
    qrels: Annotated[Path, typer.Option(help="TREC qrels (qid 0 docid grade).")],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset artifact name.")],
    split: Annotated[str, typer.Option(help="Split name for these qrels.")] = "test",
    relevance_level: Annotated[int, typer.Option(help="Binary relevance threshold (TREC-DL: 2, as trec_eval -l 2).")] = 2,
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Convert TREC Deep Learning files into a dataset artifact."""
    from retrieval_cli import data as datasets

    _made(quiet, lambda bar: datasets.import_trec_dl(
        workspace(workspace_path), collection, topics, qrels, name, split=split, relevance_level=relevance_level, force=force, progress=bar))


@import_app.command("msmarco")
def import_msmarco_cli(
    collection: Annotated[Path, typer.Option(help="MS MARCO collection.tsv (pid<TAB>passage), stored once.")],
    split: Annotated[list[str], typer.Option("--split", help="NAME=QUERIES.tsv,QRELS[,LEVEL] (repeatable), e.g. train=queries.train.tsv,qrels.train.tsv or dl19=msmarco-test2019-queries.tsv,2019qrels-pass.txt,2.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset artifact name.")],
    relevance_level: Annotated[int, typer.Option(help="Level of the splits that name none (MS MARCO train and dev: 1).")] = 1,
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Import MS MARCO-shaped files: one corpus and several query sets, each with its own level."""
    from retrieval_cli import data as datasets

    splits = [datasets.SplitFiles.parse(text) for text in split]
    _made(quiet, lambda bar: datasets.import_msmarco(
        workspace(workspace_path), collection, splits, name, relevance_level=relevance_level, force=force, progress=bar))


@import_app.command("irds")
def import_irds_cli(
    ids: Annotated[list[str], typer.Argument(help="ir_datasets ids over one corpus, each one split: ID[=SPLIT[,LEVEL]], e.g. "
                                                  "msmarco-passage/train/judged msmarco-passage/dev/small msmarco-passage/trec-dl-2019/judged "
                                                  "(splits train, dev, dl19; TREC-DL at level 2), or beir/scifact/train beir/scifact/test.")],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Dataset artifact name [default: the collection, e.g. msmarco-passage, beir-scifact].")] = None,
    query_field: Annotated[str, typer.Option(help="The queries' field that is the query text, where a set has several (BEIR TREC-COVID: text or query).")] = "text",
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Import datasets by their ir_datasets ids (downloaded and cached by ir_datasets): one corpus, one split per id."""
    from retrieval_cli.data import irds

    splits = [irds.IrdsSplit.parse(text) for text in ids]
    _made(quiet, lambda bar: irds.import_irds(workspace(workspace_path), splits, name, query_field=query_field, force=force, progress=bar))


@app.command("fetch")
def fetch_cli(
    dataset: Annotated[str, typer.Argument(help="Public BEIR dataset name, e.g. scifact.")],
    name: NameOpt = None,
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Download a public BEIR dataset (md5-verified) and import it."""
    from retrieval_cli import data as datasets

    _made(quiet, lambda bar: datasets.fetch_beir(workspace(workspace_path), dataset, artifact_name=name, force=force, progress=bar))


@app.command("subset")
def subset_cli(
    dataset: DatasetArg = None,
    dataset_opt: DatasetOpt = None,
    queries: Annotated[int, typer.Option(help="Number of queries to sample.")] = 50,
    split: Annotated[str, typer.Option(help="Split to sample from, or 'all': QUERIES from every split (a CI subset keeps its training queries).")] = "test",
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 13,
    distractors: Annotated[str, typer.Option(help="'bm25:K' adds each query's top-K BM25 documents; 'none'.")] = "bm25:100",
    name: NameOpt = None,
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Make a NanoBEIR-style subset: sampled queries, their judged documents, BM25 distractors."""
    from retrieval_cli.derive.subset import subset

    ws = workspace(workspace_path)
    _made(quiet, lambda bar: subset(
        ws, ws.resolve(dataset_ref(dataset, dataset_opt), kind="datasets"), queries=queries, split=split, seed=seed,
        distractors=distractors, name=name, force=force, progress=bar))


@app.command("synth")
def synth_cli(
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset artifact name.")] = "synthetic",
    documents: Annotated[int, typer.Option(help="Corpus size.")] = 1500,
    test_queries: Annotated[int, typer.Option(help="Queries in the test split.")] = 150,
    train_queries: Annotated[int, typer.Option(help="Queries in the train split.")] = 300,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 13,
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,  # accepted like everywhere; generating shows no progress
) -> None:
    """Generate the project's own small product-search dataset (deterministic)."""
    from dataclasses import asdict

    from retrieval_cli import data as datasets
    from retrieval_cli.data import synthetic
    from retrieval_cli.errors import InputError

    config = synthetic.SynthConfig(documents=documents, test_queries=test_queries, train_queries=train_queries, seed=seed)
    if documents < 10 or test_queries < 1 or train_queries < 0:
        raise InputError("need at least 10 documents and 1 test query")
    dataset = synthetic.generate(config)
    result = datasets.save(workspace(workspace_path), dataset, name, {"source": "synth", **asdict(config)}, force=force)
    _summary(result)
