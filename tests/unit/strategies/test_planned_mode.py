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

"""The strategy's planned mode (``mode: planned``, issue 11).

Host ``a`` (12 cores) runs a background that repeats every 1,800 s: 14
cores for 600 s, then 2 cores. At the audit it is quiet, 120 s before the
next peak; ``b`` stays quiet. Its two VNFs ask 1.6 cores each. The
reactive rules see no host in failure state; the planner sees the peak
coming and moves one VNF to ``b`` before it.
"""

import logging

import numpy as np
import pytest

from tests.unit.strategies import test_strategy as ts
from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.strategies import errors
from watcher_failpredict.strategies import migrations
from watcher_failpredict.testbed import audit_cluster

STEP = audit_cluster.STEP
CYCLE, PEAK = 1800, 600
#: the params every audit here runs with: a look-ahead of 660 s
PLANNED = {'mode': 'planned', 'cooldown': 300, 'planner_history': 7200}


class LongCluster(audit_cluster.Cluster):
    """An audit cluster holding ``seconds`` of samples."""

    def __init__(self, seconds=7200):
        super().__init__()
        self.n = seconds // STEP
        self.times = audit_cluster.NOW - seconds + STEP * np.arange(self.n)


def _wave(times, shift=0.0, peak=14.0):
    """The background of ``a``: its peak begins 120 s after the audit."""
    phase = (times - audit_cluster.NOW - 120.0 + shift) % CYCLE
    return np.where(phase < PEAK, peak, 2.0)


def _cluster(seconds=7200, shift_last=0.0, a_load=True, cpu_a=None,
             peak=14.0):
    """``a`` and its two VNFs, and ``b``, over ``seconds`` of history; the
    wave is shifted by ``shift_last`` over the last 1,000 s (a drift).
    """
    c = LongCluster(seconds)
    t = c.times
    shift = np.where(t > audit_cluster.NOW - 1000.0, shift_last, 0.0)
    return _placed(c, _wave(t, shift, peak), a_load, cpu_a)


def _placed(c, bg, a_load=True, cpu_a=None):
    """``c`` with ``a`` (background ``bg``) and its two VNFs, and ``b``
    and its one.
    """
    load_a = bg + 3.2
    c.host('a', np.minimum(load_a / 12 * 100, 100.0) if cpu_a is None
           else cpu_a, load=load_a if a_load else np.nan)
    c.host('b', 20.0, load=1.0 + 0.8)
    c.instance('vm1', 'a', cpu=80.0, vcpus=2)
    c.instance('vm2', 'a', cpu=80.0, vcpus=2)
    c.instance('vm3', 'b', cpu=80.0, vcpus=1)
    return c


def test_plans_ahead_of_a_peak_the_reactive_rules_do_not_see(caplog):
    caplog.set_level(logging.INFO)
    reactive = _cluster().strategy(mode='reactive', cooldown=300).execute()
    assert ts.moves(reactive) == []
    solution = _cluster().strategy(**PLANNED).execute()
    assert ts.moves(solution) == [('vm1', 'a', 'b')]
    ind = ts.indicators(solution)
    assert ind['hosts_in_failure'] == 0
    assert ind['planned_on_forecast'] == 1
    # the wave's cycle is estimated a step short: a small error
    assert 0.0 <= ind['forecast_error'] < 2.0
    assert 'Planning on the seasonal forecast of the next 660 s' in caplog.text
    assert 'Move vm1 from a to b: over the next 660 s it spares' in \
        caplog.text


def test_a_host_that_just_received_a_vnf_is_a_source_unless_told():
    # vm2 came to a a minute ago: it stays (cooldown), vm1 may leave
    def arrived():
        c = _cluster()
        c.history.append(migrations.Migration('vm2', 'b', 'a',
                                              audit_cluster.NOW - 60))
        return c

    assert ts.moves(arrived().strategy(**PLANNED).execute()) == [
        ('vm1', 'a', 'b')]
    assert ts.moves(arrived().strategy(received_cooldown=120, **PLANNED)
                    .execute()) == []


