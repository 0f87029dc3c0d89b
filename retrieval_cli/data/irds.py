"""Datasets named the field's way, through ir_datasets (``msmarco-passage/train/judged``,
``msmarco-passage/trec-dl-2019/judged``, ``beir/scifact/test``, ``nano-beir/fiqa``): several ids
over one corpus become one dataset artifact, the corpus stored once and one split per id, each
with its relevance level. The corpus streams from ir_datasets' iterator to corpus.jsonl (only its
ids are held); ir_datasets downloads and caches the source files itself (``IR_DATASETS_HOME``),
so an import stopped half-way downloads nothing again when rerun."""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from retrieval_cli.data.artifacts import check_new_name, write_corpus, write_queries_and_qrels
from retrieval_cli.data.dataset import Dataset, check_split_name, levels_record
from retrieval_cli.errors import InputError, RetrievalError
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import BuildResult, Workspace
from retrieval_cli.store.artifact import sha256_file

# Suites of ids a recipe names at once (``evaluate_on: {nano: {suite: nano-beir}}``); ``beir``
# takes the datasets a user lists (``datasets: [scifact, nfcorpus]``), each on its test split.
SUITES: dict[str, tuple[str, ...]] = {
    "nano-beir": tuple(f"nano-beir/{name}" for name in (
        "arguana", "climate-fever", "dbpedia-entity", "fever", "fiqa", "hotpotqa", "msmarco", "nfcorpus", "nq", "quora",
        "scidocs", "scifact", "webis-touche2020",
    )),
}

_BEIR_ROOTS = ("beir", "nano-beir")
_TREC_DL = re.compile(r"trec-dl-(\d\d)(\d\d)\Z")


@dataclass(frozen=True)
class IrdsSplit:
    """One ir_datasets id imported as one split of the dataset, at a relevance level."""

    id: str
    split: str
    relevance_level: int

    @classmethod
    def parse(cls, text: str) -> "IrdsSplit":
        """``ID[=SPLIT[,LEVEL]]``: the split's name and level default to ``split_name`` and
        ``default_level`` of the id."""
        dataset_id, sep, rest = text.partition("=")
        dataset_id = dataset_id.strip()
        if not dataset_id:
            raise InputError(f"expected ID[=SPLIT[,LEVEL]], got {text!r}", field="irds")
        split, _, level_text = rest.partition(",")
        level = default_level(dataset_id)
        if level_text:
            try:
                level = int(level_text)
            except ValueError:
                raise InputError(f"{text}: the level must be an integer, got {level_text!r}", field="irds") from None
        return cls(dataset_id, check_split_name(split.strip() if sep and split.strip() else split_name(dataset_id)), level)


def split_name(dataset_id: str) -> str:
    """The split an id becomes: BEIR's own train/dev/test (a BEIR set with none is its test set);
    TREC-DL years as dl19, dl20; MS MARCO's dev/small as dev; otherwise the id's path past the
    collection, without ``judged``."""
    root, *rest = dataset_id.split("/")
    if root in _BEIR_ROOTS:
        return rest[-1] if rest and rest[-1] in ("train", "dev", "test") else "test"
    parts = [p for p in rest if p != "judged"]
    if parts[-2:] == ["dev", "small"]:
        parts = parts[:-1]
    parts = [f"dl{m.group(2)}" if (m := _TREC_DL.match(p)) else p for p in parts]
    return "-".join(parts) or "test"


def default_level(dataset_id: str) -> int:
    """TREC-DL's judgments are graded 0-3 and its binary measures count grade >= 2 (``trec_eval
    -l 2``, as Pyserini's DL19/DL20 regressions); every other set counts grade >= 1."""
    return 2 if any(_TREC_DL.match(part) for part in dataset_id.split("/")) else 1


