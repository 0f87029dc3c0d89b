"""Topic-aware batch samplers: one cluster per batch, balanced margin bins, reproducible epochs."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from retrieval_cli.training import batching


class Rows(list):
    """Stands in for a datasets.Dataset: the samplers only need len()."""


def _sampler(clusters, texts, batch_size=4, drop_last=False, seed=5):  # noqa: ANN001, ANN202
    return batching.TopicBatchSampler(Rows(range(len(clusters))), batch_size, drop_last, seed=seed, clusters=clusters, texts=texts)


def test_margin_bins_are_equal_width_over_the_whole_range() -> None:
    assert batching.margin_bins([0.0, 0.99, 1.0, 2.5, 5.0, 9.99, 10.0], 10) == [0, 0, 1, 2, 5, 9, 9]
    assert batching.margin_bins([3.0, 3.0], 4) == [0, 0]


def test_every_tas_batch_comes_from_one_cluster_and_every_row_appears_once() -> None:
    rng = random.Random(1)
    clusters = [rng.choice([0, 1, 2, 3, 4]) for _ in range(97)]
    texts = [frozenset({f"q{i}", f"d{i}"}) for i in range(97)]
    sampler = _sampler(clusters, texts)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert all(len({clusters[i] for i in batch}) == 1 for batch in batches)
    assert sorted(i for batch in batches for i in batch) == list(range(97))
    assert all(1 <= len(batch) <= 4 for batch in batches)
    # Per cluster, only the last batch may be short.
    sizes = Counter(clusters)
    assert len(batches) == sum(-(-n // 4) for n in sizes.values())
    # Clusters interleave over the epoch (shuffled batch order), not one cluster after another.
    order = [clusters[b[0]] for b in batches]
    assert sum(1 for a, b in zip(order, order[1:]) if a != b) > len(sizes)


def test_tas_batches_never_repeat_a_text() -> None:
    clusters = [0] * 12
    # Rows 0-3 share a positive document (one query with several positives, or one document
    # positive for several queries): each must land in a different batch.
    texts = [frozenset({f"q{i}", "shared" if i < 4 else f"d{i}"}) for i in range(12)]
    batches = list(_sampler(clusters, texts))
    for batch in batches:
        seen = [t for i in batch for t in texts[i]]
        assert len(seen) == len(set(seen))
    assert sorted(i for b in batches for i in b) == list(range(12))
    assert len(batches) == 4  # rows 0-3 need four batches


def test_epochs_are_reproducible_and_differ_from_each_other() -> None:
    clusters = [i % 3 for i in range(60)]
    texts = [frozenset({str(i)}) for i in range(60)]
    a, b = _sampler(clusters, texts), _sampler(clusters, texts)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(_sampler(clusters, texts, seed=6)) != first


def test_drop_last_keeps_only_full_batches() -> None:
    clusters = [0] * 9 + [1] * 3
    batches = list(_sampler(clusters, [frozenset({str(i)}) for i in range(12)], drop_last=True))
    assert [len(b) for b in batches] == [4, 4]


def test_balanced_sampler_draws_margin_bins_evenly_where_mining_is_skewed() -> None:
    # 600 units (query, positive), each with 55 negatives spread over 10 margin bins, bin b
    # holding b + 1 of them: picking a negative uniformly would favour high bins 10:1.
    units, bins, clusters, texts = [], [], [], []
    for u in range(600):
        for b in range(10):
            for k in range(b + 1):
                units.append(u)
                bins.append(b)
                clusters.append(u % 6)
                texts.append(frozenset({f"q{u}", f"p{u}", f"n{u}-{b}-{k}"}))
    sampler = batching.BalancedTopicBatchSampler(
        Rows(range(len(units))), 8, False, seed=3, clusters=clusters, texts=texts, units=units, bins=bins,
    )
    for epoch in range(2):
        sampler.set_epoch(epoch)
        chosen = [i for batch in sampler for i in batch]
        assert sorted(units[i] for i in chosen) == list(range(600))  # each unit once per epoch
        per_bin = Counter(bins[i] for i in chosen)
        assert all(abs(per_bin[b] - 60) <= 18 for b in range(10)), per_bin  # 60 expected, ~7.3 s.d.
        assert all(len({clusters[i] for i in batch}) == 1 for batch in sampler)
    # What balancing corrects: one negative per unit drawn uniformly from its rows.
    rng = random.Random(0)
    rows_of = {}
    for i, u in enumerate(units):
        rows_of.setdefault(u, []).append(i)
    naive = Counter(bins[rng.choice(rows)] for rows in rows_of.values())
    assert naive[9] > 4 * naive[0]


def test_samplers_reject_per_row_lists_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="one entry per dataset row"):
        _sampler([0, 1], [frozenset()])
