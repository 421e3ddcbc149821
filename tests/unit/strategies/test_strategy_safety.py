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

"""Regression tests of issue 14's unsafe plans and crashes (points 2, 3).

Clusters are built with watcher_failpredict.testbed.audit_cluster (a real
Watcher ModelRoot and the project's InMemoryDataSource).
"""

import logging

import numpy as np
import pytest

from tests.unit.strategies.test_strategy import indicators
from tests.unit.strategies.test_strategy import LOGGER
from tests.unit.strategies.test_strategy import moves
from watcher_failpredict.strategies import placement
from watcher_failpredict.testbed.audit_cluster import Cluster

THRESHOLD = 90.0


def _every_other_step(level, n=Cluster.n):
    """``level`` at even steps, NaN (no sample) at odd ones."""
    series = np.full(n, float(level))
    series[1::2] = np.nan
    return series


def _working_cpu(strategy, name):
    return placement.period_mean(strategy.windows.series('cpu', name),
                                 strategy.period_steps)


# -- point 2: one definition of the load a move adds -------------------------


def test_destination_with_gaps_is_judged_by_the_load_at_its_sampled_steps(
        caplog):
    """The VNF works at 70 % exactly when the destination reports (even
    steps) and idles when it does not: its mean over the period adds 17.5
    points (87.5 %, feasible by the old rule), but at the destination's
    sampled steps it adds 35 (105 %: in failure state once moved).
    """
    c = Cluster()
    c.host('src', 95.0)
    c.host('gappy', _every_other_step(70.0))
    vnf_cpu = np.zeros(Cluster.n)
    vnf_cpu[0::2] = 70.0
    c.instance('vm1', 'src', cpu=vnf_cpu, vcpus=6)
    strategy = c.strategy(threshold=THRESHOLD)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        solution = strategy.execute()
    assert moves(solution) == []
    assert 'Host gappy rejected as destination of vm1: would be in ' \
        'failure state with it (105.0 %)' in caplog.text
    assert _working_cpu(strategy, 'gappy') == pytest.approx(70.0)


def test_after_planning_no_destination_is_failing_by_the_working_windows():
    """Three moves onto hosts with gaps: every destination stays below the
    threshold in the windows the strategy itself ends with.
    """
    c = Cluster()
    vnf_cpu = np.zeros(Cluster.n)
    vnf_cpu[0::2] = 90.0
    for i in range(3):
        c.host(f'src{i}', 96.0)
        c.instance(f'vm{i}', f'src{i}', cpu=vnf_cpu, vcpus=3)
    # 60 % by the old rule with the VNF's mean added (+11.25); at their
    # sampled steps the VNF adds 22.5
    for name, level in (('a', 64.0), ('b', 66.0), ('c', 69.0)):
        c.host(name, _every_other_step(level))
    # speed_floor: these VNFs idle half the time and the queueing rule
    # would not move them; the feasibility rule is the same for both
    strategy = c.strategy(threshold=THRESHOLD, max_migrations=3,
                          move_rule='speed_floor')
    solution = strategy.execute()
    planned = moves(solution)
    assert [dst for _, _, dst in planned] == ['a', 'b', 'c'][:len(planned)]
    assert len(planned) == 2   # c would end at 91.5 %
    for _, _, dst in planned:
        assert _working_cpu(strategy, dst) < THRESHOLD
    assert _working_cpu(strategy, 'a') == pytest.approx(86.5)
    assert _working_cpu(strategy, 'b') == pytest.approx(88.5)
    assert indicators(solution)['migrations_planned'] == 2


def test_period_mean_with_matches_the_working_windows():
    host = np.array([50.0, np.nan, 60.0, -5.0])
    added = np.array([10.0, 10.0, 30.0, 2.0])
    # the sampled steps only, negative usage clipped at 0 as
    # clip_nonnegative does
    assert placement.period_mean_with(host, added, 4) == pytest.approx(
        (60.0 + 90.0 + 0.0) / 3)
    assert placement.period_mean_with(host, added, 2) == pytest.approx(45.0)