def default_name(dataset_id: str) -> str:
    """The artifact name an import gets when none is given: the collection (``msmarco-passage``,
    ``beir-scifact``, ``nano-beir-fiqa``)."""
    root, *rest = dataset_id.split("/")
    if root in _BEIR_ROOTS and rest:
        rest = rest[:-1] if rest[-1] in ("train", "dev", "test") else rest
        return "-".join([root, *rest])
    return root


def suite_ids(suite: str, datasets: list[str] | None = None) -> list[str]:
    """The ids a suite names: ``nano-beir``'s 13 sets, or ``beir`` with the datasets listed."""
    if suite == "beir":
        if not datasets:
            raise InputError("suite beir: list the BEIR datasets you have, e.g. datasets: [scifact, nfcorpus]", field="datasets")
        return [_beir_test(name) for name in datasets]
    if suite not in SUITES:
        raise InputError(f"unknown suite '{suite}' (known: beir, {', '.join(sorted(SUITES))})", field="suite")
    if datasets:
        unknown = [d for d in datasets if f"{suite}/{d}" not in SUITES[suite]]
        if unknown:
            raise InputError(f"suite {suite} has no '{unknown[0]}' (it has: {', '.join(i.split('/')[-1] for i in SUITES[suite])})", field="datasets")
        return [f"{suite}/{d}" for d in datasets]
    return list(SUITES[suite])


def _beir_test(name: str) -> str:
    """A BEIR dataset's test set by its ir_datasets id: ``beir/NAME/test`` where BEIR splits the
    set, else ``beir/NAME`` (ArguAna, TREC-COVID: the whole set is the test set)."""
    import ir_datasets

    dataset_id = name if name.startswith("beir/") else f"beir/{name}"
    registered = set(ir_datasets.registry)
    return f"{dataset_id}/test" if f"{dataset_id}/test" in registered else dataset_id


def suite_member(dataset_id: str) -> str:
    """A suite member's short name: the BEIR dataset past the suite, without its split
    (``nano-beir/fiqa``: fiqa; ``beir/scifact/test``: scifact; ``beir/cqadupstack/android``:
    cqadupstack-android)."""
    root, *rest = dataset_id.split("/")
    if root in _BEIR_ROOTS and rest:
        return "-".join(rest[:-1] if rest[-1] in ("train", "dev", "test") and len(rest) > 1 else rest)
    return dataset_id.replace("/", "-")


def load(dataset_id: str) -> Any:
    """The ir_datasets dataset of an id; an unknown id names its close matches."""
    import ir_datasets

    try:
        return ir_datasets.load(dataset_id)
    except KeyError:
        close = difflib.get_close_matches(dataset_id, list(ir_datasets.registry), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see https://ir-datasets.com for the ids"
        raise InputError(f"unknown ir_datasets id '{dataset_id}'{hint}", field="irds") from None


def fingerprint(datasets: dict[str, Any]) -> str:
    """A hash of the files behind the datasets: each download's published md5 (ir_datasets
    checks it on download), a local file's own hash. Nothing is downloaded to compute it."""
    sources: set[str] = set()
    for dataset in datasets.values():
        for handler in (dataset.docs_handler(), dataset.queries_handler(), dataset.qrels_handler()):
            _collect_sources(handler, sources, set(), 0)
    return hashlib.sha256("\n".join(sorted(sources)).encode()).hexdigest()[:16]


def _collect_sources(obj: Any, found: set[str], seen: set[int], depth: int) -> None:
    """Walk a handler's attributes to the downloads and local files it reads."""
    from ir_datasets.util.download import Download, LocalDownload, RequestsDownload

    if depth > 8 or id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, Download):
        if obj.expected_md5:
            found.add(f"md5:{obj.expected_md5}")
            return
    elif isinstance(obj, LocalDownload):
        path = obj.path(force=False)
        found.add(f"sha256:{sha256_file(path)}" if path.is_file() else f"path:{path}")
        return
    elif isinstance(obj, RequestsDownload):
        found.add(f"url:{obj.url}")
        return
    children = vars(obj).values() if hasattr(obj, "__dict__") else obj if isinstance(obj, (list, tuple)) else ()
    for child in children:
        if isinstance(child, (list, tuple)) or (hasattr(child, "__dict__") and type(child).__module__.startswith("ir_datasets")):
            _collect_sources(child, found, seen, depth + 1)