def test_no_move_when_the_forecast_sees_no_peak(caplog):
    caplog.set_level(logging.INFO)
    # far from its peak: it starts 900 s after the audit, past the
    # look-ahead less the migration
    c2 = LongCluster()
    bg = _wave(c2.times, shift=-780.0)
    c2.host('a', 30.0, load=bg + 3.2)
    c2.host('b', 20.0, load=1.8)
    for uuid, host, vcpus in (('vm1', 'a', 2), ('vm2', 'a', 2),
                              ('vm3', 'b', 1)):
        c2.instance(uuid, host, cpu=80.0, vcpus=vcpus)
    solution = c2.strategy(**PLANNED).execute()
    assert ts.moves(solution) == []
    assert ts.indicators(solution)['planned_on_forecast'] == 1
    assert 'No move pays over the next 660 s by the forecast' in caplog.text


def test_no_vnf_leaves_a_host_the_forecast_does_not_see_starved(caplog):
    caplog.set_level(logging.INFO)
    # a's peak asks for 12.5 cores of its 12: its VNFs are slowed a little
    # (speed 0.96), which a move would spare, but not starved
    assert ts.moves(_cluster(peak=9.3).strategy(speed_floor=1.0, **PLANNED)
                    .execute()) == [('vm1', 'a', 'b')]
    solution = _cluster(peak=9.3).strategy(**PLANNED).execute()
    assert ts.moves(solution) == []
    assert ts.indicators(solution)['planned_on_forecast'] == 1
    assert 'No VNF leaves a host whose consumers the forecast sees get at ' \
        'least 85 % of the CPU they ask for over every 300 s of the next ' \
        '660 s (speed_floor): a (96 %), b (100 %)' in caplog.text
    # starved at its peak (0.70): planned, as without the floor
    assert ts.moves(_cluster(peak=14.0).strategy(**PLANNED).execute()) == \
        [('vm1', 'a', 'b')]


def _relieved_ratio(solution):
    return {g.name: g.value for g in solution.global_efficacy}[
        'relieved_ratio']


def _failing_a(peak):
    """``_cluster(peak)`` with ``a`` at 95 % CPU throughout: in failure
    state at the audit (threshold 90 %) whatever its runnable demand.
    """
    c = LongCluster()
    return _placed(c, _wave(c.times, peak=peak), cpu_a=np.full(c.n, 95.0))


def test_a_failing_host_the_plan_leaves_alone_is_not_a_failure_of_it(
        caplog):
    caplog.set_level(logging.INFO)
    # a's consumers get 96 % of what they ask for at the peak: not
    # starved, so no VNF leaves it, on purpose
    solution = _failing_a(9.3).strategy(**PLANNED).execute()
    assert ts.moves(solution) == []
    ind = ts.indicators(solution)
    assert (ind['hosts_in_failure'], ind['hosts_relieved'],
            ind['moves_not_worth'], ind['planned_on_forecast']) == (
                1, 0, 1, 1)
    assert _relieved_ratio(solution) == 100.0
    assert 'Hosts in failure state left as they are by the plan: a (the ' \
        'forecast does not see its consumers starved)' in caplog.text
    # every host a source (speed_floor 1): a's VNFs are valued, and at 99
    # % of what they ask for no move of them pays
    caplog.clear()
    solution = _failing_a(8.9).strategy(speed_floor=1.0, **PLANNED).execute()
    assert ts.moves(solution) == []
    assert ts.indicators(solution)['moves_not_worth'] == 1
    assert 'a (no move of its VNFs pays over the look-ahead)' in caplog.text


