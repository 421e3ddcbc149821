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

"""The strategy's pure decision rules, one by one."""

import math

import numpy as np
import pytest
from watcher.decision_engine.model import element

from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.strategies import placement as pl


def _node(uuid='n1', status='enabled', state='up'):
    return element.ComputeNode(
        uuid=uuid, hostname=uuid, status=status, state=state, vcpus=12,
        memory=24576, disk=500, vcpu_reserved=0, memory_mb_reserved=0,
        disk_gb_reserved=0, vcpu_ratio=1.0, memory_ratio=1.0, disk_ratio=1.0)


def _inst(**kw):
    args = dict(uuid='i1', name='i1', state='active', memory=1024, disk=10,
                vcpus=2, locked=False, watcher_exclude=False)
    args.update(kw)
    return element.Instance(**args)


def test_period_mean_uses_last_steps_and_ignores_nan():
    arr = np.array([[0, 0, 50, np.nan, 70], [np.nan] * 5])
    out = pl.period_mean(arr, 3)
    assert out[0] == pytest.approx(60.0)
    assert math.isnan(out[1])


def test_host_skip_reason():
    assert pl.host_skip_reason(990.0, 50.0, 1000.0, 120) is None
    assert 'no metrics' in pl.host_skip_reason(float('nan'), 50.0, 1000, 120)
    assert 'stale' in pl.host_skip_reason(800.0, 50.0, 1000.0, 120)
    assert 'no CPU' in pl.host_skip_reason(990.0, float('nan'), 1000, 120)


def test_trigger_at_and_below_threshold():
    assert pl.is_failing(90.0, 90.0)
    assert not pl.is_failing(89.99, 90.0)


@pytest.mark.parametrize('kw,word', [
    ({'watcher_exclude': True}, 'excluded'),
    ({'locked': True}, 'locked'),
    ({'state': 'stopped'}, 'not ACTIVE'),
])
def test_instance_skip_reasons(kw, word):
    assert word in pl.instance_skip_reason(_inst(**kw))


def test_instance_allowed():
    assert pl.instance_skip_reason(_inst()) is None


def test_an_instance_does_not_go_back_within_the_cooldown():
    left = {'vm1': (30.0, 'a', 'b')}
    assert pl.return_reason('vm1', 'a', left) == \
        'the instance left it 30 s ago (cooldown)'
    assert pl.return_reason('vm1', 'c', left) is None
    assert pl.return_reason('vm2', 'a', left) is None


def test_an_instance_does_not_move_while_its_migration_is_under_way():
    left = {'vm1': (0.0, 'a', 'b')}
    # still on a in the model: Nova moves it when the migration completes
    assert pl.under_way_reason('vm1', 'a', left) == \
        'its migration to b is under way'
    assert pl.under_way_reason('vm1', 'b', left) is None
    assert pl.under_way_reason('vm2', 'a', left) is None


def test_contributions_and_cost():
    assert pl.cpu_contribution(60.0, 2, 12) == pytest.approx(10.0)
    assert pl.memory_contribution(2048, 8192) == pytest.approx(25.0)
    assert pl.migration_cost(1024, 50.0) == pytest.approx(1536.0)
    assert pl.migration_cost(1024, float('nan')) == pytest.approx(1024.0)
    with pytest.raises(ValueError, match='0 vCPUs'):
        pl.cpu_contribution(50, 1, 0)


def test_choose_cheapest_instance_that_ends_overload():
    cands = [pl.make_candidate('big', 20, 4096, 95, 90),
             pl.make_candidate('small', 8, 1024, 95, 90),
             pl.make_candidate('tiny', 2, 512, 95, 90)]
    # tiny does not end the overload (93 >= 90); small is cheaper than big
    assert pl.choose_instance(cands, 'cheapest_ending').uuid == 'small'


def test_choose_the_instance_that_relieves_most_by_default():
    cands = [pl.make_candidate('small', 8, 1024, 95, 90),
             pl.make_candidate('big', 20, 4096, 95, 90),
             pl.make_candidate('big-cheap', 20, 2048, 95, 90),
             pl.make_candidate('tiny', 2, 512, 95, 90)]
    # the largest relief, the cheaper of the two on the tie
    assert pl.choose_instance(cands).uuid == 'big-cheap'
    assert pl.choose_instance(cands, 'most_relief').uuid == 'big-cheap'
    assert pl.choose_instance(
        [pl.make_candidate('z', 0, 1, 99, 90)], 'most_relief') is None
    with pytest.raises(ValueError, match="unknown instance_choice 'biggest'"):
        pl.choose_instance(cands, 'biggest')


