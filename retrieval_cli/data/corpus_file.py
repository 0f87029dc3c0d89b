"""A corpus read on demand from a dataset artifact's ``corpus.jsonl``: mining touches a few texts
per query, so only ids and line offsets stay in memory."""

from __future__ import annotations

import json
import threading
from array import array
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np


class CorpusFile(Mapping[str, dict[str, str]]):
    """A dataset artifact's corpus.jsonl read on demand: doc id -> {"title", "text"}.

    Only ids, line offsets and id hashes stay in memory (about 40 bytes a document against
    several hundred for the texts), so commands that touch a few documents per query (mining,
    its cross-encoder and LLM steps) keep memory flat in corpus size. Texts are read with one
    seek per lookup; ids hash to a sorted array, checked against the stored id on a hit.
    """

    _FAST = b'{"_id": "'  # how write_beir starts every line: the id is decoded without the text
    _hash = staticmethod(hash)  # per process, never stored: only for lookups here

    def __init__(self, path: Path) -> None:
        self.path = path
        lines, id_ends, hashes, blob = array("q"), array("q", [0]), array("q"), bytearray()
        decoder = json.JSONDecoder()
        offset = 0
        with open(path, "rb") as handle:
            for line in handle:
                if line.startswith(self._FAST):
                    doc_id = decoder.raw_decode(line.decode("utf-8"), len(self._FAST) - 1)[0]
                else:
                    doc_id = json.loads(line)["_id"]
                lines.append(offset)
                offset += len(line)
                encoded = doc_id.encode("utf-8")
                blob += encoded
                id_ends.append(len(blob))
                hashes.append(self._hash(doc_id))
        lines.append(offset)
        self._lines = np.frombuffer(lines, dtype=np.int64)
        self._id_ends = np.frombuffer(id_ends, dtype=np.int64)
        self._blob = blob  # kept as built: a bytes() copy would double it for a moment
        unsorted = np.frombuffer(hashes, dtype=np.int64)
        self._order = np.argsort(unsorted, kind="stable").astype(np.int64 if len(unsorted) >= 2**31 else np.int32)
        self._hashes = unsorted[self._order]
        self._lock = threading.Lock()
        self._handle: Any = None
        self.ids: Sequence[str] = _CorpusIds(self)

    def id_at(self, position: int) -> str:
        return self._blob[self._id_ends[position]:self._id_ends[position + 1]].decode("utf-8")

    def position(self, doc_id: str) -> int:
        """The document's line number in the file; KeyError for an unknown id."""
        h = self._hash(doc_id)
        i = int(np.searchsorted(self._hashes, h))
        while i < len(self._hashes) and self._hashes[i] == h:
            j = int(self._order[i])
            if self.id_at(j) == doc_id:
                return j
            i += 1
        raise KeyError(doc_id)

    def record(self, position: int) -> dict[str, str]:
        start, end = int(self._lines[position]), int(self._lines[position + 1])
        with self._lock:  # one handle, shared by threads (LLM concurrency reads positives)
            if self._handle is None:
                self._handle = open(self.path, "rb")
            self._handle.seek(start)
            raw = self._handle.read(end - start)
        record = json.loads(raw)
        return {"title": record.get("title", ""), "text": record["text"]}

    def __getitem__(self, doc_id: str) -> dict[str, str]:
        return self.record(self.position(doc_id))

    def __contains__(self, doc_id: object) -> bool:
        if not isinstance(doc_id, str):
            return False
        try:
            self.position(doc_id)
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self._lines) - 1

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None:
            handle.close()


class _CorpusIds(Sequence[str]):
    """A CorpusFile's ids in file order, as a sequence (random negatives index into it)."""

    def __init__(self, corpus: CorpusFile) -> None:
        self._corpus = corpus

    def __len__(self) -> int:
        return len(self._corpus)

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        if isinstance(i, slice):
            return [self._corpus.id_at(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._corpus.id_at(i)

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self)):
            yield self._corpus.id_at(i)
