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

"""The testbed's physics, equation by equation."""

import numpy as np
import pytest

from watcher_failpredict.testbed import loads
from watcher_failpredict.testbed import physics


def test_contention_shares_cores_among_all_demand():
    g = physics.contention([6.0, 12.0, 18.0, 24.0, 0.0], 12)
    np.testing.assert_allclose(g, [1.0, 1.0, 12 / 18, 0.5, 1.0])
    np.testing.assert_allclose(physics.host_cpu_percent([6, 18], 12),
                               [50.0, 100.0])


def test_service_rate_slows_with_contention():
    assert physics.service_rate(1, 1.0, 0.005) == pytest.approx(200.0)
    assert physics.service_rate(1, 0.5, 0.005) == pytest.approx(100.0)


def test_mm1_sojourn_and_cap():
    assert physics.mm1_sojourn(100.0, 0.5) == pytest.approx(0.02)
    # capped at rho_max instead of infinity
    assert physics.mm1_sojourn(100.0, 1.5, rho_max=0.9) == pytest.approx(0.1)
    assert np.isinf(physics.mm1_sojourn(0.0, 0.5))


def test_queue_step_underload_serves_everything():
    served, q, drop = physics.queue_step(0.0, 50.0, 100.0, 5.0, 2.0)
    assert (served, q, drop) == (50.0, 0.0, 0.0)


def test_queue_step_overload_builds_backlog_then_times_out():
    # 150 req/s into a 100 req/s hop: 250 left after 5 s, room 100*2
    served, q, drop = physics.queue_step(0.0, 150.0, 100.0, 5.0, 2.0)
    assert served == pytest.approx(100.0)
    assert q == pytest.approx(200.0)
    assert drop == pytest.approx(50.0)


def test_timeout_fraction():
    assert physics.timeout_fraction([0.1, 3.0, 1.0, 2.5], 2.0) == 0.5


def test_migration_duration_grows_with_dirty_rate_and_matches_paper():
    idle, down_idle = physics.migration_duration(1024, 0.0)
    busy, down_busy = physics.migration_duration(1024, 0.8)
    big, _ = physics.migration_duration(2048, 0.8)
    assert 40 <= busy <= 50          # the paper's ~45 s for 1 GB loaded
    assert idle < busy < big
    assert down_busy <= 0.5          # stop-and-copy within max downtime
    assert idle == pytest.approx(12 + 1024 / 50)
    with pytest.raises(ValueError, match='bandwidth'):
        physics.migration_duration(1024, 0.5, bandwidth_mb_s=0)


def test_outage_capacity_factor():
    assert physics.outage_capacity_factor(2.5, 5.0) == 0.5
    assert physics.outage_capacity_factor(10.0, 5.0) == 0.0
    assert physics.outage_capacity_factor(0.0, 5.0) == 1.0


def test_load_shapes():
    t = np.array([0.0, 250.0, 500.0, 750.0])
    np.testing.assert_allclose(loads.shape('sine', t, 1000), [0, .5, 1, .5],
                               atol=1e-12)
    np.testing.assert_allclose(loads.shape('square', t, 1000, duty=0.3),
                               [1, 1, 0, 0])
    np.testing.assert_allclose(loads.shape('sawtooth', t, 1000),
                               [0, .25, .5, .75])
    np.testing.assert_allclose(loads.shape('spikes', t, 1000, width=0.1),
                               [1, 0, 0, 0])
    # phase shifts the pattern
    np.testing.assert_allclose(loads.shape('sawtooth', t, 1000, phase=250),
                               [.25, .5, .75, 0])


def test_pattern_noise_is_seeded_and_clipped():
    spec = {'kind': 'sine', 'base': 0, 'amplitude': 10, 'period': 100,
            'noise': 5}
    t = np.arange(100.0)
    a = loads.pattern(spec, t, np.random.default_rng(3))
    b = loads.pattern(spec, t, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert (a >= 0).all() and a.std() > 0


def test_trace_pattern_replays_scaled_column(tmp_path):
    f = tmp_path / 'tr.csv'
    f.write_text('t,cpu\n0,10\n10,20\n20,30\n')
    spec = {'kind': 'trace', 'file': str(f), 'column': 'cpu', 'scale': 2,
            'step': 10}
    out = loads.pattern(spec, np.array([0.0, 15.0, 25.0, 35.0]),
                        np.random.default_rng(0))
    np.testing.assert_allclose(out, [20, 40, 60, 20])
