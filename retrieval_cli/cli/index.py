"""``retrieval-cli index``: build a BM25 (Lucene) or dense (faiss) index artifact."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from retrieval_cli.cli import console
from retrieval_cli.cli.options import (
    DatasetArg, DatasetOpt, DeviceOpt, DocumentPromptOpt, ForceOpt, NameOpt, PrecisionOpt, QueryPromptOpt, QuietOpt, ShardOpt,
    WorkspaceOpt, dataset_ref, from_options, workspace,
)
from retrieval_cli.errors import InputError
from retrieval_cli.index.config import BM25Config, DenseConfig

_BM25, _DENSE = BM25Config(), DenseConfig()  # the library's defaults are the command's


def index_cli(
    dataset: DatasetArg = None,
    dataset_opt: DatasetOpt = None,
    kind: Annotated[str, typer.Option("--kind", help="bm25 or dense.")] = "bm25",
    k1: Annotated[float, typer.Option(help="BM25 k1.")] = _BM25.k1,
    b: Annotated[float, typer.Option(help="BM25 b.")] = _BM25.b,
    stemmer: Annotated[str, typer.Option(help="BM25 stemmer: porter, krovetz or none.")] = _BM25.stemmer,
    model: Annotated[str, typer.Option(help="Dense model: alias (minilm), models/NAME, folder or hub id.")] = _DENSE.model,
    faiss: Annotated[str, typer.Option("--faiss", help="Dense index structure: flat, hnsw or ivfpq.")] = _DENSE.faiss,
    hnsw_m: Annotated[int, typer.Option(help="hnsw: neighbours per node.")] = _DENSE.hnsw_m,
    ef_search: Annotated[int, typer.Option(help="hnsw: candidates kept while searching.")] = _DENSE.ef_search,
    nlist: Annotated[Optional[int], typer.Option(help="ivfpq: cells \\[default: about 4 x sqrt(passages)].")] = _DENSE.nlist,
    pq_m: Annotated[int, typer.Option(help="ivfpq: sub-quantisers (must divide the dimension).")] = _DENSE.pq_m,
    nprobe: Annotated[int, typer.Option(help="ivfpq: cells searched per query.")] = _DENSE.nprobe,
    batch_size: Annotated[int, typer.Option(help="Encoding batch size.")] = _DENSE.batch_size,
    max_seq_length: Annotated[Optional[int], typer.Option(help="Truncate texts to this many tokens.")] = None,
    query_prompt: QueryPromptOpt = _DENSE.query_prompt,
    document_prompt: DocumentPromptOpt = _DENSE.document_prompt,
    precision: PrecisionOpt = _DENSE.precision,
    device: DeviceOpt = _DENSE.device,
    shard: ShardOpt = None,
    name: NameOpt = None,
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Index a dataset's corpus (title + text)."""
    from retrieval_cli import index as indexing
    from retrieval_cli.store import Shard

    ws = workspace(workspace_path)
    data = ws.resolve(dataset_ref(dataset, dataset_opt), kind="datasets")
    if shard is not None and kind != "dense":
        raise InputError("--shard applies to --kind dense (BM25 indexing is one Lucene job)")
    with console.progress(quiet) as bar:
        if kind == "bm25":
            result = indexing.build_bm25(ws, data, from_options(BM25Config, locals()), name=name, force=force, progress=bar)
        elif kind == "dense":
            config = from_options(DenseConfig, locals())
            if shard is not None:
                part = indexing.encode_shard(ws, data, config, Shard.parse(shard), progress=bar)
                console.shard_done(part, "passages", "assemble the index")
                return
            result = indexing.build_dense(ws, data, config, name=name, force=force, progress=bar)
        else:
            raise InputError(f"--kind must be bm25 or dense, got {kind!r}")
    console.built(result, "index")
    source = result.artifact.summary.get("lucene_from")
    if source and not result.reused:
        console.err.print(f"Lucene files linked from {source} (the same corpus and stemmer)", highlight=False)