# -- point 3: zero-capacity nodes ---------------------------------------------


@pytest.mark.parametrize('capacity,reason', [
    ({'vcpus': 0}, 'reports 0 vCPUs'),
    ({'memory': 0}, 'reports 0 MB of memory'),
])
def test_zero_capacity_node_is_skipped_not_a_crash(capacity, reason, caplog):
    c = Cluster()
    c.host('src', 95.0)
    # the idlest host: the first choice if it were usable
    c.host('empty', 1.0, **capacity)
    c.host('dst', 20.0)
    c.instance('vm1', 'src', cpu=100.0, vcpus=2)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        solution = c.strategy().execute()
    assert moves(solution) == [('vm1', 'src', 'dst')]
    assert indicators(solution)['hosts_skipped'] == 1
    assert f'empty ({reason}' in caplog.text


def test_zero_capacity_failing_host_is_not_a_source():
    c = Cluster()
    c.host('src', 95.0, vcpus=0)
    c.host('dst', 20.0)
    c.instance('vm1', 'src', cpu=100.0, vcpus=2)
    solution = c.strategy().execute()
    assert moves(solution) == []
    assert indicators(solution)['hosts_in_failure'] == 0
    assert indicators(solution)['hosts_skipped'] == 1


def test_capacity_skip_reason():
    from tests.unit.strategies.test_placement import _node
    node = _node()
    assert placement.capacity_skip_reason(node) is None
    node.vcpus = 0
    assert placement.capacity_skip_reason(node) == (
        "reports 0 vCPUs: a VNF's load cannot be scaled to it")


# -- garbage readings (issue 14 point 8) --------------------------------------


def test_host_reporting_garbage_is_never_the_destination(caplog):
    """An idle reading of 250 % decodes to -150 % CPU: before the fix it was
    clipped to 0 % and the host looked like the calmest destination.
    """
    caplog.set_level(logging.WARNING, logger=LOGGER)
    cpu = np.full(Cluster.n, 5.0)
    cpu[-3] = -150.0
    c = Cluster()
    c.host('src', 95.0)
    c.host('garbage', cpu)
    c.host('calm', 40.0)
    c.instance('vm1', 'src', cpu=100.0, vcpus=2)
    strategy = c.strategy()
    solution = strategy.execute()
    assert moves(solution) == [('vm1', 'src', 'calm')]
    ind = indicators(solution)
    assert ind['hosts_implausible_metrics'] == 1
    assert ind['hosts_skipped'] == 1
    assert strategy.skipped['garbage'] == \
        'implausible cpu reading -150 (physical range 0 to 100)'
    assert 'garbage (implausible cpu reading -150' in caplog.text


def test_failing_host_reporting_garbage_is_not_a_source_either():
    cpu = np.full(Cluster.n, 99.0)
    cpu[-1] = np.inf
    c = Cluster()
    c.host('src', cpu, load=20.0)
    c.host('calm', 10.0)
    c.instance('vm1', 'src', cpu=100.0, vcpus=2)
    solution = c.strategy().execute()
    assert moves(solution) == []
    assert indicators(solution)['hosts_implausible_metrics'] == 1


@pytest.mark.parametrize('move_rule', ['queueing', 'speed_floor'])
def test_vnf_reporting_garbage_is_not_moved(caplog, move_rule):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    bad = np.full(Cluster.n, 90.0)
    bad[-2] = 1e6
    c = Cluster()
    c.host('src', 95.0, load=20.0)
    c.host('dst', 10.0)
    c.instance('vm-bad', 'src', cpu=bad, vcpus=2, memory=512)
    c.instance('vm-ok', 'src', cpu=60.0, vcpus=2, memory=1024)
    solution = c.strategy(move_rule=move_rule).execute()
    assert moves(solution) == [('vm-ok', 'src', 'dst')]
    assert 'Instance vm-bad on src not a candidate: implausible cpu ' \
        'reading 1e+06' in caplog.text
