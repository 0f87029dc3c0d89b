"""The LLM judge of false negatives (UniME-V2's judge; "From Generator to Embedder"; RLHN's
relabelling): any configured LLM is asked whether each kept negative answers its query, and its
answer is read from the probabilities of one token, yes against no, never from free text.

A negative the judge calls relevant with probability above ``judge_threshold`` is dropped (counted
under the ``judge`` filter) or, with ``judge_relabel``, moved to the query's positives. Every
verdict is cached in the workspace (``.cache/judgements``) keyed by the model's fingerprint and
the whole prompt, so a re-run or another strategy over the same pairs asks nothing again. The
query's positives are judged too: on queries judged beyond one document the statistics report the
judge's agreement with the qrels (precision and recall of "relevant"), which says how far to
trust it on the corpus at hand before trusting what it drops.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from retrieval_cli import llm as llmlib
from retrieval_cli.errors import InputError
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Workspace

STAGE = "LLM judge"
PLACEHOLDERS = ("{query}", "{passage}")
PASSAGE_WORDS = 200  # a judged passage is cut to this many words: the prompt fits a small model's context


def passage(text: str) -> str:
    """A document's text as the judge reads it: its first ``PASSAGE_WORDS`` words."""
    return " ".join(text.split()[:PASSAGE_WORDS])


@dataclass(frozen=True)
class Judge:
    """A judge resolved for one mining run: the LLM, its fingerprint, the prompt, the threshold."""

    spec: llmlib.LLMSpec
    fingerprint: str
    prompt: str  # the template, with {query} and {passage}
    threshold: float
    relabel: bool
    device: str = "auto"
    concurrency: int = 1  # parallel requests to a server (an in-process model takes one at a time)
    backend: Callable[[], llmlib.Backend] = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        # Opened once per run, on the first verdict not cached: mining asks chunk by chunk.
        object.__setattr__(self, "backend", functools.cache(lambda: llmlib.open_backend(self.spec, device=self.device)))


def load_prompt(name: str) -> str:
    """The judge's few-shot template (a packaged name or a path); it needs both placeholders."""
    text = llmlib.load_prompt(name, PLACEHOLDERS[0])
    if PLACEHOLDERS[1] not in text:
        raise InputError(f"judge prompt template has no {PLACEHOLDERS[1]} placeholder", path=name)
    return text


def _key(fingerprint: str, prompt: str) -> str:
    return hashlib.sha256(json.dumps({"model": fingerprint, "judge": prompt}, sort_keys=True).encode()).hexdigest()


def verdicts(
    ws: Workspace, judge: Judge, pairs: list[tuple[str, str]], texts: Callable[[str, str], tuple[str, str]], progress: Progress = silent,
) -> dict[tuple[str, str], float | None]:
    """P(yes) for each (query id, doc id) pair, cached ones first; None where the model gave
    neither answer any probability (or the request failed). ``texts`` gives a pair's (query,
    passage). The model is loaded only when some pair is not cached."""
    cache = ws.cache("judgements")
    prompts = {}
    for pair in pairs:
        query, text = texts(*pair)
        prompts[pair] = judge.prompt.replace("{query}", query).replace("{passage}", text)
    out: dict[tuple[str, str], float | None] = {}
    todo = []
    for pair, prompt in prompts.items():
        entry = cache.entry(_key(judge.fingerprint, prompt)).load()
        if entry is None:
            todo.append(pair)
        else:
            out[pair] = entry.data["p_yes"]
    progress(STAGE, len(out), len(pairs))
    if not todo:
        return out
    backend = judge.backend()

    def ask(pair: tuple[str, str]) -> tuple[tuple[str, str], float | None]:
        return pair, backend.yes_probability(prompts[pair])

    with ThreadPoolExecutor(max_workers=judge.concurrency if backend.parallel else 1) as pool:
        for pair, p in pool.map(ask, todo):
            if p is not None:
                cache.entry(_key(judge.fingerprint, prompts[pair])).store({"p_yes": p})
            out[pair] = p
            progress(STAGE, len(out), len(pairs))
    return out


def apply(record: dict[str, Any], found: dict[tuple[str, str], float | None], judge: Judge) -> Counter:
    """Mark each kept negative of ``record`` with the judge's P(yes) and drop (or relabel) those
    above the threshold, in place. Counts: judged, dropped, relabelled, failed."""
    qid = record["query_id"]
    counts: Counter = Counter()
    kept = []
    for n in record["negatives"]:
        if not n["doc_id"]:
            kept.append(n)
            continue
        p = found.get((qid, n["doc_id"]))
        n["judge"] = p
        counts["judged"] += 1
        counts["failed"] += p is None
        if p is not None and p > judge.threshold:
            if judge.relabel:
                counts["relabelled"] += 1
                record["positives"].append(_as_positive(n, record["positives"]))
            else:
                counts["dropped"] += 1
            continue
        kept.append(n)
    record["negatives"] = kept
    return counts


def agreement(record: dict[str, Any], found: dict[tuple[str, str], float | None], judge: Judge, judged: dict[str, int], level: int) -> Counter:
    """The judge against the qrels on one query's judged documents among its positives and the
    negatives it was shown: tp, fp, fn, tn of calling a document relevant."""
    qid = record["query_id"]
    cells: Counter = Counter()
    shown = [p["doc_id"] for p in record["positives"] if not p.get("relabelled")] + [n["doc_id"] for n in record["negatives"] if n["doc_id"]]
    for doc_id in shown:
        p = found.get((qid, doc_id))
        if p is None or doc_id not in judged:
            continue
        said, truth = p > judge.threshold, judged[doc_id] >= level
        cells["tp" if said and truth else "fp" if said else "fn" if truth else "tn"] += 1
    return cells


def _as_positive(negative: dict[str, Any], positives: list[dict[str, Any]]) -> dict[str, Any]:
    """A relabelled negative as a positive entry: its scores under the scorers the others carry."""
    scorers = positives[0]["scores"] if positives else {}
    scores = {k: (negative["ce_score"] if k == "cross-encoder" else negative["score"]) for k in scorers}
    return {"doc_id": negative["doc_id"], "scores": scores, "relabelled": True, "judge": negative.get("judge")}
