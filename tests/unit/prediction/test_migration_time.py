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

"""The pre-copy live-migration time estimate."""

import math

import numpy as np
import pytest

from watcher_failpredict import conf as fp_conf
from watcher_failpredict.prediction import migration_time as mt


def test_bandwidth_conversion_and_validation():
    assert mt.bandwidth_mib_per_s(1000) == pytest.approx(119.209, abs=1e-3)
    for bad in (0, -5, None):
        with pytest.raises(ValueError, match='bandwidth'):
            mt.bandwidth_mib_per_s(bad)


def test_paper_figure_busy_1gb_vnf_about_45_s_idle_about_10_s():
    c = fp_conf.CONF.failpredict
    rate = mt.dirty_rate(1024, 100, c.migration_dirty_fraction)
    busy = mt.precopy(1024, rate, c.migration_bandwidth_mbps)
    assert busy.converges and 40 <= busy.seconds <= 50, busy
    assert busy.downtime <= c.migration_max_downtime
    assert busy.rounds > 5
    idle = mt.precopy(1024, 0.0, 1000)
    assert idle.converges and 5 <= idle.seconds <= 15
    assert idle.downtime == 0 and idle.rounds == 1
    # 1024 MiB at 119.2 MiB/s plus 2 s set-up
    assert idle.seconds == pytest.approx(2 + 1024 / 119.209, rel=1e-4)


def test_time_grows_with_memory_and_dirty_rate():
    t = [mt.precopy(m, d, 1000).seconds
         for m, d in ((512, 20), (1024, 20), (2048, 20))]
    assert t[0] < t[1] < t[2]
    t = [mt.precopy(1024, d, 1000).seconds for d in (0, 30, 60, 90)]
    assert t == sorted(t) and len(set(t)) == 4


def test_geometric_rounds_hand_computed():
    # B = 100 MiB/s (838.86 Mbit/s), D = 50 MiB/s: r = 0.5, round 0 = 10 s
    mbps = 100 * 2 ** 20 * 8 / 1e6
    est = mt.precopy(1000, 50, mbps, max_downtime=0.5, setup_time=0)
    # 10 * 0.5**n <= 0.5 -> n = 5 (0.3125 s); copy = 10 (1 - 0.5**5) / 0.5
    assert est.rounds == 5
    assert est.downtime == pytest.approx(0.3125)
    assert est.seconds == pytest.approx(19.375 + 0.3125)


def test_says_when_precopy_does_not_converge():
    est = mt.precopy(1024, 150, 1000)       # dirties faster than 119 MiB/s
    assert not est.converges and math.isinf(est.seconds)
    assert 'does not converge' in est.reason and '150 MiB/s' in est.reason
    # converges in theory, but beyond Nova's completion timeout (800 s/GiB)
    slow = mt.precopy(1024, 0.999 * 11.92, 100, max_downtime=0.01)
    assert not slow.converges and 'completion timeout' in slow.reason


def test_small_memory_copied_within_downtime():
    est = mt.precopy(32, 1000, 1000)
    assert est.converges and est.rounds == 0
    assert est.downtime == pytest.approx(32 / 119.209, rel=1e-4)


def test_bad_inputs_named():
    with pytest.raises(ValueError, match='memory'):
        mt.precopy(0, 1, 1000)
    with pytest.raises(ValueError, match='max_downtime'):
        mt.precopy(1024, 1, 1000, max_downtime=0)


def test_dirty_rate_proxy():
    assert mt.dirty_rate(1000, 50, 0.1) == pytest.approx(50.0)
    assert mt.dirty_rate(1000, float('nan'), 0.1) == 0.0     # no CPU data
    assert mt.dirty_rate(1000, 250, 0.1) == pytest.approx(100.0)  # clipped
    assert mt.dirty_rate(1000, 0, 0.1, memory_change_rate=-3) == 3.0
    assert mt.memory_change_rate([100, np.nan, 110, 90], 10) == \
        pytest.approx(1.5)
    assert mt.memory_change_rate([np.nan, 5], 10) == 0.0


def test_estimate_instance_from_windows_and_calibration():
    c = fp_conf.CONF.failpredict
    cpu = np.r_[np.full(10, np.nan), np.full(20, 100.0)]
    est = mt.estimate_instance(1024, cpu, np.full(30, 1024.0), 10, c)
    assert 40 <= est.seconds <= 50
    # no memory samples: the whole flavor counts as used
    same = mt.estimate_instance(1024, cpu, np.full(30, np.nan), 10, c)
    assert same.seconds == pytest.approx(est.seconds)
    idle = mt.estimate_instance(1024, np.zeros(30), np.full(30, 300.0), 10, c)
    assert idle.seconds < est.seconds / 3
    doubled = mt.estimate_instance(1024, cpu, np.full(30, 1024.0), 10, c,
                                   factor=2.0)
    assert doubled.seconds == pytest.approx(2 * est.seconds)


def test_calibration_factor_from_observed_migrations():
    assert mt.calibration_factor([(10, 20), (10, 30)]) == 1.0   # too few
    assert mt.calibration_factor([(10, 20), (10, 30), (20, 30)]) == \
        pytest.approx(2.0)
    assert mt.calibration_factor([(1, 100)] * 3) == 4.0          # clipped
    assert mt.calibration_factor(
        [(0, 5), (math.inf, 5), (10, 5), (10, 5), (10, 5)]) == 0.5


def test_required_horizon_is_longest_migration_plus_margin():
    a = mt.precopy(1024, 0, 1000)
    b = mt.precopy(2048, 0, 1000)
    never = mt.precopy(1024, 500, 1000)
    assert mt.required_horizon([a, b, never], 60) == pytest.approx(
        b.seconds + 60)
    assert mt.required_horizon([never], 60) is None
