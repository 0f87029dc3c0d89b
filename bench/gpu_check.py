"""``make gpu-check``: index, mine, train and evaluate on a GPU, held against the same run on the CPU.

One prepared script for machines that have a CUDA device (nothing else depends on it). On a shared
collection (Cranfield by default) it runs, once per device: a dense MiniLM index and its
evaluation; title pseudo-queries (up to ``--queries``); dense-mined negatives; one epoch of MNRL at
128 tokens in fp32; the trained model's index and evaluation. Then it compares:

- the untrained model's nDCG@10 and R@100 on GPU and CPU: |delta| <= 0.001 (fp32 encodes agree to
  about 1e-6, so rankings agree);
- the mined negatives: the share of (query, negative) pairs both devices chose;
- the trained model's metrics: |delta| <= 0.01, looser because dropout masks come from each
  device's own random stream, so the two trainings are not the same computation;

and measures encoding throughput on the GPU: retrieval-cli's ``encode_texts`` (token-sorted
chunks) against a direct ``SentenceTransformer.encode`` of the same texts, same model, same batch
size, median of three after a warm-up. Its rows replace the GPU section of BENCHMARKS.md (between
the ``gpu-check`` markers, which ``make bench`` keeps) and every number goes to ``--json``. Exit 1
on a breached tolerance, with one line naming the cell. Under 5 minutes on one GPU:

    python -m bench.gpu_check --data ../shared/data/cranfield --benchmarks BENCHMARKS.md

``--device cpu`` runs the same comparison CPU against CPU (the tests check the script that way).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

START, END = "<!-- gpu-check -->", "<!-- /gpu-check -->"
METRIC_TOLERANCE = 0.001
TRAINED_TOLERANCE = 0.01


@dataclass
class CheckConfig:
    """What the check runs on and how big it is."""

    data: Path | None  # a BEIR folder; None: the project's synthetic dataset (for tests)
    device: str = "cuda"
    reference: str = "cpu"
    queries: int = 400  # title pseudo-queries trained on
    batch_size: int = 128  # encoding batch on the device
    train_batch: int = 32
    repeats: int = 3
    synth_documents: int = 300  # only with data None
    search_documents: int = 1_000_000  # exact search rows: random unit vectors, MiniLM's 384 dimensions
    search_queries: int = 8192
    faiss_queries: int = 1024  # faiss-cpu searches these of them (its time per pair is what counts)
    ce_pairs: int = 4096  # cross-encoder scoring rows


@dataclass
class DeviceRun:
    """One device's pass: metrics, mined pairs and seconds per stage."""

    device: str
    untrained: dict[str, float] = field(default_factory=dict)
    trained: dict[str, float] = field(default_factory=dict)
    pairs: set[tuple[str, str]] = field(default_factory=set)
    seconds: dict[str, float] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)  # the corpus, for the throughput rows