def test_a_failing_host_the_plan_relieves_is_not_left_alone(caplog):
    caplog.set_level(logging.INFO)
    solution = _failing_a(14.0).strategy(**PLANNED).execute()
    assert ts.moves(solution) == [('vm1', 'a', 'b')]
    ind = ts.indicators(solution)
    assert (ind['hosts_in_failure'], ind['moves_not_worth']) == (1, 0)
    assert 'left as they are by the plan' not in caplog.text


def test_a_failing_host_the_plan_could_not_judge_is_not_counted():
    # a received a VNF a minute ago and received_cooldown holds it: its
    # VNFs are never valued, so the plan says nothing of it
    c = _failing_a(14.0)
    c.history.append(migrations.Migration('vm2', 'b', 'a',
                                          audit_cluster.NOW - 60))
    solution = c.strategy(received_cooldown=120, **PLANNED).execute()
    assert ts.moves(solution) == []
    ind = ts.indicators(solution)
    assert (ind['hosts_in_failure'], ind['moves_not_worth']) == (1, 0)
    assert _relieved_ratio(solution) == 0.0


def test_falls_back_to_the_reactive_rules_when_the_forecast_missed(caplog):
    caplog.set_level(logging.INFO)
    # the wave 420 s ahead over the last 1,000 s: at its peak now
    kw = dict(shift_last=420.0, cpu_a=95.0)
    planned = _cluster(**kw).strategy(**PLANNED).execute()
    reactive = _cluster(**kw).strategy(cooldown=300).execute()
    ind = ts.indicators(planned)
    assert ind['planned_on_forecast'] == 0
    assert ind['forecast_error'] > 20.0
    assert ts.moves(planned) == ts.moves(reactive) != []
    # two hours of history are too short for a match by analogy (four):
    # the seasonal forecast is the nearer, and it missed
    assert 'Planned mode falls back to the reactive rules: the nearer of ' \
        'its seasonal and analog forecasts (seasonal) of the last 660 s ' \
        'missed by' in caplog.text
    assert 'on average over its worst 300 s (forecast_tolerance 20 %)' \
        in caplog.text


def _stretched_cluster():
    """``a``'s wave 30 % slower over the last 9,000 s (its peak still
    begins 120 s after the audit), over six hours of history.
    """
    c = LongCluster(seconds=21600)
    t = c.times
    since = audit_cluster.NOW - 9000.0
    # the wave's own clock: 1/1.3 of real time since the change
    clock = np.where(t >= since, (t - audit_cluster.NOW - 120.0) / 1.3,
                     (since - audit_cluster.NOW - 120.0) / 1.3 + t - since)
    return _placed(c, np.where(clock % CYCLE < PEAK, 14.0, 2.0))


def test_plans_on_the_analog_forecast_when_the_cycle_stretched(caplog):
    caplog.set_level(logging.INFO)
    params = dict(PLANNED, planner_history=21600)
    seasonal = _stretched_cluster().strategy(
        planner_forecast='seasonal', forecast_timing_margin=0,
        **params).execute()
    # the old cycle replayed misses the stretched one: reactive, and a is
    # not in failure state yet
    assert ts.indicators(seasonal)['planned_on_forecast'] == 0
    assert ts.indicators(seasonal)['forecast_error'] > 20.0
    assert ts.moves(seasonal) == []
    assert 'falls back to the reactive rules: its seasonal forecast of ' \
        'the last 660 s missed by' in caplog.text
    assert 'time envelope' not in caplog.text
    caplog.clear()
    for forecast in ('seasonal_or_analog', 'analog'):
        solution = _stretched_cluster().strategy(
            planner_forecast=forecast, **params).execute()
        ind = ts.indicators(solution)
        assert ind['planned_on_forecast'] == 1
        assert ind['forecast_error'] < 5.0
        assert ts.moves(solution) == [('vm1', 'a', 'b')]
    assert 'Planning on the analog forecast (its cycles changed pace or ' \
        'phase) of the next 660 s' in caplog.text


