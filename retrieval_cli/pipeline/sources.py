"""A recipe's dataset sections: what each imports (the paths it reads, checked before any work),
its spec, and how its step makes the dataset (synthetic, a BEIR folder, TREC-DL files, ir_datasets
ids, or an artifact already in the workspace). Paths are relative to the recipe file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from retrieval_cli import data as datasets
from retrieval_cli.data import irds, synthetic
from retrieval_cli.errors import InputError
from retrieval_cli.pipeline.recipe import config_from
from retrieval_cli.progress import silent
from retrieval_cli.store import Artifact, BuildResult, Workspace


def source_spec(source: Any) -> dict[str, Any]:
    """A dataset section as a step's spec (paths as text)."""
    if isinstance(source, dict):
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in source.items()}
    return {"value": source}


def source_reads(where: str, source: Any, base: Path) -> tuple[tuple[str, Path], ...]:
    """The files and folders a dataset section imports, resolved against the recipe's folder."""
    if not isinstance(source, dict) or len(source) != 1:
        return ()
    (how, args), = source.items()
    if how == "beir":
        return ((f"{where}.beir", (base / str(args if not isinstance(args, dict) else args.get("path", ""))).resolve()),)
    if how == "trec-dl" and isinstance(args, dict):
        return tuple((f"{where}.trec-dl.{k}", (base / str(args[k])).resolve()) for k in ("collection", "topics", "qrels") if k in args)
    return ()


def dataset_maker(path: Path, where: str, source: Any, base: Path, artifact: str) -> Callable[[Workspace, dict[str, Artifact]], BuildResult]:
    """How a recipe's dataset section is made: synthetic, a BEIR folder, TREC-DL files, or an artifact
    already in the workspace (paths relative to the recipe)."""
    if not isinstance(source, dict) or len(source) != 1:
        raise InputError(f"{path}: {where}: give exactly one of synth, beir, trec-dl, irds, ref")
    (how, args), = source.items()
    if how == "synth":
        synth = config_from(path, f"{where}.synth", args, synthetic.SynthConfig)
        return lambda ws, _, progress=silent: datasets.save(ws, synthetic.generate(synth), artifact, {"source": "synth", **dataclasses.asdict(synth)})
    if how == "beir":
        folder = (base / str(args if not isinstance(args, dict) else args.get("path", ""))).resolve()
        level = int(args.get("relevance_level", 1)) if isinstance(args, dict) else 1
        return lambda ws, _, progress=silent: datasets.import_beir(ws, folder, artifact, relevance_level=level, progress=progress)
    if how == "trec-dl":
        if not isinstance(args, dict) or not {"collection", "topics", "qrels"} <= set(args):
            raise InputError(f"{path}: {where}.trec-dl: needs collection, topics and qrels")
        files = {k: (base / str(args[k])).resolve() for k in ("collection", "topics", "qrels")}
        return lambda ws, _, progress=silent: datasets.import_trec_dl(ws, files["collection"], files["topics"], files["qrels"], artifact, progress=progress)
    if how == "irds":
        splits, query_field = irds_splits(path, f"{where}.irds", args)
        return lambda ws, _, progress=silent: irds.import_irds(ws, splits, artifact, query_field=query_field, progress=progress)
    if how == "ref":
        return lambda ws, _, progress=silent: BuildResult(ws.resolve(str(args), kind="datasets"), reused=True)
    raise InputError(f"{path}: {where}: unknown source '{how}' (synth, beir, trec-dl, irds, ref)")


def irds_splits(path: Path, where: str, args: Any) -> tuple[list[irds.IrdsSplit], str]:
    """An ``irds`` source: one id, a list of ``ID[=SPLIT[,LEVEL]]``, or a mapping with ``ids`` and
    ``query_field``; every id checked against ir_datasets' registry (nothing is downloaded)."""
    query_field = "text"
    if isinstance(args, dict):
        unknown = sorted(set(args) - {"ids", "query_field"})
        if unknown:
            raise InputError(f"{path}: {where}: unknown field '{unknown[0]}' (known: ids, query_field)")
        query_field = str(args.get("query_field", "text"))
        args = args.get("ids")
    ids = [args] if isinstance(args, str) else args
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise InputError(f"{path}: {where}: give ir_datasets ids, e.g. [msmarco-passage/train/judged, msmarco-passage/dev/small]")
    try:
        splits = [irds.IrdsSplit.parse(text) for text in ids]
        for split in splits:
            irds.load(split.id)
    except InputError as exc:
        raise InputError(f"{path}: {where}: {exc.problem}") from None
    return splits, query_field


def split_by_id(path: Path, where: str, split: Any, source: Any) -> Any:
    """A split given as an ir_datasets id (``msmarco-passage/trec-dl-2019/judged``) is the split
    that id became in the ``irds`` source it names; any other value is returned as it is."""
    if not isinstance(split, str) or "/" not in split:
        return split
    args = source.get("irds") if isinstance(source, dict) else None
    if args is None:
        raise InputError(f"{path}: {where}: '{split}' is an ir_datasets id, but the dataset is not an irds source")
    splits, _ = irds_splits(path, where, args)
    for one in splits:
        if one.id == split:
            return one.split
    raise InputError(f"{path}: {where}: '{split}' is not among the dataset's ids ({', '.join(s.id for s in splits)})")
