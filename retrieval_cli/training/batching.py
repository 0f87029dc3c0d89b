"""Batch samplers for topic-aware training (TAS and TAS-Balanced, Hofstätter et al. 2021).

- ``TopicBatchSampler``: every batch comes from one query cluster (queries on one topic make
  each other's in-batch negatives hard), and no text appears twice in a batch (a repeated text
  would be its own in-batch "negative", as sentence-transformers' no-duplicates sampler avoids).
- ``BalancedTopicBatchSampler``: as above, and each training unit (a query with one positive)
  appears once per epoch with one of its negatives, drawn by first picking one of the unit's
  margin bins uniformly, then a negative inside it. Margins are teacher(pos) - teacher(neg),
  split into equal-width bins over the whole training set, so batches are dominated neither by
  easy pairs (large margins) nor by near-duplicates of the positive (margins near zero).

Both are ``DefaultBatchSampler`` subclasses so sentence-transformers' trainer (and accelerate,
which shards batches across DDP processes) use them like its own; the epoch's order depends on
``seed + epoch`` only, so a resumed run replays the same batches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler


def margin_bins(margins: Sequence[float], bins: int) -> list[int]:
    """Equal-width bin (0..bins-1) of each margin over [min, max] of all margins."""
    values = np.asarray(margins, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return [0] * len(values)
    scaled = (values - low) / (high - low) * bins
    return np.minimum(scaled.astype(np.int64), bins - 1).tolist()


def _pack(items: list[int], texts: Sequence[frozenset[str]], batch_size: int) -> list[list[int]]:
    """Greedy batches of ``items`` (in order) with no text shared inside a batch.

    An item that clashes with the open batch waits for a later one, so every item is used once.
    """
    batches: list[list[int]] = []
    waiting = list(items)
    while waiting:
        batch: list[int] = []
        seen: set[str] = set()
        later: list[int] = []
        for item in waiting:
            if len(batch) < batch_size and seen.isdisjoint(texts[item]):
                batch.append(item)
                seen.update(texts[item])
            else:
                later.append(item)
        batches.append(batch)
        waiting = later
    return batches


class TopicBatchSampler(DefaultBatchSampler):
    """Batches drawn each from one cluster, without repeated texts; order reshuffled per epoch.

    ``clusters[i]`` is row i's query cluster and ``texts[i]`` the set of its texts (anchor,
    positive, negatives). Batches of one cluster are full except its last; the order of all
    batches is shuffled so clusters interleave across the epoch.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: Any = None,
        seed: int = 0,
        *,
        clusters: Sequence[int],
        texts: Sequence[frozenset[str]],
    ) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last, valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        if len(clusters) != len(dataset) or len(texts) != len(dataset):
            raise ValueError("clusters and texts must give one entry per dataset row")
        self.clusters = list(clusters)
        self.texts = list(texts)
        self._cache: tuple[int, list[list[int]]] | None = None

    def _items(self, rng: np.random.Generator) -> list[int]:
        """The rows this epoch uses (all of them here; one per unit in the balanced sampler)."""
        return list(range(len(self.clusters)))

    def batches(self, epoch: int) -> list[list[int]]:
        """The epoch's batches, a pure function of (seed, epoch)."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, epoch])
        by_cluster: dict[int, list[int]] = defaultdict(list)
        for item in self._items(rng):
            by_cluster[self.clusters[item]].append(item)
        batches: list[list[int]] = []
        for cluster in sorted(by_cluster):
            items = by_cluster[cluster]
            order = rng.permutation(len(items))
            batches.extend(_pack([items[i] for i in order], self.texts, self.batch_size))
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        batches = [batches[i] for i in rng.permutation(len(batches))]
        self._cache = (epoch, batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches(self.epoch)

    def __len__(self) -> int:
        return len(self.batches(self.epoch))


class BalancedTopicBatchSampler(TopicBatchSampler):
    """Topic batches where each unit contributes one row per epoch, its margin bin drawn uniformly.

    ``units[i]`` names row i's training unit (query and positive); ``bins[i]`` is its margin bin.
    """

    def __init__(self, *args: Any, units: Sequence[Any], bins: Sequence[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if len(units) != len(self.clusters) or len(bins) != len(self.clusters):
            raise ValueError("units and bins must give one entry per dataset row")
        grouped: dict[Any, dict[int, list[int]]] = {}
        for row, (unit, b) in enumerate(zip(units, bins)):
            grouped.setdefault(unit, {}).setdefault(int(b), []).append(row)
        # Insertion order (first row of each unit) keeps the draw independent of hashing.
        self.unit_bins = [sorted(by_bin.items()) for by_bin in grouped.values()]

    def _items(self, rng: np.random.Generator) -> list[int]:
        chosen = []
        for by_bin in self.unit_bins:
            _, rows = by_bin[int(rng.integers(len(by_bin)))]
            chosen.append(rows[int(rng.integers(len(rows)))])
        return chosen