def test_plans_on_the_time_envelope_when_its_forecasts_missed(caplog):
    caplog.set_level(logging.INFO)
    params = dict(PLANNED, planner_history=21600, planner_forecast='seasonal')
    # the stretched wave's peaks come within the trigger period (300 s,
    # the default margin) of where its old cycle puts them: the load
    # stayed inside that envelope of the seasonal forecast
    solution = _stretched_cluster().strategy(**params).execute()
    ind = ts.indicators(solution)
    assert ind['planned_on_forecast'] == 1
    assert 0.0 < ind['forecast_error'] < 20.0
    # a is starved even at the envelope's low; b has the room at its high
    assert ts.moves(solution) == [('vm1', 'a', 'b')]
    assert 'Planning on the time envelope of the seasonal forecast within ' \
        '300 s either way (its cycles changed: its peaks may come early ' \
        'or late) of the next 660 s' in caplog.text
    # a margin too short to hold the stretch: reactive, as without one
    caplog.clear()
    solution = _stretched_cluster().strategy(
        forecast_timing_margin=60, **params).execute()
    assert ts.indicators(solution)['planned_on_forecast'] == 0
    assert ts.moves(solution) == []
    assert 'of the last 660 s missed by 50 % of the hosts\' cores on ' \
        'average over its worst 300 s (forecast_tolerance 20 %); no time ' \
        'envelope within 60 s either way passed either' in caplog.text


def test_falls_back_when_the_history_cannot_check_a_forecast(caplog):
    caplog.set_level(logging.WARNING)
    solution = _cluster(seconds=600).strategy(**PLANNED).execute()
    assert ts.indicators(solution)['planned_on_forecast'] == 0
    assert 'forecast_error' not in ts.indicators(solution)
    assert 'is too short to check a forecast of 660 s' in caplog.text


def test_host_without_load_history_is_left_out(caplog):
    caplog.set_level(logging.WARNING)
    solution = _cluster(a_load=False).strategy(**PLANNED).execute()
    assert 'Hosts left out of the plan' in caplog.text
    assert 'a (no load average history)' in caplog.text
    # one host left: nothing to plan between
    assert ts.indicators(solution)['planned_on_forecast'] == 0
    assert 'fewer than two hosts have a history' in caplog.text


def test_placement_history_counts_a_vnf_where_it_ran():
    """vm2 came from ``b`` 1,500 s ago: before that, ``a``'s load did not
    hold it, and ``a``'s background is its load alone. Ignoring the
    migration would make that background 1.6 cores lower there, a
    repeating pattern broken: the forecast would miss.
    """
    c = _cluster()
    t = c.times
    moved_at = audit_cluster.NOW - 1500.0
    load_a = _wave(t) + np.where(t < moved_at, 1.6, 3.2)
    c2 = LongCluster()
    c2.host('a', np.minimum(load_a / 12 * 100, 100.0), load=load_a)
    c2.host('b', 20.0, load=np.where(t < moved_at, 3.4, 1.8))
    for uuid, host, vcpus in (('vm1', 'a', 2), ('vm2', 'a', 2),
                              ('vm3', 'b', 1)):
        c2.instance(uuid, host, cpu=80.0, vcpus=vcpus)
    c2.history.append(migrations.Migration('vm2', 'b', 'a', moved_at))
    ind = ts.indicators(c2.strategy(**PLANNED).execute())
    assert ind['forecast_error'] < 2.0
    c2.history.clear()
    ind = ts.indicators(c2.strategy(**PLANNED).execute())
    assert ind['forecast_error'] > 2.0


