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

import json
import math
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
    """``seconds = c * docs^a * queries^b`` by least squares on logs, and peak MB linear in the
    sizes; projected to MS MARCO. Where the points hold one query count, b is taken as 1 (each
    query is independent work) and said to be assumed."""
    import numpy as np

    depends, at = STAGES[stage]
    rows = [p for p in points if p["stage"] == stage]
    if len(rows) < 2:
        return {"stage": stage, "points": len(rows)}
    docs = np.array([p["docs"] for p in rows], dtype=float)
    queries = np.array([p["queries"] for p in rows], dtype=float)
    seconds = np.array([max(p["seconds"], 1e-3) for p in rows])
    mb = np.array([p["peak_mb"] for p in rows])
    use_queries = depends == "both" and len(set(queries)) > 1 and len(set(docs)) > 1
    columns = [np.ones_like(docs), np.log(docs)] + ([np.log(queries)] if use_queries else [])
    target = np.log(seconds) - (np.log(queries) if depends == "both" and not use_queries else 0)
    coef = np.linalg.lstsq(np.stack(columns, axis=1), target, rcond=None)[0]
    a = float(coef[1])
    b = float(coef[2]) if use_queries else (1.0 if depends == "both" else 0.0)
    mem_columns = [np.ones_like(docs), docs] + ([queries] if use_queries else [])
    mem = np.linalg.lstsq(np.stack(mem_columns, axis=1), mb, rcond=None)[0]
    big_docs = MSMARCO["docs"]
    big_queries = MSMARCO[at] if at else 1
    projected_s = math.exp(float(coef[0])) * big_docs ** a * (big_queries ** b if depends == "both" else 1.0)
    projected_mb = float(mem[0] + mem[1] * big_docs + (mem[2] * big_queries if use_queries else 0.0))
    return {
        "stage": stage, "points": len(rows), "docs_exponent": a, "queries_exponent": b,
        "queries_assumed": depends == "both" and not use_queries, "msmarco_queries": big_queries if at else None,
        "msmarco_s": projected_s, "msmarco_mb": projected_mb,
        "mb_per_million_docs": float(mem[1]) * 1e6, "mb_per_thousand_queries": float(mem[2]) * 1e3 if use_queries else None,
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
    fitted = [f for f in fits if "docs_exponent" in f]
    if fitted:
        lines += [
            "",
            "Fit: seconds = c x passages^a x queries^b (least squares on logs), peak MB linear in the sizes; projected to",
            f"MS MARCO passage ({MSMARCO['docs']:,} passages; mining over its {MSMARCO['train_queries']:,} training queries, evaluation",
            f"over its {MSMARCO['dev_queries']:,} dev queries). Projections beyond the largest point measured are extrapolations.",
            "",
            "| stage | a (passages) | b (queries) | MB per 1M passages | MB per 1k queries | MS MARCO time | MS MARCO peak GB |",
            "|---|---|---|---|---|---|---|",
        ]
        for f in fitted:
            b = f"{f['queries_exponent']:.2f}" + (" (assumed)" if f["queries_assumed"] else "")
            per_q = f"{f['mb_per_thousand_queries']:.1f}" if f.get("mb_per_thousand_queries") is not None else "-"
            lines.append(f"| {f['stage']} | {f['docs_exponent']:.2f} | {b} | {f['mb_per_million_docs']:.0f} | {per_q} | "
                         f"{_hours(f['msmarco_s'])} | {f['msmarco_mb'] / 1000:.1f} |")
    return lines
