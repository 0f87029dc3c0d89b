from __future__ import annotations

import pytest

from retrieval_cli import data as datasets
from retrieval_cli.derive import pseudo_queries as generation
from retrieval_cli.errors import InputError
from retrieval_cli.store import Workspace

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
