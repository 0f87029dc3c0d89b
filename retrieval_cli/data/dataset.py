"""The Dataset model: a corpus, queries, and graded judgments per split, with the relevance level
that binary measures use (BEIR: score >= 1; TREC-DL: grade >= 2, as ``trec_eval -l 2``). Splits
over one corpus may differ in it: MS MARCO's dev queries are judged at level 1, TREC-DL's at 2."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from retrieval_cli.data.corpus_file import CorpusFile
from retrieval_cli.errors import InputError
from retrieval_cli.store import Artifact

_SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


def check_split_name(split: str) -> str:
    """A split names a file (qrels/<split>.tsv), so it must be a plain file name."""
    if not _SPLIT_NAME.match(split):
        raise InputError(f"split name must be letters, digits, '_', '.' or '-', got {split!r}", field="split")
    return split


@dataclass
class Dataset:
    """A retrieval collection in memory: corpus, queries, and graded judgments per split."""

    corpus: Mapping[str, dict[str, str]]  # doc id -> {"title", "text"}; a dict, or a CorpusFile
    queries: dict[str, str]  # query id -> text
    qrels: dict[str, dict[str, dict[str, int]]]  # split -> query id -> doc id -> grade
    relevance_level: int = 1  # the default level
    name: str = ""
    split_levels: dict[str, int] = field(default_factory=dict)  # splits judged at another level
    # The auto self-hit rule's answer over the whole artifact, when this holds only some splits.
    auto_self_hits: bool | None = None

    def level(self, split: str) -> int:
        """The lowest grade binary measures (and mining's positives) count as relevant in ``split``."""
        return self.split_levels.get(split, self.relevance_level)

    def split_queries(self, split: str) -> dict[str, str]:
        """Queries judged in ``split``, in the order of the queries file."""
        judged = self.split_qrels(split)
        return {qid: text for qid, text in self.queries.items() if qid in judged}

    def split_qrels(self, split: str) -> dict[str, dict[str, int]]:
        if split not in self.qrels:
            known = ", ".join(sorted(self.qrels)) or "none"
            raise InputError(f"dataset '{self.name}' has no split '{split}' (splits: {known})")
        return self.qrels[split]

    def doc_ids(self) -> Sequence[str]:
        """Document ids in corpus order, without building a list when the corpus is on disk."""
        return self.corpus.ids if isinstance(self.corpus, CorpusFile) else list(self.corpus)

    def doc_text(self, doc_id: str, sep: str = " ") -> str:
        """Title and body joined, the text every engine indexes."""
        doc = self.corpus[doc_id]
        return f"{doc.get('title', '')}{sep}{doc['text']}".strip()

    def stats(self, documents: int | None = None) -> dict[str, Any]:
        """Counts for the manifest; ``documents`` when the corpus was streamed to disk, not held."""
        return {
            "documents": len(self.corpus) if documents is None else documents,
            "queries": len(self.queries),
            "splits": {
                split: {
                    "queries": len(judged),
                    "judgments": sum(len(d) for d in judged.values()),
                    "relevant": sum(1 for d in judged.values() for g in d.values() if g >= self.level(split)),
                    **({"relevance_level": self.split_levels[split]} if split in self.split_levels else {}),
                }
                for split, judged in sorted(self.qrels.items())
            },
            "relevance_level": self.relevance_level,
        }


def levels_record(levels: Mapping[str, int | None], default: int) -> dict[str, Any]:
    """The ``split_levels`` a dataset's config records: only splits whose level differs from the
    default (sorted), and nothing at all when none does, so datasets made before per-split levels
    keep their version ids."""
    differing = {s: int(v) for s, v in sorted(levels.items()) if v is not None and int(v) != default}
    return {"split_levels": differing} if differing else {}


def split_level(artifact: Artifact, split: str) -> int:
    """A dataset artifact's relevance level for ``split``, read from its config."""
    config = artifact.config
    return int(config.get("split_levels", {}).get(split, config.get("relevance_level", 1)))


SELF_HITS = ("auto", "drop", "keep")


def drop_self_hits(data: Dataset, policy: str) -> bool:
    """Whether documents whose id equals the query id are dropped, in mining and evaluation alike.

    ``auto`` follows BEIR's ArguAna/Quora convention only where it applies: query ids are also
    corpus ids, yet no qrels pair judges a query's own id relevant, so the query *is* a corpus
    document. Where a collection merely numbers both from 1 (Cranfield judges doc 225 relevant
    to query 225), nothing is dropped.
    """
    if policy not in SELF_HITS:
        raise InputError(f"self-hits must be auto, drop or keep, got {policy!r}", field="self_hits")
    if policy != "auto":
        return policy == "drop"
    if data.auto_self_hits is not None:  # decided when the dataset was loaded, over every split
        return data.auto_self_hits
    judgments = ((q, d, g) for judged in data.qrels.values() for q, docs in judged.items() for d, g in docs.items())
    return queries_are_documents(any(q in data.corpus for q in data.queries), judgments)


def queries_are_documents(some_query_in_corpus: bool, judgments: Iterable[tuple[str, str, int]]) -> bool:
    """``drop_self_hits``' auto rule: some query id is a corpus id and no (query, doc, grade)
    judgment calls a query's own id relevant. Judgments may be a stream (the load of one split
    reads the others' qrels this way); they are not read when no query is a corpus id."""
    return some_query_in_corpus and not any(q == d and g > 0 for q, d, g in judgments)


def hidden_query_splits(artifact: Artifact) -> set[str]:
    """Splits whose queries were cut from their own positives (title or ICT pseudo-queries) and are
    to be hidden from those positives when training, as recorded by ``generate-queries``."""
    return set(artifact.config.get("hidden_query_splits", []))


def without_query(text: str, query: str) -> str:
    """``text`` with every occurrence of ``query`` (case and spacing ignored) removed: the positive
    a copied query trains against, so the model learns to match meaning rather than copy a string
    (ICT removes its sentence from the context the same way; Lee et al., 2019). A text that would be
    left empty is returned whole."""
    words = query.split()
    if not words:
        return text
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)
    cut, found = pattern.subn(" ", text)
    left = " ".join(cut.split())
    return left if found and left else text


def split_counts(artifact: Artifact, split: str) -> dict[str, Any]:
    """A split's counts from a dataset artifact's manifest, checked without loading the files:
    an InputError naming the splits there are when it is missing."""
    splits = artifact.summary.get("splits", {})
    if splits and split not in splits:
        raise InputError(f"dataset '{artifact.ref}' has no split '{split}' (splits: {', '.join(sorted(splits))})", field="split")
    return splits.get(split, {})
