"""One shard mechanism for every long job (corpus encoding, mining, LLM generation).

A job is cut into numbered units (an encoding chunk, a chunk of queries, a prompt). ``--shard I/N``
does the units u with u % N == I into the workspace cache and writes no artifact; the same command
without ``--shard`` then assembles the artifact, doing any unit still missing. Every finished unit
is a cache entry (``store.cache``), so an interrupted unsharded run keeps its finished units too,
and a damaged unit is recomputed, never assembled. Units never depend on each other, so any split
gives the bytes of a run that was never split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from retrieval_cli.errors import InputError
from retrieval_cli.store.cache import Cache, Entry


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: the units u with u % count == index."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``I/N`` (0 <= I < N), as ``--shard`` takes it: ASCII digits only (``int`` would also take
        spaces, ``1_0`` and other scripts' digits)."""
        match = re.fullmatch(r"([0-9]+)/([0-9]+)", text)
        if match is None:
            raise InputError(f"--shard must be I/N, e.g. 0/4, got {text!r}", field="shard")
        return cls.of((int(match.group(1)), int(match.group(2))), text)

    @classmethod
    def of(cls, shard: "Shard | tuple[int, int]", text: str | None = None) -> "Shard":
        if isinstance(shard, Shard):
            return shard
        i, n = shard
        if not (n >= 1 and 0 <= i < n):
            raise InputError(f"--shard {text or f'{i}/{n}'}: need 0 <= I < N", field="shard")
        return cls(i, n)

    def owns(self, unit: int) -> bool:
        return unit % self.count == self.index

    def units(self, total: int) -> list[int]:
        """This shard's unit numbers among ``total``."""
        return list(range(self.index, total, self.count))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass
class ShardResult:
    """What one shard did: its units, how many it computed now (the rest were cached), the items
    (texts, queries, prompts) in them, and where its parts are."""

    shard: Shard
    units: int
    computed: int
    items: int
    where: Path
    artifact_exists: bool = False  # the whole artifact was already built: nothing to do

    @property
    def reused(self) -> bool:
        return self.computed == 0


@dataclass(frozen=True)
class Parts:
    """The finished units of one job, each a cache entry ``<job>/<unit key>``."""

    cache: Cache
    job: str

    @property
    def path(self) -> Path:
        return self.cache.root / self.job

    def get(self, unit: str) -> Entry | None:
        return self.cache.entry(f"{self.job}/{unit}").load()

    def get_or_make(self, unit: str, make: Callable[[], tuple[Any, Callable[[Path], None] | None]]) -> tuple[Entry, bool]:
        """The unit's entry, computed by ``make() -> (data, write files)`` when missing or damaged;
        and whether it was computed now."""
        found = self.get(unit)
        if found is not None:
            return found, False
        data, write = make()
        return self.cache.entry(f"{self.job}/{unit}").store(data, write), True

    def clear(self) -> None:
        """Drop every part: the assembled artifact (or cache entry) supersedes them."""
        self.cache.remove(self.job)
