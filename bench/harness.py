"""Benchmarks (``make bench`` -> BENCHMARKS.md): retrieval-cli against the libraries it wraps.

A development harness, outside the installed package: it imports retrieval_cli like any user.
This module is the runner (subprocesses, repeats, the table); ``bench/rows.py`` holds each row as
a pair of small functions (ours, direct) kept beside each other so a reader can check that both
sides do the same work, and ``bench/scaling.py`` the scaling curves.

Each row times the same work done by retrieval-cli and by the direct library call (Pyserini,
sentence-transformers, ir-measures, llama-cpp-python), each in a new subprocess so that a JVM
or a model loaded by one side never favours the other and peak memory is each side's own (the
torch rows' children are forks of one process that only imported torch: ``_run_forked``). A row
reports medians over repeats and the ratio retrieval-cli / direct. Nothing here asserts a speed:
the numbers go in the file, misses included.

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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from bench import rows, scaling
from bench.gpu_check import kept_section

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


ROWS = ("bm25", "encode", "mine", "train", "train-defaults", "cross", "llm", "llm-server", "evaluate", "recipe", "scaling")


@dataclass
class BenchConfig:
    """What ``make bench`` measures; the defaults took 17.2 minutes on 2 CPU cores (2026-12-06
    12:05 UTC, warm-ups included; 23.2 on 2026-12-04 before the recipe row ran one strategy and
    scaling one size). Child start-ups are forks or prepared once."""

    trec_dl: Path = SHARED / "trec-dl-2019-passage-pool"  # real data: BM25 and evaluation rows
    small: Path = SHARED / "cranfield"  # encode, mining, training and LLM rows (every side encodes the corpus)
    small_docs: int = 200  # of its passages: the rows that encode it on every side stay a minute or two
    repeats: int = 3
    short_repeats: int = 5  # rows of a few seconds' work (BM25, LLM): a second's noise decided their ratio at 3
    # The default run's one size; the 100k and 1M points come from full-curve runs (BENCH_ARGS),
    # which a default run keeps, each naming its run.
    corpus_sizes: tuple[int, ...] = (10_000,)
    query_counts: tuple[int, ...] = (1_000,)
    workdir: Path | None = None
    only: tuple[str, ...] = ()  # row keys (ROWS); empty: all

    def wants(self, key: str) -> bool:
        return not self.only or key in self.only


@dataclass
class Measure:
    """One side of one row: median seconds over repeats and the largest peak RSS seen."""

    seconds: list[float] = field(default_factory=list)
    peak_mb: float = 0.0
    wall_s: float = 0.0  # the children's whole lives (start-up and imports too): what the run's length is made of
    extras: list[dict[str, Any]] = field(default_factory=list)  # what each repeat returned beside its seconds

    @property
    def extra(self) -> dict[str, Any]:
        """The last repeat's results (negatives, losses, hits: the same in every repeat)."""
        return self.extras[-1] if self.extras else {}

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


# Every case a child can run: the rows' pairs by function name, the scaling stages as scale/STAGE.
CASES: dict[str, Callable[[dict], dict]] = {
    **{name: fn for name, fn in vars(rows).items() if callable(fn) and name.endswith(("_ours", "_direct", "_prepare"))},
    **{f"scale/{stage}": fn for stage, fn in scaling.CASES.items()},
}


