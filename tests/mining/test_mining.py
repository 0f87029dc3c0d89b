"""Negative mining: each selection option against a hand-computed expectation, then the whole
step on the synthetic dataset (mixture counts, exclusion by id, seed determinism, statistics)."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from conftest import interrupting, mine, mine_shard
from retrieval_cli import data as datasets
from retrieval_cli import index as indexing
from retrieval_cli import mining
from retrieval_cli.data import synthetic
from retrieval_cli.errors import InputError
from retrieval_cli.mining import Candidate, MiningConfig, QueryContext
from retrieval_cli.mining import records as negatives
from retrieval_cli.mining import run as mining_run
from retrieval_cli.store import Workspace


def _select(cands, config, pos=10.0, count=10, positives=(), relevant=(), qid="q", taken=()):  # noqa: ANN001, ANN202
    dropped: Counter = Counter()
    context = QueryContext(qid, set(positives), set(relevant), pos)
    sel = mining.select(cands, context, config, count, set(taken), random.Random(0), dropped)
    return [c.doc_id for c in sel.kept], dropped, sel


def _ranked(scores: list[float]) -> list[Candidate]:
    return [Candidate(f"d{r}", r, s, s, r) for r, s in enumerate(scores, start=1)]


def test_window_keeps_ranks_after_range_min_up_to_range_max() -> None:
    cands = _ranked([10 - i for i in range(10)])
    kept, dropped, _ = _select(cands, MiningConfig(range_min=2, range_max=6, sampling="top"))
    assert kept == ["d3", "d4", "d5", "d6"]  # ranks 1-2 skipped, 7-10 past the window
    assert dropped["window"] == 6


def test_absolute_margin_drops_scores_within_m_of_the_positive() -> None:
    cands = _ranked([9.0, 8.0, 7.9, 3.0])
    kept, dropped, _ = _select(cands, MiningConfig(absolute_margin=2.0, range_min=0, sampling="top"), pos=10.0)
    assert kept == ["d3", "d4"]  # 9.0 and 8.0 are >= 10 - 2
    assert dropped["absolute_margin"] == 2


def test_relative_margin_with_positive_scores_is_a_share_of_the_positive() -> None:
    cands = _ranked([9.5, 9.0, 8.99])
    kept, dropped, _ = _select(cands, MiningConfig(relative_margin=0.1, range_min=0, sampling="top"), pos=10.0)
    assert kept == ["d3"]  # threshold 10 - 0.1*10 = 9.0; 9.0 itself is dropped
    assert dropped["relative_margin"] == 2


def test_relative_margin_does_not_flip_for_negative_scores() -> None:
    # Cross-encoder logits are often negative. Positive at -2, r=0.5: threshold -2 - 0.5*2 = -3.
    # A naive pos*(1-r) = -1 would keep -2.5 and -1.5, which score *above* the positive.
    cands = _ranked([-1.5, -2.5, -3.0, -3.1, -7.0])
    kept, dropped, _ = _select(cands, MiningConfig(relative_margin=0.5, range_min=0, sampling="top"), pos=-2.0)
    assert kept == ["d4", "d5"]
    assert dropped["relative_margin"] == 3
    assert mining.relative_threshold(-2.0, 0.5) == pytest.approx(-3.0)
    assert mining.relative_threshold(4.0, 0.25) == pytest.approx(3.0)


def test_max_score_and_filter_order_count_each_drop_once() -> None:
    cands = _ranked([20.0, 12.0, 9.5, 5.0, 4.0])
    kept, dropped, _ = _select(cands, MiningConfig(range_min=1, max_score=11.0, absolute_margin=1.0, sampling="top"), pos=10.0)
    # d1 is outside the window (counted there, not as max_score), d2 > 11, d3 >= 9, d4, d5 kept
    assert kept == ["d4", "d5"]
    assert dropped == Counter({"window": 1, "max_score": 1, "absolute_margin": 1})


def test_exclusion_is_by_id_positives_judged_relevant_self_and_taken() -> None:
    cands = [Candidate(d, r, 1.0) for r, d in enumerate(["p", "rel", "q7", "dup", "twin-of-p", "ok"], start=1)]
    kept, dropped, sel = _select(cands, MiningConfig(range_min=0, sampling="top"), positives={"p"}, relevant={"rel"}, qid="q7", taken={"dup"})
    # "twin-of-p" might have the positive's text; only ids exclude, so it stays.
    assert kept == ["twin-of-p", "ok"]
    assert dropped == Counter({"positive": 1, "judged_relevant": 1, "self": 1, "duplicate": 1})
    assert (sel.eligible, sel.eligible_judged_relevant) == (5, 1)  # all but the positive were eligible
    assert (sel.unexcluded, sel.unexcluded_relevant) == (3, 1)  # without exclusion: rel, twin-of-p, ok


def test_top_and_random_sampling() -> None:
    cands = _ranked([10 - 0.1 * i for i in range(20)])
    top, _, _ = _select(cands, MiningConfig(sampling="top", range_min=0), count=3)
    assert top == ["d1", "d2", "d3"]
    picks = [_select(cands, MiningConfig(sampling="random", range_min=0), count=3)[0] for _ in range(2)]
    assert picks[0] == picks[1]  # same generator seed, same picks
    ranks = [int(d[1:]) for d in picks[0]]
    assert ranks == sorted(ranks) and len(set(ranks)) == 3  # kept in rank order, no repeats


@pytest.mark.parametrize(
    ("text", "num", "expected"),
    [
        ("bm25", None, [("bm25", 4)]),
        ("dense", 7, [("dense", 7)]),
        ("bm25:3,random:1", None, [("bm25", 3), ("random", 1)]),
        ("bm25:3, random:1", 4, [("bm25", 3), ("random", 1)]),
    ],
)
def test_parse_strategy(text: str, num: int | None, expected: list) -> None:
    assert mining.parse_strategy(text, num) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "bm42"}, "unknown strategy 'bm42'"),
        ({"strategy": "bm25:3,random"}, "must be STRATEGY:COUNT"),
        ({"strategy": "bm25:3,random:1", "num_negatives": 5}, "differs from the mixture's total 4"),
        ({"strategy": "bm25:1,bm25:2"}, "appears twice"),
        ({"range_min": 5, "range_max": 5}, "holds no rank"),
        ({"range_max": 8}, "range-min defaults to 10; --range-min 0 keeps the top ranks"),
        ({"depth": 50, "range_max": 100}, "depth 50 is below range-max 100"),
        ({"relative_margin": 1.0}, r"relative-margin must be in \[0, 1\)"),
        ({"absolute_margin": -0.5}, "absolute-margin must be >= 0"),
        ({"strategy": "cross-encoder"}, "needs --cross-encoder"),
        ({"sampling": "best"}, "sampling must be top or random"),
    ],
)
def test_bad_options_fail_before_any_work(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        MiningConfig(**kwargs).check()


# --- the whole step on the synthetic dataset -------------------------------------------------


def _records(artifact) -> list[dict]:  # noqa: ANN001
    return [json.loads(line) for line in artifact.file("negatives.jsonl").read_text().splitlines()]


def test_bm25_negatives_are_the_first_window_survivors(session_ws: Workspace, tiny) -> None:  # noqa: ANN001
    config = MiningConfig(strategy="bm25", range_min=2, range_max=12, num_negatives=3, sampling="top")
    art = mine(session_ws, tiny, config).artifact
    data = datasets.load(tiny)
    index = indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact
    searcher = indexing.open_searcher(session_ws, index)
    records = _records(art)
    assert len(records) == len(data.qrels["train"])
    for record in records:
        qid = record["query_id"]
        hits = searcher.search({qid: data.queries[qid]}, 12)[qid]
        judged = {d for split in data.qrels.values() for d, g in split.get(qid, {}).items() if g > 0}
        # Expected by hand: ranks 3..12, minus the query's judged documents, first three.
        expected = [d for d, _ in hits[2:12] if d not in judged][:3]
        assert [n["doc_id"] for n in record["negatives"]] == expected
        assert all(2 < n["rank"] <= 12 and n["strategy"] == "bm25" for n in record["negatives"])
        assert [p["doc_id"] for p in record["positives"]] == sorted(d for d, g in data.qrels["train"][qid].items() if g >= 1)
    stats = art.summary
    assert stats["processed"] == len(records) and stats["negatives"] == sum(len(r["negatives"]) for r in records)
    assert stats["rank"]["mean"] == pytest.approx(
        sum(n["rank"] for r in records for n in r["negatives"]) / stats["negatives"], abs=1e-4
    )


def test_positive_scores_match_what_the_engine_reports(session_ws: Workspace, tiny) -> None:  # noqa: ANN001
    # A margin compares a candidate's score with the positive's, so both must come from one scale.
    art = mine(session_ws, tiny, MiningConfig(strategy="bm25:2,dense:2", range_max=300, range_min=0, sampling="top")).artifact
    data = datasets.load(tiny)
    searchers = {
        kind: indexing.open_searcher(session_ws, session_ws.inputs_of(art)[f"{kind}_index"]) for kind in ("bm25", "dense")
    }
    for record in _records(art)[:5]:
        qid = record["query_id"]
        for kind, searcher in searchers.items():
            hits = dict(searcher.search({qid: data.queries[qid]}, 300)[qid])
            for p in record["positives"]:
                if p["doc_id"] in hits:
                    assert p["scores"][kind] == pytest.approx(hits[p["doc_id"]], abs=1e-4)


def test_hybrid_negatives_come_from_the_rrf_fusion_of_bm25_and_dense(session_ws: Workspace, tiny) -> None:  # noqa: ANN001
    from retrieval_cli.index import fusion

    config = MiningConfig(strategy="hybrid", range_min=1, range_max=20, num_negatives=3, sampling="top")
    assert config.engines() == {"bm25", "dense"}
    art = mine(session_ws, tiny, config).artifact
    data = datasets.load(tiny)
    searchers = [indexing.open_searcher(session_ws, session_ws.inputs_of(art)[f"{kind}_index"]) for kind in ("bm25", "dense")]
    for record in _records(art)[:6]:
        qid = record["query_id"]
        runs = [s.search({qid: data.queries[qid]}, 20)[qid] for s in searchers]
        fused = fusion.fuse([{qid: r} for r in runs], "rrf", depth=20)[qid]
        judged = {d for split in data.qrels.values() for d, g in split.get(qid, {}).items() if g > 0}
        # By hand: the fused ranks 2..20, minus the judged documents, first three, with RRF scores.
        expected = [(r, d, sc) for r, (d, sc) in enumerate(fused, start=1) if r > 1 and d not in judged][:3]
        assert [(n["rank"], n["doc_id"]) for n in record["negatives"]] == [(r, d) for r, d, _ in expected]
        assert [n["score"] for n in record["negatives"]] == pytest.approx([sc for _, _, sc in expected], abs=1e-9)
        for p in record["positives"]:
            assert p["scores"]["hybrid"] == pytest.approx(fusion.rrf_score(p["doc_id"], runs), abs=1e-9)
    assert negatives.label(art.config) == "hybrid (1,20]"


def test_mixture_counts_and_no_repeats(session_ws: Workspace, tiny) -> None:  # noqa: ANN001
    art = mine(session_ws, tiny, MiningConfig(strategy="bm25:3,random:2", range_max=50, range_min=0, sampling="top")).artifact
    for record in _records(art):
        by = Counter(n["strategy"] for n in record["negatives"])
        assert by["random"] == 2 and by["bm25"] <= 3
        ids = [n["doc_id"] for n in record["negatives"]]
        assert len(ids) == len(set(ids))
        assert not set(ids) & {p["doc_id"] for p in record["positives"]}
        assert all(n["rank"] is None and n["score"] is None for n in record["negatives"] if n["strategy"] == "random")
    assert art.summary["by_strategy"]["random"] == 2 * art.summary["processed"]


def test_same_seed_gives_byte_identical_negatives(tmp_path, tiny) -> None:  # noqa: ANN001
    config = dict(strategy="bm25:2,random:2", sampling="random", range_max=40, seed=5)
    outputs = []
    for name in ("a", "b"):
        ws = Workspace(tmp_path / name)
        data = datasets.save(ws, datasets.load(tiny), "tiny", {"source": "copy"}).artifact
        art = mine(ws, data, MiningConfig(**config)).artifact
        outputs.append((art.file("negatives.jsonl").read_bytes(), art.file("stats.json").read_bytes(), art.version))
    assert outputs[0] == outputs[1]
    other = mine(Workspace(tmp_path / "a"), Workspace(tmp_path / "a").resolve("datasets/tiny"), MiningConfig(**{**config, "seed": 6})).artifact
    assert other.file("negatives.jsonl").read_bytes() != outputs[0][0]


def test_judged_documents_are_excluded_and_feed_the_false_negative_estimate(ws: Workspace) -> None:
    # Train queries; another split judges, for each, its best-ranked non-positive BM25 hit
    # relevant (grade 1) and one other document non-relevant (grade 0).
    data = synthetic.generate(synthetic.SynthConfig(documents=150, test_queries=10, train_queries=12, seed=3))
    train = data.qrels["train"]
    plain = datasets.save(ws, data, "five", {"source": "test"}).artifact
    index = indexing.build_bm25(ws, plain, indexing.BM25Config()).artifact
    hits = indexing.open_searcher(ws, index).search({q: data.queries[q] for q in train}, 150)
    extra = {}
    for qid in train:
        ranked = [d for d, _ in hits[qid] if d not in train[qid]]
        if len(ranked) >= 2:  # paraphrase queries may share no term with any other document
            extra[qid] = {ranked[0]: 1, ranked[1]: 0}
    assert len(extra) >= 3
    data.qrels["extra"] = extra
    judged = datasets.save(ws, data, "five-judged", {"source": "test"}).artifact
    result = mine(ws, judged, MiningConfig(strategy="bm25", range_max=150, num_negatives=5, range_min=0, sampling="top")).artifact
    for record in _records(result):
        if record["query_id"] not in extra:
            continue
        ids = [n["doc_id"] for n in record["negatives"]]
        relevant, nonrelevant = sorted(extra[record["query_id"]], key=lambda d: -extra[record["query_id"]][d])
        assert relevant not in ids  # excluded by id
        assert ids[0] == nonrelevant  # a judged non-relevant document is a fine negative
    stats = result.summary
    assert stats["dropped"]["judged_relevant"] == len(extra)
    assert stats["judged_kept"] == len(extra)  # the grade-0 ones
    fn = stats["false_negative_estimate"]
    assert fn["queries"] == len(extra) and fn["eligible_judged_relevant"] == len(extra)
    assert fn["eligible_rate"] == pytest.approx(len(extra) / fn["eligible"], abs=1e-4)
    # Each relevant document was its query's best candidate, so the top-5 selection would keep it.
    assert fn["judged_relevant"] == len(extra)
    assert fn["rate"] == pytest.approx(len(extra) / fn["would_keep"], abs=1e-4)


def test_queries_without_positives_are_skipped_and_counted(ws: Workspace) -> None:
    data = synthetic.generate(synthetic.SynthConfig(documents=80, test_queries=6, train_queries=4, seed=2))
    first = sorted(data.qrels["train"])[0]
    data.qrels["train"][first] = {d: 0 for d in data.qrels["train"][first]}  # judged, none relevant
    art = datasets.save(ws, data, "nopos", {"source": "test"}).artifact
    stats = mine(ws, art, MiningConfig(strategy="random", num_negatives=2, range_min=0, sampling="top")).artifact.summary
    assert stats["skipped_without_positives"] == 1 and stats["processed"] == 3


def test_unknown_split_is_one_clear_error(session_ws: Workspace, tiny) -> None:  # noqa: ANN001
    with pytest.raises(InputError, match="has no split 'dev'"):
        mine(session_ws, tiny, MiningConfig(split="dev", range_min=0, sampling="top"))


def test_max_positives_holds_out_judged_documents_for_the_estimate(ws: Workspace) -> None:
    # Eight documents all matching the query; three judged relevant (grades 2, 1, 1).
    corpus = {f"d{i}": {"title": "", "text": f"rivers report number {i} " + "filler " * i} for i in range(1, 9)}
    qrels = {"train": {"q1": {"d1": 2, "d2": 1, "d3": 1}}}
    art = datasets.save(ws, datasets.Dataset(corpus, {"q1": "rivers"}, qrels), "eight", {"source": "test"}).artifact
    config = MiningConfig(strategy="bm25", range_max=8, num_negatives=4, max_positives=1, range_min=0, sampling="top")
    result = mine(ws, art, config).artifact
    record = _records(result)[0]
    assert [p["doc_id"] for p in record["positives"]] == ["d1"]  # the highest grade
    # BM25 with one matching term: shorter documents score higher, so the ranking is d1..d8.
    assert [n["doc_id"] for n in record["negatives"]] == ["d4", "d5", "d6", "d7"]
    fn = result.summary["false_negative_estimate"]
    # 7 eligible candidates (all but the positive), of which d2 and d3 are held-out positives;
    # without exclusion the top-4 selection would have kept d2, d3, d4, d5: 2 of 4 relevant.
    assert (fn["queries"], fn["eligible"], fn["eligible_judged_relevant"]) == (1, 7, 2)
    assert (fn["would_keep"], fn["judged_relevant"], fn["rate"]) == (4, 2, 0.5)
    assert fn["eligible_rate"] == pytest.approx(2 / 7, abs=1e-4)
    everything = mine(ws, art, MiningConfig(strategy="bm25", range_max=8, num_negatives=4, range_min=0, sampling="top")).artifact
    assert [p["doc_id"] for p in _records(everything)[0]["positives"]] == ["d1", "d2", "d3"]
    assert everything.summary["false_negative_estimate"]["rate"] is None  # nothing judged beyond the positives


def test_sharded_mining_equals_unsharded_byte_for_byte_and_interrupted_runs_keep_chunks(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    data = synthetic.generate(synthetic.SynthConfig(documents=150, test_queries=4, train_queries=23, seed=21))
    # bm25 + random: chunk-independent randomness; 23 queries in chunks of 5 make 5 chunks
    config = MiningConfig(strategy="bm25:2,random:1", range_max=30, sampling="random", chunk_size=5, range_min=0)
    made = {}
    for how in ("whole", "sharded"):
        ws = Workspace(tmp_path / how)
        art = datasets.save(ws, data, "m", {"source": "test"}).artifact
        if how == "sharded":
            shards = [mine_shard(ws, art, config, (i, 3)) for i in range(3)]
            assert sorted(p.name for p in shards[0].where.iterdir()) == [f"chunk-{c}" for c in range(5)]
            calls = []
            monkeypatch.setattr(mining_run, "_mine_chunk", lambda *a, **k: calls.append(1))  # assembling mines nothing
        made[how] = mine(ws, art, config).artifact
    whole, sharded = made["whole"], made["sharded"]
    assert whole.version == sharded.version and not calls
    for name in ("negatives.jsonl", "stats.json"):
        assert whole.file(name).read_bytes() == sharded.file(name).read_bytes(), name
    assert not shards[0].where.exists()  # the artifact supersedes its chunks
    monkeypatch.undo()

    # Interrupted after two chunks: the re-run mines only the other three.
    ws = Workspace(tmp_path / "cut")
    art = datasets.save(ws, data, "m", {"source": "test"}).artifact
    real, mined = mining_run._mine_chunk, []

    monkeypatch.setattr(mining_run, "_mine_chunk", interrupting(real, mined, after=2))
    with pytest.raises(KeyboardInterrupt):
        mine(ws, art, config)
    assert ws.artifacts("negatives") == []
    mined.clear()
    monkeypatch.setattr(mining_run, "_mine_chunk", lambda *a, **k: (mined.append(1), real(*a, **k))[1])
    again = mine(ws, art, config).artifact
    assert len(mined) == 3 and again.file("negatives.jsonl").read_bytes() == whole.file("negatives.jsonl").read_bytes()


@pytest.mark.parametrize("judged_self, policy", [(True, "kept"), (False, "dropped")])
def test_mining_and_evaluation_share_one_self_hit_policy(ws: Workspace, judged_self: bool, policy: str) -> None:
    """Cranfield-like ids that merely coincide (query 2 judged relevant to document 2) keep the
    document with the query's id; ArguAna-like queries that are corpus documents drop it, in
    the negatives and the evaluation alike, and both manifests say which."""
    from retrieval_cli import evaluate as evaluation
    from retrieval_cli.index import ensure

    corpus = {str(i): {"title": "", "text": f"river bank report {i}"} for i in range(1, 9)}
    qrels = {"1": {"5": 1}, "2": {"2" if judged_self else "6": 1}}
    data = datasets.Dataset(corpus, {"1": "river bank report", "2": "river report"}, {"train": qrels, "test": qrels})
    art = datasets.save(ws, data, f"ids-{policy}", {"s": policy}).artifact
    mined = mine(ws, art, MiningConfig(strategy="bm25", num_negatives=7, range_max=8, range_min=0, sampling="top")).artifact
    record = next(r for r in negatives.read(mined) if r["query_id"] == "1")
    assert ("1" in {n["doc_id"] for n in record["negatives"]}) is (policy == "kept")
    (bm25,) = ensure(ws, art, ["bm25"])
    scored = evaluation.evaluate(ws, index=bm25).artifact
    assert mined.summary["self_hits"] == evaluation.metrics(scored)["self_hits"] == policy
