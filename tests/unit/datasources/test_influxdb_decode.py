# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Decoding InfluxDB answers (datasources/influxdb/decode.py)."""

import numpy as np
import pytest

from watcher_failpredict.datasources.influxdb import decode


def test_rates_sort_series_and_drop_resets_and_repeated_times():
    sid = np.array([1, 1, 0, 0, 0, 1, 0])
    t = np.array([20., 10., 0., 10., 20., 30., 30.])
    v = np.array([300., 100., 0., 50., 20., 600., 120.])
    s, tt, r = decode.rates(sid, t, v)
    # series 0: 0 -> 50 (5/s), reset, 20 -> 120 (10/s); series 1: 20, 30.
    assert s.tolist() == [0, 0, 1, 1]
    assert tt.tolist() == [10., 30., 20., 30.]
    np.testing.assert_allclose(r, [5., 10., 20., 30.])
    s, tt, r = decode.rates(np.array([0, 0]), np.array([5., 5.]),
                            np.array([1., 2.]))
    assert s.size == 0


def test_window_means_average_per_series_and_window():
    sid = np.array([0, 0, 0, 1, 1, 1])
    t = np.array([99., 100., 109., 100., 125., 131.])
    v = np.array([7., 1., 3., np.nan, 4., 6.])
    s, w, m = decode.window_means(sid, t, v, start=100, g=10, n_windows=3)
    # 99 is before the first window, NaN is ignored, 131 is past the last.
    assert s.tolist() == [0, 1]
    assert w.tolist() == [100., 120.]
    np.testing.assert_allclose(m, [2., 4.])


def test_decoding_refuses_errors_partial_and_odd_columns():
    with pytest.raises(ValueError, match='boom'):
        decode.flatten({'error': 'boom'})
    with pytest.raises(ValueError, match='partial'):
        decode.flatten({'series': [{'name': 'x', 'values': [[1, 2]],
                                    'partial': True}]})
    with pytest.raises(ValueError, match='partial'):
        decode.flatten({'partial': True, 'series': []})
    with pytest.raises(ValueError, match='columns'):
        decode.flatten({'series': [{'name': 'x',
                                    'columns': ['time', 'a', 'b'],
                                    'values': [[1, 2, 3]]}]})
    keys, sid, t, v = decode.flatten(
        {'series': [{'name': 'a', 'tags': {'host': 'x'},
                     'values': [[1, None], [2, 5]]},
                    {'name': 'a', 'tags': {'host': 'y'}, 'values': []}]})
    assert keys == [('a', {'host': 'x'}), ('a', {'host': 'y'})]
    assert sid.tolist() == [0, 0] and t.tolist() == [1., 2.]
    assert np.isnan(v[0]) and v[1] == 5.
    assert decode.flatten({})[1].size == 0


def test_used_from_idle_keeps_garbage_visible():
    """An idle reading of 250 % is not 0 % CPU (a host that looks idle):
    it stays out of range, for windows.implausible_reasons to refuse.
    """
    used = decode.used_from_idle(np.array(
        [250.0, -20.0, 100.0 + 1e-14, -1e-14, 40.0, np.nan]))
    assert used[0] == -150.0
    assert used[1] == 120.0
    assert used[2] == 0.0 and used[3] == 100.0
    assert used[4] == 60.0
    assert np.isnan(used[5])