def peak_mb() -> float:
    """This process's peak resident memory. Linux's VmHWM belongs to the process's own memory map;
    ``ru_maxrss`` survives exec, so a child would report at least its parent's size at the fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measured(case: str, args: dict) -> dict[str, Any]:
    """What a child reports: the case's result and the child's own peak memory (or, where the case
    ran its work in processes of its own and says so, the largest of theirs and its own)."""
    result = CASES[case](args)
    return {**result, "peak_mb": max(peak_mb(), float(result.pop("processes_peak_mb", 0.0)))}


def _child(case: str, args: dict) -> None:
    sys.stdout.write("\nRESULT " + json.dumps(_measured(case, args), default=str) + "\n")


def _forked_child(case: str, args: dict, results: Any, log: str) -> None:
    """``_child`` in a fork of the forkserver: output to ``log``, the result (or the traceback) down the pipe."""
    import traceback

    with open(log, "w", encoding="utf-8") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    try:
        results.send(_measured(case, args))
    except BaseException:  # noqa: BLE001  (the parent raises it, with the child's own traceback)
        results.send({"error": traceback.format_exc()})


# ---- the parent: subprocesses, repeats, the table ---------------------------------------------

CHILD_ENV = {"TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}


def _run_forked(case: str, args: dict, work: Path) -> dict[str, Any]:
    """One child forked from multiprocessing's forkserver, which imported torch and
    sentence-transformers once and has started no thread, JVM or model. Both sides of these rows
    import them before the clock, so a fork starts where a fresh process would after its imports,
    without the start-up (9 s a child here). Its peak counts the library pages it touches: pages
    only the imports touched stay unmapped in a fork, so mining 300 passages peaked at 967-1036 MB
    forked against 1034-1183 MB fresh, on both sides alike; seconds agreed (ours / direct, three
    alternations each: forked 18.0-23.9 / 18.4-20.5 s, fresh 17.0-19.5 / 17.1-20.4 s)."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(rows.PRELOAD))  # read when the server starts: the first fork
    receive, send = context.Pipe(duplex=False)
    log = work / "child.log"
    child = context.Process(target=_forked_child, args=(case, args, send, str(log)))
    child.start()
    send.close()
    try:
        result = receive.recv()
    except EOFError:  # it died without a word (killed, out of memory)
        result = {}
    child.join()
    result = result or {"error": f"the child ended with exit {child.exitcode} and no result"}
    if "error" in result:
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.is_file() else ""
        raise RuntimeError(f"benchmark {case} failed: {tail}\n{result['error']}")
    return result


def _run_fresh(case: str, args: dict) -> dict[str, Any]:
    """One child as a fresh interpreter (``python -m bench --child``)."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--child", case, json.dumps(args)],
        capture_output=True, text=True, cwd=REPO,  # -m bench: the harness lives in the repository; CHILD_ENV is in os.environ
    )
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark {case} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def run_case(case: str, args: dict, repeats: int, workdir: Path, measure: Measure | None = None, fork: bool = False) -> Measure:
    """Run ``case`` ``repeats`` times, each in a new process (a fresh interpreter, or with ``fork``
    a fork of the preloaded forkserver) and a fresh folder, adding to ``measure``."""
    measure = measure if measure is not None else Measure()
    os.environ.update(CHILD_ENV)  # before the forkserver starts: its forks inherit its environment
    for i in range(len(measure.seconds), len(measure.seconds) + repeats):
        work = workdir / f"{case}-{i}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        started = time.perf_counter()
        child_args = {**args, "work": str(work)}
        result = _run_forked(case, child_args, work) if fork else _run_fresh(case, child_args)
        measure.wall_s += time.perf_counter() - started
        measure.seconds.append(float(result.pop("seconds")))
        measure.peak_mb = max(measure.peak_mb, float(result.pop("peak_mb")))
        measure.extras.append(result)
        shutil.rmtree(work, ignore_errors=True)
    return measure


@contextmanager
def llama_server() -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on the packaged GGUF, on a free local port."""
    import socket
    import urllib.request

    from retrieval_cli import llm

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(llm.packaged_gguf()), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--n_threads", str(os.cpu_count() or 1)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("llama_cpp.server did not start (pip install 'llama-cpp-python[server]')")
                time.sleep(0.3)
        # One completion before either side: the first request after a start pays for cold caches.
        warm = json.dumps({"prompt": "Hello", "max_tokens": 4}).encode()
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=warm,
                                                      headers={"Content-Type": "application/json"}), timeout=120).read()
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


def _overlap(a: dict[str, list[str]], b: dict[str, list[str]]) -> float:
    """Mean Jaccard overlap of two {query: negatives} maps over the queries both have. Two empty
    choices agree (1.0): at depth 5 on the TREC-DL pool, 11 of 36 queries have every candidate
    judged relevant and no negative on either side, which read as 0 and put 0.694 in the table
    where every query agreed."""
    common = set(a) & set(b)
    if not common:
        return float("nan")
    return statistics.mean(
        len(set(a[q]) & set(b[q])) / len(set(a[q]) | set(b[q])) if a[q] or b[q] else 1.0 for q in common
    )


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