@pytest.mark.parametrize('drift', [0.0, 420.0])
def test_six_backend_reads_per_audit(drift):
    """Planned or fallen back: the host windows and means, every host's
    load over the history at a coarse step, the weighed hosts' load and
    their instances' CPU at the planner's, and the windows of the
    instances that may move.
    """
    c = _cluster(shift_last=drift, cpu_a=95.0)
    calls = []
    fetch = c.ds.fetch

    def counted(*args, **kwargs):
        calls.append(args[0])
        return fetch(*args, **kwargs)
    c.ds.fetch = counted
    ts.moves(c.strategy(**PLANNED).execute())
    assert len(calls) == 6
    assert calls.count(metric_windows.INSTANCE) == 2


@pytest.mark.parametrize('params,message', [
    ({'planner_history': 1000}, 'planner_history (1000 s) must be at least '
     'twice the look-ahead (660 s)'),
    ({'planner_history': 100000}, 'make 10000 steps per host and instance; '
     'at most 8640'),
    ({'look_ahead': 5, 'planner_granularity': 60}, 'shorter than one '
     'planner_granularity step (60 s)'),
    ({'forecast_tolerance': float('nan')}, 'forecast_tolerance'),
    ({'planner_forecast': 'arima'}, 'planner_forecast'),
])
def test_planner_parameters_are_checked(params, message):
    with pytest.raises(errors.InvalidParameter, match=message.replace(
            '(', r'\(').replace(')', r'\)')):
        _cluster(seconds=600).strategy(**dict(PLANNED, **params)).execute()


def test_a_coarser_planner_granularity_plans_the_same():
    solution = _cluster().strategy(planner_granularity=30,
                                   **PLANNED).execute()
    assert ts.moves(solution) == [('vm1', 'a', 'b')]


def test_at_scale_only_the_vnfs_of_the_hosts_weighed_are_read():
    """30 hosts: ``a`` (its peak coming), ``b`` (quiet) and 28 hosts
    busy at 8 of 12 cores. The plan weighs ``a`` and the 11 next busiest,
    ``b`` and the 11 next freest: the same 11 busy hosts, 13 in all.
    """
    c = _cluster()
    for k in range(28):
        c.host(f'h{k:02d}', 60.0, load=8.0)
        c.instance(f'w{k:02d}', f'h{k:02d}', cpu=50.0, vcpus=1)
    read = []
    fetch = c.ds.fetch

    def recorded(resource_type, metrics, names, *args, **kwargs):
        if resource_type == metric_windows.INSTANCE and \
                metrics == ('cpu',):
            read.append(names)
        return fetch(resource_type, metrics, names, *args, **kwargs)
    c.ds.fetch = recorded
    solution = c.strategy(**PLANNED).execute()
    assert ts.moves(solution) == [('vm1', 'a', 'b')]
    (names,) = read
    assert len(names) == 14
    assert {'vm1', 'vm2', 'vm3'} <= set(names)


def test_a_destination_must_stay_out_of_failure_state_with_the_vnf():
    """``c`` runs 10.2 of its 12 cores: vm1's 1.6 more would slow no one
    there, so the queueing value alone would not tell it from ``b``, but
    its CPU would reach 98 %, over the threshold: the reactive mode's
    rule refuses it, and so does the plan.
    """
    def cluster(with_b):
        c = LongCluster()
        bg = _wave(c.times)
        c.host('a', np.minimum((bg + 3.2) / 12 * 100, 100.0), load=bg + 3.2)
        c.host('c', 85.0, load=10.2)
        if with_b:
            c.host('b', 60.0, load=7.2)
        c.instance('vm1', 'a', cpu=80.0, vcpus=2)
        c.instance('vm2', 'a', cpu=80.0, vcpus=2)
        return c
    solution = cluster(with_b=False).strategy(**PLANNED).execute()
    assert ts.moves(solution) == []
    assert ts.indicators(solution)['planned_on_forecast'] == 1
    # b has the room: it takes vm1
    solution = cluster(with_b=True).strategy(**PLANNED).execute()
    assert ts.moves(solution) == [('vm1', 'a', 'b')]