def test_choose_largest_relief_when_none_ends_overload():
    cands = [pl.make_candidate('a', 2, 512, 99, 90),
             pl.make_candidate('b', 5, 2048, 99, 90)]
    for rule in pl.INSTANCE_CHOICES:
        assert pl.choose_instance(cands, rule).uuid == 'b'
        assert pl.choose_instance([pl.make_candidate('z', 0, 1, 99, 90)],
                                  rule) is None
        assert pl.choose_instance([], rule) is None


@pytest.mark.parametrize('node,free,skip,word', [
    (_node('src'), {'vcpu': 9, 'memory': 9e9, 'disk': 9e9}, None, 'source'),
    (_node(status='disabled'), {'vcpu': 9, 'memory': 9e9, 'disk': 9e9}, None,
     'disabled'),
    (_node(state='down'), {'vcpu': 9, 'memory': 9e9, 'disk': 9e9}, None,
     'down'),
    (_node(), {'vcpu': 9, 'memory': 9e9, 'disk': 9e9}, 'stale metrics: x',
     'stale'),
    (_node(), {'vcpu': 1, 'memory': 9e9, 'disk': 9e9}, None, 'vCPU'),
    (_node(), {'vcpu': 9, 'memory': 1000, 'disk': 9e9}, None, 'RAM'),
    (_node(), {'vcpu': 9, 'memory': 9e9, 'disk': 5}, None, 'disk'),
])
def test_destination_reject_reasons(node, free, skip, word):
    # the strategy's order: service state and metrics, then capacity
    why = (pl.destination_state_reason(node, _node('src'), skip)
           or pl.capacity_reason(_inst(), free))
    assert word in why


def test_destination_accepted():
    free = {'vcpu': 2, 'memory': 1024, 'disk': 10}
    assert pl.destination_state_reason(_node(), _node('src'), None) is None
    assert pl.capacity_reason(_inst(), free) is None


def _windows():
    return metric_windows.ClusterWindows(
        names=('a', 'b'), times=np.arange(3.0), step=10,
        data={'cpu': np.array([[10., np.nan, 30.], [50., 50., 50.]])},
        last_seen=np.array([2.0, 2.0]))


def test_add_to_rows_one_series_and_per_row():
    w = pl.add_to_rows(_windows(), {'cpu': [1., 2., 3.], 'absent': [1.]},
                       rows=[1])
    np.testing.assert_allclose(w.data['cpu'][1], [51, 52, 53])
    np.testing.assert_allclose(w.data['cpu'][0], [10, np.nan, 30])
    w2 = pl.add_to_rows(_windows(), {'cpu': [[1, 1, 1], [2, 2, 2]]})
    np.testing.assert_allclose(w2.data['cpu'][:, 0], [11, 52])
    assert _windows().data['cpu'][1, 0] == 50.0   # original untouched


def test_clip_and_filled():
    w = pl.clip_nonnegative(pl.add_to_rows(_windows(), {'cpu': [-20.] * 3}),
                            ('cpu',))
    np.testing.assert_allclose(w.data['cpu'][0], [0, np.nan, 10])
    np.testing.assert_allclose(pl.filled([1., np.nan, 3.]), [1, 2, 3])
    np.testing.assert_allclose(pl.filled([np.nan, np.nan]), [0, 0])


def test_rank_by_risk_then_cpu_and_drop_nan():
    ranked = pl.rank_destinations(['a', 'b', 'c', 'd'],
                                  [0.5, 0.1, 0.1, float('nan')],
                                  [10, 60, 40, 0])
    assert [r.name for r in ranked] == ['c', 'b', 'a']


def test_expected_failing_hosts():
    assert pl.expected_failing_hosts([0.5, 0.25, float('nan')]) == 0.75
    assert pl.expected_failing_hosts([]) == 0.0