def scale(config: BenchConfig, workdir: Path, progress: Callable[[str], None], points: list[dict[str, Any]],
          updated: Callable[[], None] = lambda: None, run: str = "") -> list[dict[str, Any]]:
    """The scaling points, appended to ``points`` as each is measured (``updated`` hears each): per
    corpus size, the corpus written once, imported and indexed in the first query count's cell;
    mining and evaluation in every cell. Each stage is its own process."""
    counts = sorted(config.query_counts)
    for docs in sorted(config.corpus_sizes):
        root = workdir / f"scale-{docs}"
        shutil.rmtree(root, ignore_errors=True)
        progress(f"scaling: writing {docs:,} passages, up to {counts[-1]:,} queries")
        folders = scaling.write_corpus(root / "beir", docs, counts)
        for n, folder in folders.items():
            args = {"ws": str(root / "ws"), "folder": str(folder), "name": f"q{n}"}
            for stage in scaling.STAGES:
                if stage == "dense index":  # its vectors, seeded by a process of their own (not timed, not counted)
                    run_case(f"scale/{scaling.SEED}", args, 1, workdir)
                progress(f"scaling: {stage}, {docs:,} passages, {n:,} queries")
                measure = run_case(f"scale/{stage}", args, 1, workdir)
                first_cell = n == counts[0]
                if first_cell or scaling.STAGES[stage][0] == "both":  # later cells link or reuse the indexes
                    points.append({"stage": stage, "docs": docs, "queries": n, "seconds": measure.median,
                                   "peak_mb": measure.peak_mb, "index_mb": measure.extra.get("index_mb"), "wall_s": measure.wall_s,
                                   "run": run})
                    progress(f"scaling: {stage}, {docs:,} x {n:,}: {measure.median:.2f} s, {measure.peak_mb:.0f} MB")
                    updated()
        shutil.rmtree(root, ignore_errors=True)
    return points