def import_irds(
    ws: Workspace,
    splits: list[IrdsSplit],
    name: str | None = None,
    *,
    query_field: str = "text",
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Import ir_datasets ids over one corpus as one dataset artifact: the corpus stored once, one
    split per id. ``query_field`` names the query text where a set has several fields (BEIR's
    TREC-COVID: ``text`` is BEIR's query, ``query`` the TREC title). Versioned by the ids, their
    splits and levels, and the files' checksums; reused while they are unchanged."""
    if not splits:
        raise InputError("give at least one ir_datasets id, e.g. msmarco-passage/dev/small", field="irds")
    names = [s.split for s in splits]
    if len(set(names)) != len(names):
        raise InputError(f"split names repeat ({', '.join(names)}): name them with ID=SPLIT", field="irds")
    loaded = {s.id: load(s.id) for s in splits}
    corpus_of = _one_corpus(loaded)
    default = min(s.relevance_level for s in splits)
    record = levels_record({s.split: s.relevance_level for s in splits}, default)
    config = {
        "source": "irds", "ids": {s.id: s.split for s in splits}, "files": fingerprint(loaded), "query_field": query_field,
        "relevance_level": default, **record,
    }

    def build(folder: Path) -> dict[str, object]:
        ids: set[str] = set()
        documents = write_corpus(folder, _documents(splits[0].id, corpus_of, ids, progress))
        if not documents:
            raise InputError(f"{splits[0].id}: empty corpus", field="irds")
        queries: dict[str, str] = {}
        qrels: dict[str, dict[str, dict[str, int]]] = {}
        dropped: dict[str, int] = {}
        for number, split in enumerate(splits):
            progress("read splits", number, len(splits))
            these = _queries(split.id, loaded[split.id], query_field)
            for qid, text in these.items():
                if queries.setdefault(qid, text) != text:
                    raise InputError(f"{split.id}: query '{qid}' has another text in an earlier id's queries", field="irds")
            qrels[split.split], dropped[split.split] = _qrels(split.id, loaded[split.id], these, ids)
        progress("read splits", len(splits), len(splits))
        write_queries_and_qrels(folder, queries, qrels)
        made = Dataset({}, queries, qrels, relevance_level=default, split_levels=record.get("split_levels", {}))
        warnings = [f"{split}: {n} judgments name documents missing from the corpus; dropped (they count in no measure)"
                    for split, n in dropped.items() if n]
        return {**made.stats(documents=documents), "origin": ", ".join(f"irds:{s.id}" for s in splits),
                **({"warnings": warnings} if warnings else {})}

    return ws.build("datasets", check_new_name(name or default_name(splits[0].id)), config, {}, build, force=force)


def _one_corpus(loaded: dict[str, Any]) -> Any:
    """The one corpus every id shares (an artifact holds one); different ones are an error."""
    first_id, first = next(iter(loaded.items()))
    for dataset_id, dataset in loaded.items():
        if not dataset.has_docs():
            raise InputError(f"{dataset_id}: ir_datasets gives no documents for it", field="irds")
        if dataset.has_queries() is False or dataset.has_qrels() is False:
            raise InputError(f"{dataset_id}: ir_datasets gives no queries or judgments for it (a collection alone?)", field="irds")
        same = dataset.docs_handler() is first.docs_handler() or (
            dataset.docs_namespace() is not None and dataset.docs_namespace() == first.docs_namespace())
        if not same:
            raise InputError(f"{dataset_id} searches another corpus than {first_id} ({dataset.docs_namespace()} vs "
                             f"{first.docs_namespace()}); one dataset holds one corpus: import them separately", field="irds")
    return first


def _count(dataset: Any) -> int | None:
    try:
        return dataset.docs_count()
    except Exception:  # noqa: BLE001 - a count is a progress hint; some sets only know it once built
        return None


def _documents(dataset_id: str, dataset: Any, ids: set[str], progress: Progress) -> Iterator[tuple[str, str, str]]:
    """(id, title, text) as ir_datasets streams them; a document's text is its ``text`` field, or
    ``body``, or ir_datasets' default text. ``ids`` collects the ids to check the judgments by."""
    total = _count(dataset)
    progress("write corpus", 0, total)
    fields = dataset.docs_cls()._fields
    body = "text" if "text" in fields else "body" if "body" in fields else None
    for number, doc in enumerate(_reading(dataset_id, dataset.docs_iter()), start=1):
        if doc.doc_id in ids:
            raise InputError(f"{dataset_id}: duplicate document id '{doc.doc_id}'", field="doc_id")
        ids.add(doc.doc_id)
        text = getattr(doc, body) if body else doc.default_text()
        yield doc.doc_id, getattr(doc, "title", "") or "", text or ""
        if number % 100_000 == 0:
            progress("write corpus", number, total)


def _queries(dataset_id: str, dataset: Any, field: str) -> dict[str, str]:
    fields = dataset.queries_cls()._fields
    if field not in fields:
        raise InputError(f"{dataset_id}: queries have no field '{field}' (fields: {', '.join(f for f in fields if f != 'query_id')})",
                         field="query-field")
    queries = {}
    for query in _reading(dataset_id, dataset.queries_iter()):
        text = getattr(query, field)
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{dataset_id}: query '{query.query_id}' has an empty {field}", field="query-field")
        queries[query.query_id] = text
    return queries


def _qrels(dataset_id: str, dataset: Any, queries: dict[str, str], ids: set[str]) -> tuple[dict[str, dict[str, int]], int]:
    """One id's judgments by query; judgments of a document missing from the corpus are dropped
    and counted (the manifest reports them: measures then cannot count them as recall misses)."""
    judged: dict[str, dict[str, int]] = {}
    dropped = 0
    for qrel in _reading(dataset_id, dataset.qrels_iter()):
        if qrel.query_id not in queries:
            raise InputError(f"{dataset_id}: judgment of query '{qrel.query_id}', which its queries lack", field="query-id")
        if qrel.doc_id not in ids:
            dropped += 1
            continue
        seen = judged.setdefault(qrel.query_id, {}).get(qrel.doc_id)
        if seen is not None and seen != int(qrel.relevance):
            raise InputError(f"{dataset_id}: query '{qrel.query_id}' document '{qrel.doc_id}' judged {qrel.relevance} and {seen}", field="qrels")
        judged[qrel.query_id][qrel.doc_id] = int(qrel.relevance)
    if not judged:
        raise InputError(f"{dataset_id}: no judgments of documents in the corpus", field="irds")
    return judged, dropped


def _reading(dataset_id: str, items: Iterator[Any]) -> Iterator[Any]:
    """ir_datasets' iterator with its failures as one line: a file to obtain by hand (ir_datasets
    cannot download some collections), or a download that failed."""
    try:
        yield from items
    except FileNotFoundError as exc:
        raise RetrievalError(f"{dataset_id}: ir_datasets needs {exc.filename or exc}, a file you obtain yourself "
                             f"(https://ir-datasets.com says how); put it there and rerun") from None
    except (InputError, RetrievalError):
        raise
    except Exception as exc:  # noqa: BLE001 - a download or parse failure inside ir_datasets, said once
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RetrievalError(f"{dataset_id}: ir_datasets could not read it ({reason}); offline? ir_datasets caches its downloads "
                             f"under IR_DATASETS_HOME (default ~/.ir_datasets): rerun where they can be fetched") from None
