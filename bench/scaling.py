"""Scaling curves (``make bench``'s second table): each stage of a comparison timed at growing
corpus sizes and query counts, its peak memory, a power-law fit, and a projection to MS MARCO.

The corpus is generated here, not by ``data/synthetic.py``: that generator relates every
paraphrase query to every document sharing its topic, which is quadratic at a million passages.
Here a passage is 40 words drawn from a Zipf-distributed vocabulary and a query is 5 words of one
passage (its one relevant document): enough for Lucene and faiss to do realistic work. Dense
vectors are random unit vectors seeded into the embedding cache (a million-passage encode takes
hours on 2 cores and is the encode row's business), so the dense rows time query encoding,
search and selection.

One workspace per corpus size holds the import and both indexes; one dataset per query count
shares its ``corpus.jsonl`` (so the BM25 index is linked, not rebuilt, and the embedding cache
is reused: the mechanisms under test), and mining and evaluation run on each.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from bench.rows import _timed  # the one clock every row and stage uses

# MS MARCO passage: what the projection is for (passages, training queries, dev queries).
MSMARCO = {"docs": 8_841_823, "train_queries": 502_939, "dev_queries": 6_980}
WORDS_PER_PASSAGE = 40
WORDS_PER_QUERY = 5
VOCABULARY = 50_000
# Stages, what their size depends on, and which MS MARCO query count they are projected at.
STAGES = {
    "import": ("docs", None),
    "bm25 index": ("docs", None),
    "dense index": ("docs", None),
    "bm25 mining": ("both", "train_queries"),
    "dense mining": ("both", "train_queries"),
    "evaluate (bm25, depth 100)": ("both", "dev_queries"),
}


def _vocabulary(rng: Any) -> list[str]:
    syllables = ["ka", "lo", "vi", "ter", "mon", "ra", "zu", "pel", "dor", "fin", "sa", "gri", "nov", "bel", "tu", "mar", "sen", "qua"]
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(syllables, size=int(rng.integers(2, 5)))))
    return sorted(words)


def write_corpus(folder: Path, docs: int, query_counts: list[int], seed: int = 7) -> dict[int, Path]:
    """A BEIR folder per query count under ``folder``, all sharing one ``corpus.jsonl`` (hard
    links); each has ``n`` train and ``n`` test queries, the first ``n`` of the largest set.
    Counts above ``docs`` are left out (more queries than passages is no collection's shape;
    MS MARCO has one per 18), unless no count fits."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab = np.array(_vocabulary(rng))
    weights = 1.0 / np.arange(1, VOCABULARY + 1) ** 1.07
    weights /= weights.sum()
    folder.mkdir(parents=True, exist_ok=True)
    most = max(n for n in query_counts if n <= docs) if any(n <= docs for n in query_counts) else min(query_counts)
    # Targets first, so each query's words can be drawn from its passage as the passage is written.
    targets = rng.choice(docs, size=2 * most, replace=docs < 2 * most)
    by_doc: dict[int, list[int]] = {}
    for qi, target in enumerate(targets.tolist()):
        by_doc.setdefault(target, []).append(qi)
    texts: list[tuple[str, str]] = [("", "")] * len(targets)
    corpus = folder / "corpus.jsonl"
    chunk = 100_000
    with open(corpus, "w", encoding="utf-8") as out:
        for start in range(0, docs, chunk):
            n = min(chunk, docs - start)
            words = vocab[rng.choice(VOCABULARY, size=(n, WORDS_PER_PASSAGE), p=weights)].tolist()
            out.writelines(json.dumps({"_id": f"d{start + i}", "title": "", "text": " ".join(row)}) + "\n" for i, row in enumerate(words))
            for i, row in enumerate(words):
                for qi in by_doc.get(start + i, ()):
                    texts[qi] = (f"d{start + i}", " ".join(rng.choice(row, size=WORDS_PER_QUERY, replace=False)))
    folders = {}
    for n in sorted(n for n in query_counts if n <= most):
        cell = folder.parent / f"{folder.name}-q{n}"
        (cell / "qrels").mkdir(parents=True, exist_ok=True)
        if not (cell / "corpus.jsonl").exists():
            os.link(corpus, cell / "corpus.jsonl")
        picked = {"train": texts[:n], "test": texts[most:most + n]}
        with open(cell / "queries.jsonl", "w", encoding="utf-8") as out:
            for split, rows in picked.items():
                out.writelines(json.dumps({"_id": f"{split[:2]}{i}", "text": text}) + "\n" for i, (_, text) in enumerate(rows))
        for split, rows in picked.items():
            with open(cell / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as out:
                out.write("query-id\tcorpus-id\tscore\n")
                out.writelines(f"{split[:2]}{i}\t{doc}\t1\n" for i, (doc, _) in enumerate(rows))
        folders[n] = cell
    return folders


# ---- the stages, each run inside its own child process ---------------------------------------

def _workspace(args: dict) -> Any:
    from retrieval_cli.store import Workspace

    return Workspace(Path(args["ws"]))


def _folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def stage_import(args: dict) -> dict:
    """``data import``: validate and copy a BEIR folder into a dataset artifact."""
    from retrieval_cli import data as datasets

    ws = _workspace(args)
    seconds, _ = _timed(lambda: datasets.import_beir(ws, Path(args["folder"]), args["name"]))
    return {"seconds": seconds}


def stage_bm25_index(args: dict) -> dict:
    """``index --kind bm25``: Lucene over the corpus (linked from an earlier index of the same corpus)."""
    from retrieval_cli import index as indexing

    ws = _workspace(args)
    seconds, result = _timed(lambda: indexing.build_bm25(ws, ws.resolve(f"datasets/{args['name']}"), indexing.BM25Config()))
    return {"seconds": seconds, "index_mb": _folder_mb(result.artifact.path)}


def _vector_cache(ws: Any, data_art: Any) -> tuple[Any, Any]:
    """The embedding-cache entry ``index --kind dense`` reads for this corpus at the default model,
    and that model's spec."""
    from retrieval_cli import index as indexing
    from retrieval_cli import models

    dense = indexing.DenseConfig()
    spec = models.resolve(dense.model, ws)
    return indexing.embedding_cache(ws, data_art, spec, dense), spec


def seed_vectors(args: dict) -> dict:
    """Random unit vectors for every passage, stored as the embedding cache's entry: a process of
    its own, so the dense-index stage's peak memory is the index build's, not this array's."""
    import numpy as np

    from retrieval_cli import data as datasets

    ws = _workspace(args)
    data_art = ws.resolve(f"datasets/{args['name']}")
    cache, spec = _vector_cache(ws, data_art)
    if cache.load() is None:
        doc_ids = list(datasets.load(data_art, lazy_corpus=True).corpus)
        vectors = np.random.default_rng(0).standard_normal((len(doc_ids), 384), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

        def write(folder: Path) -> None:
            np.save(folder / "embeddings.npy", vectors)
            (folder / "docids.txt").write_text("\n".join(doc_ids) + "\n", encoding="utf-8")

        cache.store({"model": spec.name, "fingerprint": spec.fingerprint, "dataset": data_art.ref, "max_seq_length": 256}, write)
    return {"seconds": 0.0}


def stage_dense_index(args: dict) -> dict:
    """``index --kind dense`` from the seeded vectors (``seed_vectors`` ran first)."""
    from retrieval_cli import index as indexing

    ws = _workspace(args)
    data_art = ws.resolve(f"datasets/{args['name']}")
    if not _vector_cache(ws, data_art)[0].exists():
        raise RuntimeError(f"no seeded vectors for {data_art.ref}: run the {SEED!r} case first")
    seconds, result = _timed(lambda: indexing.build_dense(ws, data_art, indexing.DenseConfig()))
    return {"seconds": seconds, "index_mb": _folder_mb(result.artifact.path)}


def _mine(args: dict, strategy: str) -> dict:
    from retrieval_cli import mining
    from retrieval_cli.index import ensure

    ws = _workspace(args)
    data_art = ws.resolve(f"datasets/{args['name']}")
    config = mining.MiningConfig(strategy=strategy, num_negatives=4, range_max=100)
    indexes = ensure(ws, data_art, config.engines(), model=config.model)  # made by the index stages
    seconds, result = _timed(lambda: mining.mine_negatives(ws, data_art, config, indexes=indexes, force=True))
    return {"seconds": seconds, "queries": result.artifact.summary.get("queries")}


def stage_bm25_mining(args: dict) -> dict:
    """``mine-negatives --strategy bm25``: Lucene top-100 in chunks, positives' scores, selection."""
    return _mine(args, "bm25")


def stage_dense_mining(args: dict) -> dict:
    """``mine-negatives --strategy dense``: queries encoded, faiss top-100 in chunks, selection."""
    return _mine(args, "dense")


def stage_evaluate(args: dict) -> dict:
    """``evaluate`` of the BM25 index on the test queries: search to depth 100, nDCG@10 and R@100."""
    from retrieval_cli import evaluate as evaluation
    from retrieval_cli.index import ensure

    ws = _workspace(args)
    data_art = ws.resolve(f"datasets/{args['name']}")
    index = ensure(ws, data_art, {"bm25"})[0]
    config = evaluation.EvaluateConfig(depth=100)
    seconds, result = _timed(lambda: evaluation.evaluate(ws, index=index, config=config, force=True))
    return {"seconds": seconds, "queries": result.artifact.summary.get("queries")}


SEED = "seed vectors"  # not a stage: what the dense-index stage needs, made outside its process
CASES = {
    SEED: seed_vectors, "import": stage_import, "bm25 index": stage_bm25_index, "dense index": stage_dense_index,
    "bm25 mining": stage_bm25_mining, "dense mining": stage_dense_mining, "evaluate (bm25, depth 100)": stage_evaluate,
}
assert set(CASES) == {*STAGES, SEED}


# ---- fits and the projection --------------------------------------------------------------------

def fit(points: list[dict], stage: str) -> dict[str, Any]:
    """The stage's cost model (``pipeline.cost``): seconds = fixed + per passage + per query + per
    query-passage pair, fitted on its points by non-negative least squares on relative error; its
    largest error on those points; and its projection to MS MARCO. A stage that depends on
    passages alone fits (fixed, per passage); one whose points hold a single query count cannot
    tell its query terms apart and is not projected."""
    from retrieval_cli.pipeline import cost

    depends, at = STAGES[stage]
    rows = [p for p in points if p["stage"] == stage]
    measured = [cost.Point(p["docs"], p["queries"], p["seconds"], p["peak_mb"]) for p in rows]
    varied = len({p.queries for p in measured}) > 1 and len({p.passages for p in measured}) > 1
    terms = ("fixed", "per_passage") if depends == "docs" else cost.TERMS if varied else ()
    if not terms or len(rows) < len(terms):
        return {"stage": stage, "points": len(rows)}
    model = cost.fit(measured, terms)
    big_docs, big_queries = MSMARCO["docs"], MSMARCO[at] if at else 0
    return {
        "stage": stage, "points": len(rows), "model": cost.to_record(model), "max_error": cost.fit_error(model, measured),
        "msmarco_queries": big_queries or None, "msmarco_s": model.seconds(big_docs, big_queries), "msmarco_mb": model.peak_mb(big_docs, big_queries),
    }


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def earlier_run(entry: dict, this_run: str | None) -> str:
    """The run that measured a row or point when it was not ``this_run`` (kept by
    ``harness.keep_earlier``); "" for this run's own."""
    return "" if entry.get("run", this_run) == this_run else str(entry["run"])


def to_markdown(points: list[dict], fits: list[dict], this_run: str | None = None) -> list[str]:
    """The scaling section: every point (with the run that measured it, where not ``this_run``),
    then each stage's fit and its MS MARCO projection."""
    lines = [
        "## Scaling curves",
        "",
        f"Generated passages ({WORDS_PER_PASSAGE} Zipf-distributed words; a query is {WORDS_PER_QUERY} words of its one relevant",
        "passage). Dense vectors are random unit vectors seeded into the embedding cache, so the dense rows time",
        "query encoding, search and selection, not a corpus encode. Each point is one run in a fresh process;",
        "mining and evaluation run on `queries` training / test queries. Peak memory should grow with the index,",
        "not with the number of queries. Points this run did not measure are kept from the run named beside them.",
        "",
        "| stage | passages | queries | seconds | peak MB | index MB | run |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in points:
        index = f"{p['index_mb']:.0f}" if p.get("index_mb") is not None else "-"
        run = earlier_run(p, this_run) or "this one"
        lines.append(f"| {p['stage']} | {p['docs']:,} | {p['queries']:,} | {p['seconds']:.2f} | {p['peak_mb']:.0f} | {index} | {run} |")
    fitted = [f for f in fits if "model" in f]
    if fitted:
        lines += [
            "",
            "Cost model (`retrieval_cli/pipeline/cost.py`): seconds = fixed + a x passages + b x queries + c x passages x queries,",
            "fitted per stage on its points (non-negative least squares on relative error; a stage of passages alone fits",
            "fixed + a); peak MB linear in both. Projected to MS MARCO passage ("
            f"{MSMARCO['docs']:,} passages; mining over its {MSMARCO['train_queries']:,} training queries, evaluation",
            f"over its {MSMARCO['dev_queries']:,} dev queries) on this machine. Projections beyond the largest point are extrapolations.",
            "",
            "| stage | fixed s | s per 1M passages | s per 1k queries | ns per pair | max fit error | MS MARCO time | MS MARCO peak GB |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for f in fitted:
            m = f["model"]
            lines.append(f"| {f['stage']} | {m.get('fixed', 0):.2f} | {m.get('per_passage', 0) * 1e6:.1f} | {m.get('per_query', 0) * 1e3:.2f} | "
                         f"{m.get('per_pair', 0) * 1e9:.2f} | {f['max_error']:.0%} | {_hours(f['msmarco_s'])} | {f['msmarco_mb'] / 1000:.1f} |")
    return lines


# ---- the cost tables `pipeline run --dry-run` reads ---------------------------------------------

# Assumptions where nothing measured a term yet, each named in costs.json's "assumed" list and
# replaced by a measurement when `make gpu-check` has one: an exact-search pair on a GPU (384-d
# fp32 dot products at ~25 TFLOP/s effective), a cross-encoder pair on a GPU (MiniLM-L6, ~128
# tokens), and the small fixed costs of fusing two runs and writing a report.
GPU_PAIR_S = 3e-11
GPU_CE_PAIR_S = 1 / 2000
FUSE_S, REPORT_S = 2.0, 5.0
CE_ROW_PAIRS = 36 * 5  # the cross row: 36 queries x 5 BM25 candidates (its positives add a few)
TRAIN_ROW_QUERIES = 64  # the train row: 64 titles, batch 16, 64 tokens, one epoch
GPU_CHECK_QUERIES = 400  # gpu-check's training queries (CheckConfig.queries)


def cost_tables(fits: list[dict], rows: list[dict], gpu: dict | None, measured: str) -> dict[str, Any]:
    """``retrieval_cli/pipeline/costs.json``: per stage, the fitted model on this machine (2 CPU
    cores) and on one GPU, from the scaling fits, the encode / train / cross rows and
    ``BENCHMARKS-gpu.json``. A GPU leaves Lucene, imports and faiss-cpu adds as they are."""
    from retrieval_cli.pipeline import cost

    names = {"evaluate (bm25, depth 100)": "evaluate"}
    cpu = {names.get(f["stage"], f["stage"]): cost.from_record(f["model"]) for f in fits if "model" in f}
    by_key = {r.get("key"): r for r in rows}
    if "encode" in by_key:  # 200 Cranfield passages, the model's load included
        cpu["encode"] = cost.Cost(per_passage=by_key["encode"]["ours_s"] / 200, mb_fixed=by_key["encode"]["ours_mb"] or 0.0)
    if "train" in by_key:
        cpu["train"] = cost.Cost(per_query=by_key["train"]["ours_s"] / TRAIN_ROW_QUERIES, mb_fixed=by_key["train"]["ours_mb"] or 0.0)
    if "cross" in by_key:
        cpu["cross-encoder"] = cost.Cost(per_query=by_key["cross"]["ours_s"] / CE_ROW_PAIRS, mb_fixed=by_key["cross"]["ours_mb"] or 0.0,
                                         assumed=("per_query",))
    if "dense mining" in cpu:  # evaluating a dense index searches as mining does
        cpu["evaluate (dense)"] = dataclasses.replace(cpu["dense mining"], assumed=("per_query", "per_pair"))
    cpu["fuse"] = cost.Cost(fixed=FUSE_S, assumed=("fixed",))
    cpu["report"] = cost.Cost(fixed=REPORT_S, assumed=("fixed",))
    gpu_table = dict(cpu)
    speed = (gpu or {}).get("throughput", {})
    host = {stage: cpu[stage].mb_fixed if stage in cpu else 0.0 for stage in ("encode", "train", "cross-encoder")}  # host memory
    if speed.get("passages_per_s"):
        gpu_table["encode"] = cost.Cost(per_passage=1 / speed["passages_per_s"]["retrieval-cli"], mb_fixed=host["encode"])
    runs = {r["device"]: r for r in (gpu or {}).get("runs", [])}
    if "cuda" in runs:
        gpu_table["train"] = cost.Cost(per_query=runs["cuda"]["seconds"]["train"] / GPU_CHECK_QUERIES, mb_fixed=host["train"])
    pair = speed.get("search", {}).get("pair_seconds", {}).get("cuda")
    ce = speed.get("cross_encoder", {}).get("pairs_per_s", {}).get("cuda")
    gpu_table["cross-encoder"] = (cost.Cost(per_query=1 / ce, mb_fixed=host["cross-encoder"]) if ce
                                  else cost.Cost(per_query=GPU_CE_PAIR_S, mb_fixed=host["cross-encoder"], assumed=("per_query",)))
    if "dense mining" in cpu and "bm25 mining" in cpu:  # query encoding on the GPU: what is left per query is BM25 mining's selection
        searched = cost.Cost(fixed=cpu["dense mining"].fixed, per_passage=cpu["dense mining"].per_passage, per_query=cpu["bm25 mining"].per_query,
                             per_pair=pair or GPU_PAIR_S, mb_fixed=cpu["dense mining"].mb_fixed, mb_per_passage=cpu["dense mining"].mb_per_passage,
                             mb_per_query=cpu["dense mining"].mb_per_query, assumed=("per_query",) if pair else ("per_query", "per_pair"))
        gpu_table["dense mining"] = gpu_table["evaluate (dense)"] = searched
    return {"measured": measured, "machines": {machine: {stage: cost.to_record(c) for stage, c in sorted(table.items())}
                                               for machine, table in (("cpu", cpu), ("gpu", gpu_table))}}


MSMARCO_RECIPE = (  # the stages of recipes/msmarco.yaml's bill for one strategy and one seed: (stage, passages, queries)
    ("import", "docs", None), ("bm25 index", "docs", None), ("encode", "docs", None), ("dense index", "docs", None),
    ("dense mining", "docs", "train_queries"), ("train", None, "train_queries"), ("encode", "docs", None),
    ("dense index", "docs", None), ("evaluate (dense)", "docs", "dev_queries"),
)


def msmarco_bill(tables: dict[str, Any]) -> list[str]:
    """The MS MARCO lines of BENCHMARKS.md: each stage of one dense-mined, trained and evaluated
    system on 2 CPU cores and on one GPU, from the cost tables (assumed terms marked)."""
    from retrieval_cli.pipeline import cost

    machines = {m: {s: cost.from_record(r) for s, r in stages.items()} for m, stages in tables["machines"].items()}
    lines = [
        "",
        "MS MARCO passage, one system of `recipes/msmarco.yaml` (dense negatives, one epoch, evaluated on dev small), by the",
        f"cost tables `make bench` writes to `retrieval_cli/pipeline/costs.json` ({tables['measured']}); * marks a stage with",
        "an assumed term (`bench/scaling.py` says which and why). `pipeline run RECIPE --dry-run` prices every step this way.",
        "",
        "| stage | 2 CPU cores | one GPU |",
        "|---|---|---|",
    ]
    totals = {"cpu": 0.0, "gpu": 0.0}
    for stage, docs, queries in MSMARCO_RECIPE:
        p, q = MSMARCO[docs] if docs else 0, MSMARCO[queries] if queries else 0
        cells = []
        for machine in ("cpu", "gpu"):
            c = machines[machine].get(stage)
            if c is None:
                cells.append("-")
                continue
            totals[machine] += c.seconds(p, q)
            cells.append(_hours(c.seconds(p, q)) + (" *" if c.assumed else ""))
        lines.append(f"| {stage} | {cells[0]} | {cells[1]} |")
    lines.append(f"| **total** | **{_hours(totals['cpu'])}** | **{_hours(totals['gpu'])}** |")
    return lines