def run_all(
    config: BenchConfig, progress: Callable[[str], None] = lambda _: None, updated: Callable[[dict[str, Any]], None] = lambda _: None,
) -> dict[str, Any]:
    """Every row; returns the numbers ``to_markdown`` lays out. ``updated`` hears the results so far
    after each row and point, so a run stopped early (or one that fails late) keeps what it measured."""
    workdir = Path(config.workdir or tempfile.mkdtemp(prefix="rcli-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())  # names this run's rows and points
    table: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []

    def results(done: bool = False) -> dict[str, Any]:
        fits = [scaling.fit(points, stage) for stage in scaling.STAGES] if points else []
        return {"rows": table, "scaling": points, "fits": fits, "machine": machine(), "complete": done, "started": started}

    small = rows.subset(config.small, config.small_docs, workdir / "small")
    small_label = f"{config.small.name}, {config.small_docs} passages"

    def pair(
        label: str, case: str, args: dict, goal: str, note: Callable[[Measure, Measure], str] = lambda a, b: "",
        key: str = "", direct: dict | None = None, direct_case: str = "", repeats: int = 0, prepare: bool = False,
    ) -> Measure | None:
        """One row: ``case``_ours against ``case``_direct (or ``direct_case`` with ``direct`` overriding
        args), ``repeats`` times (0: the configured number); with ``prepare``, ``case``_prepare first,
        once, into a folder both sides' children copy from (``rows.prepared_workspace``)."""
        if not config.wants(key or case):
            return None
        repeats = repeats or config.repeats
        fork = (key or case) in rows.FORKED
        if prepare:
            args = {**args, "prepared": str(workdir / f"prepared-{key or case}")}
            shutil.rmtree(args["prepared"], ignore_errors=True)
            progress(f"{label}: preparing its inputs")
            run_case(f"{case}_prepare", args, 1, workdir, fork=fork)
        # One untimed run of the direct side first: the row's first process reads its data, model
        # and libraries from disk, and that cold run was always ours, the slowest of its row in 6 of
        # 10 rows (2026-12-06), which a median of 3 turns into a bias. Then the sides alternate
        # (ours, direct, ours, ...): the machine's speed drifts over minutes (runs of one encode
        # spread 50-54 s here), and alternating gives both sides the same drift.
        direct_name, direct_args = direct_case or f"{case}_direct", {**args, **(direct or {})}
        if repeats > 1:
            progress(f"{label}: warm-up (direct, untimed)")
            run_case(direct_name, direct_args, 1, workdir, fork=fork)
        ours, direct_side = Measure(), Measure()
        for repeat in range(repeats):
            progress(f"{label}: retrieval-cli, then direct ({repeat + 1}/{repeats})")
            run_case(f"{case}_ours", args, 1, workdir, ours, fork=fork)
            run_case(direct_name, direct_args, 1, workdir, direct_side, fork=fork)
        # The machine's noise, beside the ratio: each ours run against the direct run after it.
        pairs = [a / b for a, b in zip(ours.seconds, direct_side.seconds)]
        table.append({
            "row": label, "ours_runs": ours.seconds, "direct_runs": direct_side.seconds,
            "ours_s": ours.median, "direct_s": direct_side.median, "ratio": ours.median / direct_side.median,
            "ours_mb": ours.peak_mb, "direct_mb": direct_side.peak_mb, "goal": goal,
            "note": "; ".join(part for part in (
                note(ours, direct_side),
                f"run pairs {min(pairs):.2f}-{max(pairs):.2f}" if len(pairs) > 1 else "",
                f"{repeats} run{'s' if repeats > 1 else ''}" if repeats != config.repeats else "",
            ) if part),
            "wall_s": ours.wall_s + direct_side.wall_s, "key": key or case, "run": started,
        })
        updated(results())
        return ours

    pair("BM25 index + search (TREC-DL pool)", "bm25", {"data": str(config.trec_dl)}, "<= 1.15x",
         lambda a, b: f"{a.extra['hits']} / {b.extra['hits']} hits", repeats=config.short_repeats)
    pair(f"Dense encode of the corpus ({small_label})", "encode", {"data": str(small)}, "<= 1.05x")
    pair(f"Dense mining vs mine_hard_negatives ({small_label})", "mine", {"data": str(small)}, "<= 1.05x, less memory",
         lambda a, b: f"negatives overlap (Jaccard) {_overlap(a.extra['negatives'], b.extra['negatives']):.3f}")
    losses = lambda a, b: f"max loss difference {max(abs(x - y) for x, y in zip(a.extra['losses'], b.extra['losses'])):.1e} over {len(a.extra['losses'])} steps"  # noqa: E731
    pair("Bi-encoder training, MNRL (64 Cranfield titles, batch 16, 64 tokens)", "train", {"data": str(small), "queries": 64},
         "<= 1.05x, same losses", losses, prepare=True)
    # Memory at train's defaults (batch 32, 3 negatives, 256 tokens), which turn gradient checkpointing
    # on for a step this big on CPU; the direct script trains without it, as sentence-transformers does.
    # One run a side: the row is about memory (each run takes about 40 s).
    pair("Bi-encoder training at the defaults, peak memory (32 Cranfield titles, 3 negatives, batch 32, 256 tokens)", "train",
         {"data": str(small), "queries": 32, "negatives": 3, "batch_size": 32, "max_seq_length": 256, "defaults": 1},
         "peak <= 6 GB, same losses", losses, key="train-defaults", repeats=1, prepare=True)
    if config.wants("cross"):
        model = rows.make_cross_encoder(workdir / "cross-encoder")
        pair(f"Cross-encoder scoring in mining vs CrossEncoder.predict (TREC-DL pool: 36 queries, {rows.CROSS['depth']} BM25 candidates + grade-3 positives)",
             "cross", {"data": str(config.trec_dl), "model": str(model)}, "<= 1.05x",
             lambda a, b: f"negatives overlap (Jaccard) {_overlap(a.extra['negatives'], b.extra['negatives']):.3f}", prepare=True)
    tokens = lambda a, b: f"{a.extra['tokens']} / {b.extra['tokens']} tokens; {a.extra['tokens'] / a.median:.1f} / {b.extra['tokens'] / b.median:.1f} tok/s"  # noqa: E731
    pair(f"LLM generation, Gemma 3 270M in-process vs llama-cpp-python ({rows.LLM_DOCUMENTS} Cranfield passages)", "llm",
         {"data": str(small)}, "<= 1.05x", tokens, repeats=config.short_repeats)
    if config.wants("llm-server"):
        with llama_server() as url:
            pair(f"LLM generation --concurrency 4 vs 1 against a local llama.cpp server ({rows.LLM_DOCUMENTS} passages)", "llm",
                 {"data": str(small), "llm": f"openai:gemma@{url}", "concurrency": 4}, "< 1.0x (faster)", tokens,
                 key="llm-server", direct={"concurrency": 1}, direct_case="llm_ours")
    run_path = _run_file(config, workdir) if config.wants("evaluate") else Path()
    pair("Evaluate nDCG@10, R@100 (TREC-DL pool)", "evaluate", {"data": str(config.trec_dl), "run": str(run_path)}, "<= 1.1x",
         lambda a, b: "values equal: " + str(all(abs(a.extra["values"][k] - b.extra["values"][k]) < 1e-9 for k in a.extra["values"])))
    if config.wants("recipe"):
        recipe_file = workdir / "bench-recipe.yaml"
        recipe_file.write_text(rows.RECIPE, encoding="utf-8")
        ours = pair("A recipe's fresh run vs the same 11 steps as one direct-library script (synthetic, BM25 negatives)", "recipe",
             {"recipe": str(recipe_file)}, "<= 1.10x", lambda a, b: "nDCG@10 direct: " + ", ".join(f"{k} {v:.3f}" for k, v in b.extra["ndcg"].items()))
        assert ours is not None
        again = statistics.median(e["rerun_seconds"] for e in ours.extras)
        table.append({"row": "Re-run of an unchanged recipe vs its first run", "ours_s": again, "direct_s": ours.median,
                      "ratio": again / ours.median, "ours_mb": None, "direct_mb": None, "goal": "<= 0.05",
                      "note": "direct column: the first run (the recipe row's retrieval-cli side, same process)",
                      "key": "recipe", "run": started})

    if config.wants("scaling"):
        scale(config, workdir, progress, points, lambda: updated(results()), run=started)
    if config.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return results(done=True)


def keep_earlier(previous: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """``current`` plus what ``previous`` (the last BENCHMARKS.json) measured and this run did not:
    rows of the keys this run left out, and scaling points at sizes it did not reach, each still
    naming the run that measured it; the fits are made again over every point. A default run (or
    ``--only bm25``) so leaves the full curve's million-passage points, and the other rows, in place."""
    if not previous:
        return current
    earlier = previous.get("started") or "an earlier run"
    measured = {r.get("key") for r in current["rows"]}
    kept_rows = [{"run": earlier, **r} for r in previous.get("rows", []) if r.get("key") and r["key"] not in measured]
    order = {key: i for i, key in enumerate(ROWS)}
    table = sorted(current["rows"] + kept_rows, key=lambda r: order.get(r.get("key", ""), len(order)))  # stable: a key's rows stay together

    def cell(p: dict[str, Any]) -> tuple[str, int, int]:
        return p["stage"], p["docs"], p["queries"]

    now = {cell(p) for p in current["scaling"]}
    points = current["scaling"] + [{"run": earlier, **p} for p in previous.get("scaling", []) if cell(p) not in now]
    points.sort(key=lambda p: (p["docs"], p["queries"], list(scaling.STAGES).index(p["stage"]) if p["stage"] in scaling.STAGES else 99))
    fits = [scaling.fit(points, stage) for stage in scaling.STAGES] if points else []
    return {**current, "rows": table, "scaling": points, "fits": fits}


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
        f"processes, median of {config.repeats} runs, the two sides alternating after one untimed run of the direct",
        "side (which reads the row's files and libraries from disk first); ratio = retrieval-cli / direct;",
        "\"run pairs\" gives the lowest and highest ratio of one run to the direct run after it: the machine's noise.",
        "The clock covers the work (file reading, model loading, encoding, indexing, search, writing, and",
        "turning hits into Python (id, score) lists), not Python imports or the JVM start, on both sides;",
        "both JVMs get the same options. Peak memory is each process's maximum resident set (imports",
        "included). The recipe row is the exception: `pipeline run` is a command, so both of its sides are",
        "timed from a fresh process, imports included. The " + ", ".join(rows.FORKED[:-1]) + f" and {rows.FORKED[-1]} rows start",
        "each child as a fork of one process that imported torch and sentence-transformers (both sides",
        "import them before the clock); a fork's peak counts only the library pages it touches, about",
        "100-200 MB below a fresh process's on both sides alike (mining 300 passages: 967-1036 MB forked,",
        "1034-1183 MB fresh). The training-defaults row, whose goal is a peak, runs fresh. Every repeat's",
        "seconds are in BENCHMARKS.json.",
        "",
        f"Machine: {m['cpus']} CPUs, {m['platform']}, Python {m['python']}; retrieval-cli {m['retrieval-cli']}, "
        f"torch {m['torch']}, sentence-transformers {m['sentence-transformers']}, pyserini {m['pyserini']}, "
        f"faiss {m['faiss-cpu']}, ir-measures {m['ir-measures']}. "
        + (f"Whole run: {wall / 60:.1f} min." if results.get("complete", True) else f"PARTIAL: written {wall / 60:.1f} min into a run still going or stopped.")
        + (" Rows and points this run did not measure name the run that did."
           if any(scaling.earlier_run(e, results.get("started")) for e in results["rows"] + results.get("scaling", [])) else ""),
        "",
        "| row | retrieval-cli s | direct s | ratio | goal | peak MB (ours / direct) | note |",
        "|---|---|---|---|---|---|---|",
    ]
    this_run = results.get("started")
    for r in results["rows"]:
        memory = f"{_fmt(r['ours_mb'], 0)} / {_fmt(r['direct_mb'], 0)}" if r["ours_mb"] is not None else "-"
        earlier = f"measured by the run of {r['run']}, not this one" if scaling.earlier_run(r, this_run) else ""
        note = "; ".join(part for part in (r["note"], earlier) if part)
        lines.append(f"| {r['row']} | {_fmt(r['ours_s'])} | {_fmt(r['direct_s'])} | {r['ratio']:.3f} | {r['goal']} | {memory} | {note} |")
    if results.get("scaling"):
        lines += ["", *scaling.to_markdown(results["scaling"], results.get("fits", []), this_run)]
    if results.get("costs"):
        lines += scaling.msmarco_bill(results["costs"])
    return "\n".join(lines) + "\n"


COSTS = Path(__file__).resolve().parents[1] / "retrieval_cli" / "pipeline" / "costs.json"


def with_costs(results: dict[str, Any], gpu_json: Path) -> dict[str, Any]:
    """``results`` with the cost tables made from its fits and rows and the last ``make gpu-check``
    (``BENCHMARKS-gpu.json``), which are also written to ``retrieval_cli/pipeline/costs.json``."""
    gpu = earlier_results(gpu_json)
    machine = results.get("machine", {})
    measured = (f"make bench of {results.get('started', '?')} on {machine.get('cpus', '?')} CPU cores"
                + (f"; make gpu-check on {gpu['throughput'].get('device_name', 'a GPU')}" if gpu and gpu.get("throughput") else ""))
    tables = scaling.cost_tables(results.get("fits", []), results.get("rows", []), gpu, measured)
    COSTS.write_text(json.dumps(tables, indent=1) + "\n", encoding="utf-8")
    return {**results, "costs": tables}


def earlier_results(path: Path) -> dict[str, Any] | None:
    """The last run's BENCHMARKS.json, when there is a readable one."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("CASE", "ARGS"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--repeats", type=int, default=BenchConfig.repeats)
    parser.add_argument("--short-repeats", type=int, default=BenchConfig.short_repeats, help="runs of the few-second rows (BM25, LLM)")
    parser.add_argument("--sizes", default=",".join(map(str, BenchConfig.corpus_sizes)), help="corpus sizes of the scaling rows")
    parser.add_argument("--queries", default=",".join(map(str, BenchConfig.query_counts)), help="query counts of the scaling rows")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--only", default="", help="comma-separated rows: " + ", ".join(ROWS))
    options = parser.parse_args(argv)
    if options.child:
        _child(options.child[0], json.loads(options.child[1]))
        return
    unknown = sorted(set(x for x in options.only.split(",") if x) - set(ROWS))
    if unknown:
        raise SystemExit(f"--only: unknown row {unknown[0]!r}; rows are {', '.join(ROWS)}")
    config = BenchConfig(
        repeats=options.repeats, short_repeats=options.short_repeats, corpus_sizes=tuple(int(x) for x in options.sizes.split(",") if x),
        query_counts=tuple(int(x) for x in options.queries.split(",") if x), workdir=options.workdir,
        only=tuple(x for x in options.only.split(",") if x),
    )
    for folder in (config.trec_dl, config.small):
        if not folder.is_dir():
            raise SystemExit(f"benchmarks need {folder} (the project's ../shared/data)")
    started = time.perf_counter()
    # The GPU rows come from `make gpu-check` on a machine that has one: kept, not redrawn here;
    # so are the rows and scaling points of the last run that this one does not measure.
    kept = kept_section(options.out.read_text(encoding="utf-8")) if options.out.is_file() else ""
    previous = earlier_results(options.out.with_suffix(".json"))

    def write(results: dict[str, Any]) -> str:
        results = with_costs(keep_earlier(previous, results), options.out.with_name("BENCHMARKS-gpu.json"))
        wall = time.perf_counter() - started
        text = to_markdown({**results, "wall_s": wall}, config, wall) + ("\n" + kept if kept else "")
        options.out.write_text(text, encoding="utf-8")
        options.out.with_suffix(".json").write_text(json.dumps({**results, "wall_s": wall}, indent=1, default=str) + "\n", encoding="utf-8")
        return text

    results = run_all(config, progress=lambda message: print(f"[bench] {message}", file=sys.stderr, flush=True), updated=write)
    print(write(results))


if __name__ == "__main__":
    main()
