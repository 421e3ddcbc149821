"""The shared windows machinery of every datasource (datasources/base.py)."""

import numpy as np
import pytest

from watcher_failpredict.datasources import base
from watcher_failpredict.datasources import memory

NOW = 1_700_000_000.0


class RecordingDataSource(memory.InMemoryDataSource):
    def __init__(self):
        super().__init__()
        self.asked = []

    def _fetch(self, resource_type, metrics, names, start, end, granularity):
        self.asked.append(names)
        return super()._fetch(resource_type, metrics, names, start, end,
                              granularity)


def _cluster(n):
    ds = RecordingDataSource()
    t = NOW - 600 + 10 * np.arange(60)
    for i in range(n):
        ds.add(base.COMPUTE_NODE, 'cpu', f'h{i}', t, np.full(60, float(i)))
    return ds


def test_align_averages_into_buckets_and_marks_gaps():
    raw = {'cpu': {'a': ([0, 5, 10, 30], [10.0, 20.0, 40.0, 80.0])}}
    w = base.align(raw, ('a', 'b'), ('cpu',), 0, 40, 10)
    np.testing.assert_allclose(w.data['cpu'][0], [15.0, 40.0, np.nan, 80.0])
    assert np.isnan(w.data['cpu'][1]).all()
    assert w.last_seen[0] == 30 and np.isnan(w.last_seen[1])


def test_few_names_are_filtered_at_the_backend_many_are_not():
    ds = _cluster(base.NAME_FILTER_LIMIT + 5)
    few = ('h1', 'h7', 'h9')
    w = ds.cluster_windows(base.COMPUTE_NODE, few, 300, 10, end=NOW)
    assert ds.asked[-1] == few
    np.testing.assert_allclose(np.nanmean(w.data['cpu'], axis=1), [1, 7, 9])
    many = tuple(f'h{i}' for i in range(base.NAME_FILTER_LIMIT + 1))
    w = ds.cluster_windows(base.COMPUTE_NODE, many, 300, 10, end=NOW)
    assert ds.asked[-1] is None
    assert w.data['cpu'].shape[0] == len(many)
    assert ds.fetch_count == 2


def test_a_repeated_read_is_served_from_the_cache():
    ds = _cluster(3)
    a = ds.cluster_windows(base.COMPUTE_NODE, ('h0', 'h1'), 300, 10, end=NOW)
    b = ds.cluster_windows(base.COMPUTE_NODE, ('h0', 'h1'), 300, 10, end=NOW)
    assert a is b and ds.fetch_count == 1


def test_bad_requests_name_what_is_wrong():
    ds = _cluster(1)
    with pytest.raises(ValueError, match='bogus'):
        ds.cluster_windows(base.COMPUTE_NODE, ('h0',), 300, 10,
                           metrics=['bogus'])
    with pytest.raises(ValueError, match='positive'):
        ds.cluster_windows(base.COMPUTE_NODE, ('h0',), 0, 10)


def test_with_added_moves_load_without_touching_the_original():
    ds = _cluster(2)
    w = ds.cluster_windows(base.COMPUTE_NODE, ('h0', 'h1'), 300, 10,
                           metrics=['cpu'], end=NOW)
    moved = w.with_added('h0', {'cpu': np.full(w.times.size, 5.0)})
    assert np.nanmax(moved.series('cpu', 'h0')) == 5.0
    assert np.nanmax(w.series('cpu', 'h0')) == 0.0