def test_moves_of_equal_value_go_to_the_most_room():
    """vm1 slows no one on ``b`` (7.2 cores of 12) nor on ``d`` (3):
    the same value; ``d``, asked last, has the most room and takes it.
    """
    c = LongCluster()
    bg = _wave(c.times)
    c.host('a', np.minimum((bg + 3.2) / 12 * 100, 100.0), load=bg + 3.2)
    c.host('b', 60.0, load=7.2)
    c.host('d', 25.0, load=3.0)
    c.instance('vm1', 'a', cpu=80.0, vcpus=2)
    c.instance('vm2', 'a', cpu=80.0, vcpus=2)
    assert ts.moves(c.strategy(**PLANNED).execute()) == [('vm1', 'a', 'd')]


class _LearnedCycles(audit_cluster.MeanCpuRisk):
    """A model still ranking by cycles that no longer hold: it sees ``c``
    as quiet whatever its CPU now.
    """

    def predict_risk(self, windows):
        risk = super().predict_risk(windows)
        return np.where(np.asarray(windows.names) == 'c', 0.05, risk)


def _three_hosts():
    """``_cluster`` with the forecast missing, plus ``c``: busier now than
    ``b`` (60 % against 20 %), quiet by the model.
    """
    c = _cluster(shift_last=420.0, cpu_a=95.0)
    c.host('c', 60.0, load=7.2)
    return c


@pytest.mark.parametrize('fallback, destination, model_ranks', [
    ('current_cpu', 'b', False), ('model', 'c', True)])
def test_the_fallback_ranks_destinations_by_fallback_ranking(
        caplog, fallback, destination, model_ranks):
    caplog.set_level(logging.INFO)
    model = _LearnedCycles()
    solution = _three_hosts().strategy(
        bundle=model, fallback_ranking=fallback, **PLANNED).execute()
    assert ts.indicators(solution)['planned_on_forecast'] == 0
    assert [m[2] for m in ts.moves(solution)] == [destination]
    # the model scores every host at the start and at the end of the
    # audit (cluster_risk_before/after); ranking the destinations is one
    # more call
    assert model.calls == (3 if model_ranks else 2)
    assert ('The fallback ranks destinations by their mean CPU over the '
            'last 300 s with the VNF' in caplog.text) is not model_ranks
    ranked_by_cpu = ('by mean CPU over the period with it (planned mode\'s '
                     'fallback_ranking): b 33.3 %, c 73.3 %' in caplog.text)
    assert ranked_by_cpu is not model_ranks


def _three_hosts_young():
    """``_three_hosts`` with 10 minutes of history: no forecast can be
    checked (the first hours of a deployment), none missed.
    """
    c = _cluster(seconds=600, shift_last=420.0, cpu_a=95.0)
    c.host('c', 60.0, load=7.2)
    return c


def test_the_fallback_ranks_by_the_model_where_no_forecast_was_checked(
        caplog):
    """With the default ``fallback_ranking`` (current_cpu): the present
    ranks where the forecast missed, since the cycles the model learned
    changed; where none could be checked nothing says they did, and the
    trained model ranks, as in reactive mode.
    """
    caplog.set_level(logging.INFO)
    model = _LearnedCycles()
    solution = _three_hosts_young().strategy(bundle=model,
                                             **PLANNED).execute()
    assert ts.indicators(solution)['planned_on_forecast'] == 0
    assert 'is too short to check a forecast' in caplog.text
    assert [m[2] for m in ts.moves(solution)] == ['c']
    assert model.calls == 3
    assert ('The fallback ranks destinations by the trained model: no '
            'forecast was checked to say its cycles changed' in caplog.text)
    assert 'by their mean CPU over the last 300 s' not in caplog.text


def test_the_model_ranks_the_destinations_of_the_reactive_mode():
    model = _LearnedCycles()
    solution = _three_hosts().strategy(bundle=model, mode='reactive',
                                       cooldown=300).execute()
    assert [m[2] for m in ts.moves(solution)] == ['c']