def _timed(seconds: dict[str, float], stage: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    value = fn()
    seconds[stage] = round(time.perf_counter() - started, 2)
    return value


def run_device(config: CheckConfig, device: str, root: Path) -> DeviceRun:
    """Index, evaluate, generate, mine, train, index and evaluate again, all on ``device``, in a
    fresh workspace at ``root`` (nothing reused from the other pass)."""
    from retrieval_cli import data as datasets
    from retrieval_cli import evaluate as evaluation
    from retrieval_cli import index as indexing
    from retrieval_cli import mining, training
    from retrieval_cli.data import synthetic
    from retrieval_cli.derive import pseudo_queries
    from retrieval_cli.mining import records
    from retrieval_cli.store import Workspace

    ws = Workspace(root)
    run = DeviceRun(device)
    if config.data is None:
        made = synthetic.generate(synthetic.SynthConfig(documents=config.synth_documents, test_queries=30, train_queries=10, seed=7))
        data = datasets.save(ws, made, "gpu-check", {"source": "synth"}).artifact
    else:
        data = datasets.import_beir(ws, config.data, "gpu-check").artifact
    evaluate_cfg = evaluation.EvaluateConfig(device=device)
    dense_cfg = indexing.DenseConfig(device=device, batch_size=config.batch_size)
    index = _timed(run.seconds, "index", lambda: indexing.build_dense(ws, data, dense_cfg).artifact)
    run.untrained = evaluation.metrics(evaluation.evaluate(ws, index=index, config=evaluate_cfg).artifact)["aggregate"]
    loaded = datasets.load(data)
    run.texts = [loaded.doc_text(d) for d in loaded.corpus]
    titles = pseudo_queries.generate_queries(
        ws, data, pseudo_queries.QueryGenConfig(method="title", split="pseudo", max_queries=config.queries, min_words=1),
    ).artifact
    engines = indexing.ensure(ws, titles, ["dense"], model=dense_cfg.model, device=device)  # the corpus's cached vectors
    mine_cfg = mining.MiningConfig(strategy="dense", split="pseudo", num_negatives=2, device=device)
    negatives = _timed(run.seconds, "mine", lambda: mining.mine_negatives(ws, titles, mine_cfg, indexes=engines).artifact)
    run.pairs = {(r["query_id"], n["doc_id"]) for r in records.read(negatives) for n in r["negatives"]}
    train_cfg = training.BiEncoderTrainConfig(
        batch_size=config.train_batch, max_seq_length=128, precision="fp32", eval_split="", device=device,
    )
    model = _timed(run.seconds, "train", lambda: training.train_bi_encoder(ws, negatives, train_cfg).artifact)
    trained_index = indexing.build_dense(ws, data, indexing.DenseConfig(model=model.ref, device=device, batch_size=config.batch_size)).artifact
    run.trained = evaluation.metrics(evaluation.evaluate(ws, index=trained_index, config=evaluate_cfg).artifact)["aggregate"]
    return run


def throughput(config: CheckConfig, texts: list[str]) -> dict[str, Any]:
    """Passages per second on ``config.device``: retrieval-cli's encode against a direct
    ``SentenceTransformer.encode`` of the same texts (same loaded model, batch size, normalisation)."""
    from retrieval_cli import index as indexing
    from retrieval_cli import models
    from retrieval_cli.store import software_versions

    model = models.load_sentence_transformer(models.resolve(models.DEFAULT_MODEL), device=config.device)
    sides: dict[str, Callable[[], Any]] = {
        "retrieval-cli": lambda: indexing.encode_texts(model, texts, config.batch_size, "encode", lambda *a, **k: None),
        "sentence-transformers": lambda: model.encode(texts, batch_size=config.batch_size, normalize_embeddings=True, show_progress_bar=False),
    }
    for side in sides.values():  # warm-up: CUDA kernels, tokenizer caches
        side()
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(config.repeats):
        for name, side in sides.items():  # alternating sides
            _synchronise(config.device)
            started = time.perf_counter()
            side()
            _synchronise(config.device)
            seconds[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "texts": len(texts), "batch_size": config.batch_size, "seconds": seconds,
        "passages_per_s": {name: round(len(texts) / s, 1) for name, s in medians.items()},
        "ratio": round(medians["retrieval-cli"] / medians["sentence-transformers"], 3),
        "device_name": _device_name(config.device),
        "software": software_versions(),  # a GPU machine's stack is its own, not the pinned one
    }


def search_speed(config: CheckConfig) -> dict[str, Any]:
    """Exact top-100 search on ``config.device`` (``exact.TorchFlat``) against faiss-cpu flat on
    random unit vectors: seconds per query-passage pair on each, and whether both return the same
    ids in the same order for the queries faiss searched. The pair costs feed the cost model."""
    import faiss
    import numpy as np

    from retrieval_cli.index.exact import TIE_MARGIN, TorchFlat, canonical

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((config.search_documents, 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.standard_normal((config.search_queries, 384), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(384)
    index.add(vectors)
    del vectors
    exact = TorchFlat(index, config.device)
    exact.search(queries[:64], 100)  # warm-up
    _synchronise(config.device)
    started = time.perf_counter()
    found = [exact.search(queries[i:i + 1024], 100) for i in range(0, len(queries), 1024)]
    on_device = time.perf_counter() - started
    started = time.perf_counter()
    scores, positions = index.search(queries[:config.faiss_queries], 100 + TIE_MARGIN)
    on_faiss = time.perf_counter() - started
    scores, positions = canonical(scores, positions, 100)
    device_scores = np.concatenate([s for s, _ in found])[:config.faiss_queries]
    device_positions = np.concatenate([p for _, p in found])[:config.faiss_queries]
    same = int((positions == device_positions).all(axis=1).sum())
    # Two float32 products of one pair differ in the last bits (summation order): neighbours closer
    # than that may swap. A query whose every rank's scores agree within 1e-5 differs only so.
    rounding = int((np.abs(scores - device_scores).max(axis=1) < 1e-5).sum())
    return {
        "documents": config.search_documents, "queries": config.search_queries, "faiss_queries": config.faiss_queries,
        "seconds": {config.device: round(on_device, 3), "faiss-cpu": round(on_faiss, 3)},
        "pair_seconds": {config.device: on_device / (config.search_documents * config.search_queries),
                         "faiss-cpu": on_faiss / (config.search_documents * config.faiss_queries)},
        "same_results": same, "same_within_rounding": rounding,
    }


def cross_encoder_speed(config: CheckConfig, texts: list[str]) -> dict[str, Any]:
    """Cross-encoder (query, passage) pairs per second, scored by ``models.predict_pairs``
    (longest first) on the device and on the reference: MiniLM's weights with a fresh scoring
    head, the cost of a 6-layer cross-encoder such as ms-marco-MiniLM-L-6-v2."""
    from retrieval_cli import models

    pairs = [(texts[i % len(texts)][:60], texts[(i * 7 + 3) % len(texts)]) for i in range(config.ce_pairs)]
    rates = {}
    for device in (config.device, config.reference):
        model = models.load_cross_encoder(models.resolve(models.DEFAULT_MODEL), device=device)
        models.predict_pairs(model, pairs[:64], 32)  # warm-up
        _synchronise(device)
        started = time.perf_counter()
        models.predict_pairs(model, pairs, 32 if device == config.reference else config.batch_size)
        _synchronise(device)
        rates[device] = round(len(pairs) / (time.perf_counter() - started), 1)
    return {"pairs": len(pairs), "pairs_per_s": rates}


def _synchronise(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return str(torch.cuda.get_device_name(torch.device(device)))
    return platform.processor() or platform.machine()


def compare(reference: DeviceRun, other: DeviceRun) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of the comparison, and one line per breached tolerance."""
    rows, failures = [], []
    for stage, tolerance in (("untrained", METRIC_TOLERANCE), ("trained", TRAINED_TOLERANCE)):
        ref, got = getattr(reference, stage), getattr(other, stage)
        for measure in sorted(set(ref) & set(got)):
            if measure.startswith("Judged"):
                continue
            delta = got[measure] - ref[measure]
            ok = abs(delta) <= tolerance
            rows.append({"model": stage, "measure": measure, other.device: got[measure], reference.device: ref[measure],
                         "delta": round(delta, 5), "tolerance": tolerance, "ok": ok})
            if not ok:
                failures.append(f"FAIL {stage} {measure}: {other.device} {got[measure]:.4f} vs {reference.device} "
                                f"{ref[measure]:.4f} (|delta| {abs(delta):.4f} > {tolerance})")
    return rows, failures


def markdown(config: CheckConfig, rows: list[dict[str, Any]], agreement: float, speed: dict[str, Any],
             runs: list[DeviceRun], wall: float) -> str:
    """The GPU section of BENCHMARKS.md, between its markers."""
    ref, dev = config.reference, config.device
    lines = [
        START,
        f"## GPU ({speed['device_name']}, `make gpu-check`, {wall:.0f} s)",
        "",
        f"Collection: {config.data.name if config.data else 'synthetic'}; MiniLM, fp32; {config.queries} title queries, "
        f"dense negatives, one epoch of MNRL at 128 tokens, batch {config.train_batch}. Software: "
        + ", ".join(f"{k} {v}" for k, v in speed.get("software", {}).items() if k != "git") + ".",
        "",
        f"| model | measure | {dev} | {ref} | delta | tolerance | |",
        "|---|---|---|---|---|---|---|",
        *[f"| {r['model']} | {r['measure']} | {r[dev]:.4f} | {r[ref]:.4f} | {r['delta']:+.5f} | {r['tolerance']} | "
          f"{'OK' if r['ok'] else 'FAIL'} |" for r in rows],
        "",
        f"Mined negatives both devices chose: {agreement:.1%} of (query, negative) pairs.",
        "",
        "| encode | passages/s | seconds (median) |",
        "|---|---|---|",
        *[f"| {name} | {rate} | {statistics.median(speed['seconds'][name]):.2f} |" for name, rate in speed["passages_per_s"].items()],
        f"| ratio (retrieval-cli / direct) | | {speed['ratio']} |",
        "",
        *_search_lines(speed, dev, ref),
        "",
        "Seconds per stage: " + "; ".join(f"{r.device}: " + ", ".join(f"{k} {v}" for k, v in r.seconds.items()) for r in runs),
        END,
    ]
    return "\n".join(lines) + "\n"


def _search_lines(speed: dict[str, Any], dev: str, ref: str) -> list[str]:
    """The exact-search and cross-encoder rows of the GPU section."""
    search, ce = speed["search"], speed["cross_encoder"]
    return [
        f"Exact top-100 search, {search['documents']:,} random 384-d unit vectors: {search['queries']:,} queries on {dev} "
        f"(`exact.TorchFlat`), {search['faiss_queries']:,} on faiss-cpu flat; the same ids in the same order for "
        f"{search['same_results']} of {search['faiss_queries']}, every rank's score within 1e-5 for {search['same_within_rounding']} "
        "(the rest swap neighbours closer than float32 rounding).",
        "",
        "| search | seconds | ns per query-passage pair |",
        "|---|---|---|",
        *[f"| {side} | {search['seconds'][side]} | {search['pair_seconds'][side] * 1e9:.4f} |" for side in search["seconds"]],
        "",
        f"| cross-encoder ({ce['pairs']:,} pairs, MiniLM-L6) | pairs/s |",
        "|---|---|",
        *[f"| {side} | {rate} |" for side, rate in ce["pairs_per_s"].items()],
    ]


def replace_section(text: str, section: str) -> str:
    """``text`` with its gpu-check section replaced by ``section`` (appended when it has none)."""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        return head + section.rstrip("\n") + rest.split(END, 1)[1]
    return text.rstrip("\n") + "\n\n" + section


def kept_section(text: str) -> str:
    """The gpu-check section of an existing BENCHMARKS.md ("" when none), for ``make bench`` to keep."""
    if START in text and END in text:
        return START + text.split(START, 1)[1].split(END, 1)[0] + END + "\n"
    return ""


def run_check(config: CheckConfig, workdir: Path, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Both passes, the comparison and the throughput rows."""
    started = time.perf_counter()
    runs = []
    for number, device in enumerate((config.device, config.reference)):
        progress(f"pass on {device}")
        runs.append(run_device(config, device, workdir / f"pass{number}-{device.replace(':', '-')}"))
    rows, failures = compare(runs[1], runs[0])
    union = runs[0].pairs | runs[1].pairs
    agreement = len(runs[0].pairs & runs[1].pairs) / len(union) if union else 1.0
    progress(f"throughput on {config.device}")
    speed = throughput(config, runs[0].texts)
    progress(f"exact search on {config.device} against faiss-cpu")
    speed["search"] = search_speed(config)
    if speed["search"]["same_within_rounding"] != config.faiss_queries:
        failures.append(f"FAIL exact search: {config.device} and faiss-cpu scores agree within 1e-5 on "
                        f"{speed['search']['same_within_rounding']} of {config.faiss_queries} queries' top 100")
    progress(f"cross-encoder scoring on {config.device} and {config.reference}")
    speed["cross_encoder"] = cross_encoder_speed(config, runs[0].texts)
    wall = time.perf_counter() - started
    return {
        "rows": rows, "failures": failures, "negatives_agreement": round(agreement, 4), "throughput": speed,
        "runs": [{"device": r.device, "untrained": r.untrained, "trained": r.trained, "seconds": r.seconds} for r in runs],
        "wall_s": round(wall, 1), "markdown": markdown(config, rows, agreement, speed, runs, wall),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cranfield"), help="a BEIR folder")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--reference", default="cpu")
    parser.add_argument("--queries", type=int, default=CheckConfig.queries)
    parser.add_argument("--benchmarks", type=Path, default=None, help="BENCHMARKS.md whose GPU section is replaced")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    options = parser.parse_args(argv)
    from retrieval_cli import models
    from retrieval_cli.errors import RetrievalError

    try:
        device = models.resolve_device(options.device)
    except RetrievalError as exc:  # a machine without the device: one line, exit 2
        print(f"gpu-check: {exc}", file=sys.stderr)
        return 2
    if not options.data.is_dir():
        print(f"gpu-check: no BEIR folder at {options.data}", file=sys.stderr)
        return 2
    config = CheckConfig(data=options.data, device=device, reference=options.reference, queries=options.queries)
    with tempfile.TemporaryDirectory(dir=options.workdir) as scratch:
        result = run_check(config, Path(scratch), progress=lambda m: print(f"[gpu-check] {m}", file=sys.stderr, flush=True))
    if options.json:
        options.json.write_text(json.dumps({k: v for k, v in result.items() if k != "markdown"}, indent=1) + "\n", encoding="utf-8")
    if options.benchmarks:
        existing = options.benchmarks.read_text(encoding="utf-8") if options.benchmarks.is_file() else ""
        options.benchmarks.write_text(replace_section(existing, result["markdown"]), encoding="utf-8")
    print(result["markdown"])
    for line in result["failures"]:
        print(line, file=sys.stderr)
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
