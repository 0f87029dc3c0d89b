from __future__ import annotations

import pytest

from conftest import mine
from retrieval_cli import data as datasets
from retrieval_cli.derive import pseudo_queries as generation
from retrieval_cli.errors import InputError
from retrieval_cli.mining import MiningConfig
from retrieval_cli.mining import records as negatives
from retrieval_cli.store import Workspace
from retrieval_cli.training.dev_evaluator import dev_corpus

CORPUS = {
    "d1": {"title": "Flow over a swept wing", "text": "We measure lift. The wing is swept back at forty degrees."},
    "d2": {"title": "flow  over a SWEPT wing", "text": "A second report with the same title. It has two sentences."},
    "d3": {"title": "Heat", "text": "Short title document. Only words here."},
    "d4": {"title": "Boundary layer transition on cones", "text": "One sentence only without a break"},
}


def _source(ws: Workspace) -> object:
    data = datasets.Dataset(dict(CORPUS), {"t1": "lift of wings"}, {"test": {"t1": {"d1": 1}}})
    return datasets.save(ws, data, "mini", {"source": "test"}).artifact


def test_title_queries_merge_identical_titles_and_skip_short_ones() -> None:
    made = generation.title_queries(CORPUS, min_words=3)
    assert made == [
        ("title-d1", "Flow over a swept wing", ["d1", "d2"]),  # same title up to case and spacing
        ("title-d4", "Boundary layer transition on cones", ["d4"]),
    ]  # "Heat" has fewer than 3 words


def test_ict_draws_one_sentence_per_multi_sentence_document() -> None:
    made = generation.ict_queries(CORPUS, min_words=3, seed=1)
    assert [m[0] for m in made] == ["ict-d1", "ict-d2", "ict-d3"]  # d4 has one sentence
    for qid, sentence, positives in made:
        doc = positives[0]
        assert qid == f"ict-{doc}" and sentence in generation.sentences(CORPUS[doc]["text"])
        assert len(sentence.split()) >= 3
    assert made == generation.ict_queries(CORPUS, min_words=3, seed=1)
    assert generation.sentences("A b. C d? E f! g") == ["A b.", "C d?", "E f!", "g"]


def test_generated_dataset_adds_a_train_split_and_keeps_the_rest(ws: Workspace) -> None:
    source = _source(ws)
    result = generation.generate_queries(ws, source, generation.QueryGenConfig(method="title"))
    data = datasets.load(result.artifact)
    assert data.qrels["test"] == {"t1": {"d1": 1}} and data.corpus == CORPUS
    assert data.qrels["train"] == {"title-d1": {"d1": 1, "d2": 1}, "title-d4": {"d4": 1}}
    assert data.queries["title-d4"] == "Boundary layer transition on cones"
    assert result.artifact.name == "mini-title"
    assert generation.generate_queries(ws, source, generation.QueryGenConfig(method="title")).reused
    sampled = generation.generate_queries(ws, source, generation.QueryGenConfig(method="ict", max_queries=2), name="mini-ict2")
    assert len(datasets.load(sampled.artifact).qrels["train"]) == 2


def test_existing_split_and_bad_options_are_clear_errors(ws: Workspace) -> None:
    source = _source(ws)
    with pytest.raises(InputError, match="already has a 'test' split"):
        generation.generate_queries(ws, source, generation.QueryGenConfig(split="test"))
    with pytest.raises(InputError, match="method must be one of title, ict"):
        generation.QueryGenConfig(method="llm2").check()
    with pytest.raises(InputError, match="split name"):
        generation.QueryGenConfig(split="../x").check()
    with pytest.raises(InputError, match="no title queries could be made"):
        generation.generate_queries(ws, source, generation.QueryGenConfig(min_words=50))
    assert not list((ws.root / "datasets").glob("mini-title*"))  # nothing half-written


def test_pseudo_queries_of_a_level_2_collection_are_judged_at_level_1(ws: Workspace) -> None:
    corpus = {f"d{i}": {"title": f"title number {i} here", "text": f"body text {i}"} for i in range(6)}
    source = datasets.save(ws, datasets.Dataset(corpus, {"q": "body"}, {"test": {"q": {"d0": 2}}}, relevance_level=2), "dl", {"s": 1}).artifact
    made = generation.generate_queries(ws, source, generation.QueryGenConfig(method="title", min_words=2)).artifact
    data = datasets.load(made)
    assert (data.level("train"), data.level("test")) == (1, 2)  # positives graded 1 count in their own split
    assert made.summary["splits"]["train"]["relevant"] == 6 and made.config["split_levels"] == {"train": 1}


def test_a_copied_query_is_hidden_from_its_positive_in_training_rows(ws: Workspace) -> None:
    """With --hide-query, title queries train against their documents without the title, so the
    loss cannot be met by finding the query's string in the positive; by default it stays."""
    corpus = {
        "d1": {"title": "Swept wing flow", "text": "swept  WING flow . We measure lift on the wing."},  # Cranfield repeats it
        "d2": {"title": "Laminar boundary layers", "text": "Transition happens early on cones."},
        "d3": {"title": "Heat transfer in slabs", "text": "A slab heated on one side."},
    }
    source = datasets.save(ws, datasets.Dataset(corpus, {}, {}), "wings", {"s": 1}).artifact
    hidden = generation.generate_queries(ws, source, generation.QueryGenConfig(min_words=2, hide_query=True)).artifact
    kept = generation.generate_queries(ws, source, generation.QueryGenConfig(min_words=2, hide_query=False)).artifact
    assert hidden.config["hidden_query_splits"] == ["train"] and "hidden_query_splits" not in kept.config
    assert hidden.version != kept.version
    config = MiningConfig(strategy="random", num_negatives=1, range_min=0, sampling="top")
    positives = {}
    for art in (hidden, kept):
        rows, _, _ = negatives.rows(ws, mine(ws, art, config).artifact, "triplet")
        positives[art.version] = {r["anchor"]: r["positive"] for r in rows}
    assert positives[hidden.version]["Swept wing flow"] == ". We measure lift on the wing."
    assert positives[hidden.version]["Laminar boundary layers"] == "Transition happens early on cones."
    assert positives[kept.version]["Swept wing flow"] == "Swept wing flow swept  WING flow . We measure lift on the wing."


def test_without_query_removes_every_occurrence_and_never_empties_a_text() -> None:
    assert datasets.without_query("Flow  over a\nWING. more on the wing flow over a wing", "flow over a wing") == ". more on the wing"
    assert datasets.without_query("nothing in common", "flow over a wing") == "nothing in common"
    assert datasets.without_query("Flow over a wing", "flow over a wing") == "Flow over a wing"  # nothing would be left
    assert datasets.without_query("a (b) c", "(b)") == "a c"  # the query is text, not a pattern


def test_dev_queries_are_held_out_of_training_and_searched_hidden(ws: Workspace) -> None:
    corpus = {f"d{i}": {"title": f"report {i} on wing flutter", "text": f"body {i}. report {i} on wing flutter again"} for i in range(6)}
    source = datasets.save(ws, datasets.Dataset(corpus, {}, {}), "six", {"s": 1}).artifact
    art = generation.generate_queries(ws, source, generation.QueryGenConfig(min_words=2, dev_queries=2, max_queries=3, hide_query=True)).artifact
    data = datasets.load(art)
    train, dev = data.split_qrels("train"), data.split_qrels("dev")
    assert (len(train), len(dev)) == (3, 2) and not set(train) & set(dev)
    assert art.config["hidden_query_splits"] == ["dev", "train"] and data.level("dev") == 1
    ids, texts = dev_corpus(data, "dev", hidden=True)
    for qid, judged in dev.items():
        (doc,) = judged
        assert texts[ids.index(doc)] == f"body {doc[1:]}. again"  # the title and its repeat are gone
    hidden_docs = {d for judged in dev.values() for d in judged}
    assert all(t == data.doc_text(d) for d, t in zip(ids, texts) if d not in hidden_docs)
    assert dev_corpus(data, "dev", hidden=False)[1] == [data.doc_text(d) for d in ids]
    plain = generation.generate_queries(ws, source, generation.QueryGenConfig(min_words=2, max_queries=3)).artifact
    assert "dev" not in datasets.load(plain).qrels
    kept = generation.generate_queries(ws, source, generation.QueryGenConfig(min_words=2, dev_queries=2, hide_query=False)).artifact
    assert "hidden_query_splits" not in kept.config  # dev is searched as training sees its positives: whole
    whole = dict(zip(*dev_corpus(datasets.load(kept), "dev", hidden=False)))
    assert all(whole[d] == datasets.load(kept).doc_text(d) for d in whole)
    with pytest.raises(InputError, match="dev-queries 6 leaves none of the 6 title queries"):
        generation.generate_queries(ws, source, generation.QueryGenConfig(min_words=2, dev_queries=6))
    with pytest.raises(InputError, match="already has a 'dev' split"):
        generation.generate_queries(ws, art, generation.QueryGenConfig(min_words=2, split="more", dev_queries=1))


def test_overlap_figures_say_how_much_queries_copy_their_positives(ws: Workspace) -> None:
    corpus = {
        "d1": {"title": "", "text": "Swept WING flow is measured here."},
        "d2": {"title": "", "text": "Cones and transition."},
    }
    made = [("q1", "swept wing flow", ["d1"]), ("q2", "laminar cones", ["d2"])]
    figures = generation.overlap(made, corpus, hidden=True)
    # q1 is in d1 verbatim (1 of 2); word overlap: q1 3/3, q2 1/2 ("cones") -> (1 + 0.5) / 2.
    assert figures == {"queries": 2, "verbatim": 0.5, "word_overlap": 0.75, "hidden": True}
    source = datasets.save(ws, datasets.Dataset(dict(CORPUS), {}, {}), "four", {"s": 1}).artifact
    art = generation.generate_queries(ws, source, generation.QueryGenConfig(min_words=3, hide_query=False)).artifact
    assert art.summary["overlap"] == {"queries": 2, "verbatim": 1.0, "word_overlap": 1.0, "hidden": False}  # titles sit in their documents
