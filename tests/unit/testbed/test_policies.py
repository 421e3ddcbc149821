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

"""The testbed's extra policies, trace scenarios and seed aggregation."""

import copy
import dataclasses
import math

import numpy as np
import pytest
import yaml

from tests.unit.testbed.test_run import SHORT
from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.prediction import baseline_risk
from watcher_failpredict.prediction import baselines
from watcher_failpredict.prediction import traces
from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import loads
from watcher_failpredict.testbed import lookahead
from watcher_failpredict.testbed import policies
from watcher_failpredict.testbed import report
from watcher_failpredict.testbed import runner
from watcher_failpredict.testbed import scenario
from watcher_failpredict.tracesets import catalog


@pytest.fixture(scope='module')
def short():
    return scenario.validate(SHORT)


# -- Watcher's workload_balance (least-cpu-wb) --------------------------------


def test_workload_balance_is_watchers_own_with_schema_defaults(short):
    from watcher.decision_engine.strategy.strategies import workload_balance
    policy = policies.make_policy('least-cpu-wb', short, None, 1)
    assert type(policy.strategy) is workload_balance.WorkloadBalance
    # schema defaults, with the metric and the scenario's trigger threshold
    assert policy.parameters == {'metrics': 'instance_cpu_usage',
                                 'threshold': 90.0, 'period': 300,
                                 'granularity': 300}


def test_workload_balance_sums_instance_cpu_only(short):
    # background load is not an instance: at the 90 % trigger no server's
    # VNFs (at most a few cores of 12) ever reach it, so it never moves
    tb, policy = runner.run_policy(short, 'least-cpu-wb', 1)
    assert policy.calls >= (tb.n_steps - 600 // 5) // 12
    assert tb.migrations == []


def test_workload_balance_moves_from_the_vnf_heavy_server(short):
    # 8 of 12 VNFs on server 0 (about 20 % of its cores in VNF CPU), the
    # threshold at 15 %: workload_balance must move one of them off it to
    # the server whose instances use the least CPU, and the testbed's
    # migration model carries the move out
    scn = copy.deepcopy(short)
    scn['trigger']['threshold'] = 15.0
    tb = cluster.Testbed(scn, 1)
    tb.host_of[:8] = 0
    tb.host_of[8:] = [1, 1, 2, 3]
    tb.run_until(100)
    policy = policies.make_policy('least-cpu-wb', scn, tb, 1)
    moves = policy.decide(tb)
    assert len(moves) == 1
    vnf, dst = moves[0]
    assert tb.host_of[vnf] == 0 and dst != 0
    # destination: the lowest sum of instance CPU (server 2 or 3 hold one
    # VNF each; the lighter of the two)
    cpu = tb.rec_vcpu[:, 40:100].mean(axis=1)
    assert dst == min((2, 3), key=lambda s: cpu[tb.host_of == s].sum())
    m = tb.start_migration(vnf, dst)
    tb.run_until(int(m.end // tb.dt) + 2)
    assert tb.host_of[vnf] == dst


# -- forecasting baselines as rankings ----------------------------------------


def _windows(rows, step=10):
    rows = np.asarray(rows, dtype=float)
    names = tuple(f'compute-{i:02d}' for i in range(len(rows)))
    return metric_windows.ClusterWindows(
        names=names, times=np.arange(rows.shape[1]) * step, step=step,
        data={'cpu': rows}, last_seen=np.full(len(rows), 1.0))


def test_mean_kstd_and_trend_rankings(short):
    md = policies.model_metadata(short)          # window 600 s / 10 s
    flat = np.full(60, 60.0)
    rising = np.linspace(20.0, 55.0, 60)         # lower now, climbing
    noisy = 50.0 + 10.0 * np.where(np.arange(60) % 2, 1.0, -1.0)
    win = _windows([flat, rising, noisy])
    kstd = baseline_risk.BaselineRisk(md, 'mean_kstd').predict_risk(win)
    np.testing.assert_allclose(kstd, [0.6, (rising.mean() + 2 * np.std(
        rising)) / 100, 0.7])
    horizon = policies.migration_seconds(short)
    assert 40 < horizon < 50                     # the paper's ~45 s
    trend = baseline_risk.BaselineRisk(md, 'linear_trend',
                                       horizon).predict_risk(win)
    slope = (55.0 - 20.0) / 59
    expect = 55.0 + slope * round(horizon / 10)
    assert trend[1] == pytest.approx(expect / 100)
    assert trend[0] == pytest.approx(0.6)
    # the same numbers as the prediction module's baselines
    t = np.full(3, 60)
    np.testing.assert_allclose(100 * trend, baselines.linear_trend(
        win.data['cpu'], t, np.arange(3), 60, round(horizon / 10)))
    # a host without data ranks last
    gap = _windows([flat, np.full(60, np.nan)])
    assert np.argmax(baseline_risk.BaselineRisk(md, 'mean_kstd').predict_risk(
        gap)) == 1


def test_baseline_policies_run_the_real_strategy(short):
    for name in ('mean-kstd', 'trend'):
        tb, policy = runner.run_policy(short, name, 1)
        assert isinstance(policy, policies.StrategyPolicy)
        assert isinstance(policy.strategy.model_bundle,
                          baseline_risk.BaselineRisk)
        assert policy.calls > 0
        assert len(tb.migrations) == len(policy.history)


def test_seasonal_ranking_reads_each_servers_own_cycle_back(short):
    tb = cluster.Testbed(short, 1)
    tb.run_until(120)                            # 600 s of this run
    md = policies.model_metadata(short)          # period 300 s, horizon
    period, horizon = 60, md['horizon'] // 5     # in 5 s steps
    n = 2000
    k = np.arange(n + tb.k)
    # server 0 saturates in the horizon one cycle (400 steps) back, server
    # 1 (cycle 300 steps) stays calm there; the others have no cycle
    busy0 = (k + 300) % 400 < 150
    busy1 = (k + 200) % 300 < 100
    full = np.full((tb.n_servers, n + tb.k), 50.0)
    full[0] = np.where(busy0, 98.0, 20.0)
    full[1] = np.where(busy1, 98.0, 20.0)
    full[2:] += np.random.default_rng(3).normal(0, 5, (tb.n_servers - 2,
                                                       n + tb.k))
    history = full[:, :n]
    tb.rec_cpu[:, :tb.k] = full[:, n:]
    risk = policies.SeasonalRisk(md, tb, history)
    c0, c1 = risk.cycle[:2]
    assert abs(c0 - 400) <= 4 and abs(c1 - 300) <= 3        # within 1 %
    assert not risk.cycle[2:].any()
    now = n + tb.k
    rm = np.array([np.convolve(r, np.ones(period) / period)[:now]
                   for r in full[:2]])
    expect = [rm[s, now - c:now - c + horizon].max()
              for s, c in ((0, c0), (1, c1))]
    assert busy0[now - c0:now - c0 + horizon].any()
    assert not busy1[now - c1:now - c1 + horizon].any()
    # the windows the strategy passes equal what was measured: no extra
    times, host, _ = tb.metric_samples(0)
    win = metric_windows.ClusterWindows(
        names=tuple(cluster.host_name(s) for s in range(tb.n_servers)),
        times=times, step=10, data={'cpu': host['cpu']},
        last_seen=np.full(tb.n_servers, times[-1]))
    got = risk.predict_risk(win)
    np.testing.assert_allclose(100 * got[:2], expect)
    assert got[0] > 0.9 > 0.3 > got[1]
    # no cycle: persistence, the mean over the trigger period now
    np.testing.assert_allclose(100 * got[2:], full[2:, now - period:now].mean(
        axis=1))
    with pytest.raises(ValueError, match='servers'):
        policies.SeasonalRisk(md, tb, history[:3])
    with pytest.raises(ValueError, match='stretch before the run'):
        policies.make_policy('seasonal', short, tb, 1)


def test_seasonal_policy_runs_the_real_strategy_on_the_training_history(
        short, monkeypatch):
    seen = []
    real = policies.SeasonalRisk.__init__

    def spy(self, metadata, testbed, history):
        seen.append(history.copy())
        real(self, metadata, testbed, history)
    monkeypatch.setattr(policies.SeasonalRisk, '__init__', spy)
    res = runner.run_seed(short, 1, ['seasonal'])
    tb, policy = res['runs']['seasonal']
    assert isinstance(policy.strategy.model_bundle, policies.SeasonalRisk)
    assert policy.calls > 0
    assert len(tb.migrations) == len(policy.history) > 0
    train = runner.simulate_history(short, 1)
    np.testing.assert_array_equal(seen[0], train.rec_cpu)
    assert seen[0].shape[1] == short['train_duration'] // short['step']


def test_gated_rankings_run_the_strategys_own_rule(short):
    """The -gated policies keep their ranking and drop the simple rules'
    always-move: the strategy decides with its reactive rules' defaults.
    """
    from watcher.common import utils

    from watcher_failpredict.strategies import predicted_least_failure as plf
    schema = plf.PredictedLeastFailure.get_schema()['properties']
    train = runner.simulate_history(short, 1).rec_cpu
    with pytest.raises(ValueError, match='seasonal-gated policy needs'):
        policies.make_policy('seasonal-gated', short, cluster.Testbed(
            short, 1), 1)
    ranking = {'perfect-model': policies.PerfectModel,
               'oracle-peak': policies.OracleRisk,
               'seasonal-gated': policies.SeasonalRisk,
               'seasonal': policies.SeasonalRisk,
               'least-cpu-gated': baseline_risk.CurrentCpuRisk,
               'least-cpu': baseline_risk.CurrentCpuRisk}
    for gated, simple in (('perfect-model', 'oracle-peak'),
                          ('seasonal-gated', 'seasonal'),
                          ('least-cpu-gated', 'least-cpu')):
        runs = {}
        for name in (gated, simple):
            tb, policy = runner.run_policy(short, name, 1, history=train)
            assert type(policy.strategy.model_bundle) is ranking[name]
            runs[name] = (tb, policy)
            assert policy.calls > 0
            assert len(tb.migrations) == len(policy.history)
        params = utils.Struct(runs[gated][1].strategy.params)
        assert params.move_rule == schema['move_rule']['default'] == \
            'queueing'
        assert params.instance_choice == \
            schema['instance_choice']['default']
        assert 'move_rule' not in runs[gated][1].strategy.input_parameters
        simple_params = utils.Struct(runs[simple][1].strategy.params)
        assert (simple_params.move_rule, simple_params.speed_floor) == (
            'speed_floor', 1.0)
        # both reactive, on the threshold alone, whatever the default mode
        for name in (gated, simple):
            ran = runs[name][1].strategy.params
            assert (ran['mode'], ran['starved_window']) == ('reactive', 0)


def test_perfect_model_predicts_its_training_targets_exactly(short):
    md = policies.model_metadata(short)
    tb = cluster.Testbed(short, 1)
    tb.run_until(240)
    times, host, _ = tb.metric_samples(0)
    win = metric_windows.ClusterWindows(
        names=tuple(cluster.host_name(s) for s in range(tb.n_servers)),
        times=times, step=10, data={'cpu': host['cpu']},
        last_seen=np.full(tb.n_servers, times[-1]))
    # the targets: the realised peak of the trigger-period mean over the
    # horizon (what oracle-peak ranks by), and whether it reaches the
    # threshold (the failure label)
    peak = 100 * policies.OracleRisk(md, tb).predict_risk(win)
    model = policies.PerfectModel(md, tb)
    assert model.has_peak_model
    risk, got_peak = model.predict_risk_and_peak(win)
    np.testing.assert_allclose(got_peak, peak)
    np.testing.assert_array_equal(risk, (peak >= md['threshold']) * 1.0)
    assert 0 < risk.sum() < tb.n_servers    # both labels occur here
    np.testing.assert_array_equal(model.predict_risk(win), risk)
    # a planned move's load counts: 30 points more on one host
    more = dataclasses.replace(win, data={'cpu': win.data['cpu'] + np.where(
        np.arange(tb.n_servers)[:, None] == int(np.argmin(peak)), 30.0,
        0.0)})
    np.testing.assert_allclose(model.predict_risk_and_peak(more)[1],
                               peak + 30.0 * (np.arange(tb.n_servers) ==
                                              np.argmin(peak)))
    # known further ahead: the testbed's future is read over that look,
    # and the peak over it covers the horizon's
    looks, future = [], tb.future_host_cpu

    def spy(horizon_s):
        looks.append(horizon_s)
        return future(horizon_s)
    tb.future_host_cpu = spy
    far = policies.PerfectModel(md, tb, horizon=2 * md['horizon'])
    far_risk, far_peak = far.predict_risk_and_peak(win)
    assert looks == [2 * md['horizon']]
    assert (far_peak >= peak - 1e-9).all() and (far_risk >= risk).all()
    del tb.future_host_cpu
    _, proactive = runner.run_policy(short, 'perfect-model-proactive', 1)
    assert proactive.strategy.input_parameters.mode == 'proactive'
    bundle = proactive.strategy.model_bundle
    assert isinstance(bundle, policies.PerfectModel)
    # over the VNF's stay (the oracle's look-ahead), not the horizon
    assert bundle.horizon == lookahead.look_ahead_seconds(short) > \
        md['horizon']
    _, reactive = runner.run_policy(short, 'perfect-model', 1)
    assert reactive.strategy.model_bundle.horizon == md['horizon']
    assert reactive.strategy.input_parameters.mode == 'reactive'
    # reactive, known over the stay
    _, stay = runner.run_policy(short, 'perfect-model-stay', 1)
    assert stay.strategy.input_parameters.mode == 'reactive'
    assert isinstance(stay.strategy.model_bundle, policies.PerfectModel)
    assert stay.strategy.model_bundle.horizon == \
        lookahead.look_ahead_seconds(short)


def test_proposed_proactive_runs_the_strategy_in_proactive_mode(short):
    from watcher.common import utils

    from watcher_failpredict.strategies import predicted_least_failure as plf
    bundle, _ = runner.train_model(short, 1)
    with pytest.raises(ValueError, match='proposed-proactive policy needs'):
        policies.make_policy('proposed-proactive', short, None, 1)
    tb, policy = runner.run_policy(short, 'proposed-proactive', 1, bundle)
    assert policy.strategy.model_bundle is bundle
    # proactive, with the strategy's own schema defaults for the rest (the
    # parameters its audit ran with)
    params = utils.Struct(policy.strategy.params)
    assert policy.strategy.input_parameters.mode == 'proactive'
    schema = plf.PredictedLeastFailure.get_schema()['properties']
    assert params.mode == 'proactive'
    assert params.risk_threshold == schema['risk_threshold']['default']
    assert params.cost_weight == schema['cost_weight']['default']
    assert policy.calls > 0
    assert len(tb.migrations) == len(policy.history)


@pytest.mark.parametrize('name, mode, starved_window', [
    ('proposed-reactive', 'reactive', 0),
    ('proposed-reactive-starved', 'reactive', policies.STARVED_WINDOW),
    ('proposed-planned', 'planned', 0)])
def test_the_trained_variants_pin_mode_and_starved_window(
        short, name, mode, starved_window):
    bundle, _ = runner.train_model(short, 1)
    _, policy = runner.run_policy(short, name, 1, bundle)
    params = policy.strategy.params
    assert (params['mode'], params['starved_window']) == (
        mode, starved_window)
    assert policy.strategy.input_parameters.mode == mode
    assert policy.calls > 0
    # planned mode counts its audits planned on the forecast and left to
    # the reactive rules; the reactive policies have no such counters
    assert hasattr(policy, 'planned') == (mode == 'planned')


def test_proposed_runs_the_strategys_defaults_planned_with_the_window(
        short):
    from watcher_failpredict.strategies import predicted_least_failure as plf
    schema = plf.PredictedLeastFailure.get_schema()['properties']
    bundle, _ = runner.train_model(short, 1)
    _, policy = runner.run_policy(short, 'proposed', 1, bundle)
    given = policy.strategy.input_parameters
    # nothing chosen for the testbed beyond the scenario's settings
    assert not {'mode', 'starved_window', 'look_ahead',
                'planner_history'} & set(given)
    params = policy.strategy.params
    assert (params['mode'], params['starved_window']) == ('planned', 60)
    assert params['planner_history'] == schema['planner_history']['default']
    # its datasource serves the planner's history, and every audit is
    # counted as planned on the forecast or left to the reactive rules
    assert policy.reach_back == schema['planner_history']['default']
    assert policy.planned + policy.fell_back == policy.calls > 0


@pytest.mark.parametrize('name', [
    'least-cpu-gated', 'perfect-model', 'perfect-model-stay',
    'proposed-cycle', 'random', 'least-cpu', 'trend', 'oracle-peak'])
def test_the_ranking_measures_keep_the_former_reactive_rules(short, name):
    """The policies that measure a ranking behind the strategy's rules
    keep the reactive ones they were measured with, whatever the
    strategy's default mode, and the simple rules the paper's trigger.
    """
    policy = policies.make_policy(
        name, short, cluster.Testbed(short, 1), 1,
        trained_bundle=object() if name in policies.TRAINED else None)
    extra = policy.extra_params
    assert (extra['mode'], extra['starved_window']) == ('reactive', 0)
    # no planner history read, no planned/fell-back counters
    assert not hasattr(policy, 'planned')


# -- proposed-cycle: the model that reads each server's last load cycle ------


def test_a_testbeds_datasource_serves_the_stretch_before_it(short):
    before = runner.simulate_history(short, 3, 'train')
    tb = cluster.Testbed(short, 3, 'test')
    tb.run_until(120)                       # 600 s into the run
    names = tuple(cluster.host_name(i) for i in range(tb.n_servers))
    alone = tb.datasource(1800).fetch(metric_windows.COMPUTE_NODE, ('cpu',),
                                      names, 0, 1e12, 10)['cpu']
    tb.before = before
    both = tb.datasource(1800).fetch(metric_windows.COMPUTE_NODE, ('cpu',),
                                     names, 0, 1e12, 10)['cpu']
    b_times, b_host, _ = before.metric_samples(0)
    r_times, r_host, _ = tb.metric_samples(0)
    for i, name in enumerate(names):
        t, v = both[name]
        # 1800 s back from now: the run's 600 s and the history's last
        # 1200 s, one sample per 10 s with no gap or overlap at the seam
        assert t.size == 180 and np.all(np.diff(t) == 10.0)
        np.testing.assert_array_equal(t, np.r_[b_times[-120:], r_times])
        np.testing.assert_array_equal(v, np.r_[b_host['cpu'][i, -120:],
                                               r_host['cpu'][i]])
        # without the stretch before, only the run's own samples
        np.testing.assert_array_equal(alone[name][0], r_times)


def test_proposed_cycle_runs_on_each_servers_own_cycle(short):
    res = runner.run_seed(short, 3, ['proposed-reactive', 'proposed-cycle'])
    _tb, policy = res['runs']['proposed-cycle']
    md = policy.strategy.model_bundle.metadata
    assert md['model_kind'] == 'gbt_peak_cycle'
    assert res['runs']['proposed-reactive'][1].strategy.model_bundle.metadata[
        'model_kind'] == short['model']['kind']
    # each server's background period, found from the stretch before
    cycles = md['feature_params']['host_cycles']
    periods = [b['period'] for b in short['servers']['background']]
    for i, period in enumerate(periods):
        assert cycles[cluster.host_name(i)] == pytest.approx(period,
                                                             abs=30), i
    # the audits read back as far as the longest cycle less the horizon
    assert policy.reach_back == pytest.approx(
        max(cycles.values()) - short['model']['horizon'], abs=10)
    # ... into the stretch before the run, which only it is served (of
    # these two: planned mode reads it too)
    assert res['runs']['proposed-cycle'][0].before is not None
    assert res['runs']['proposed-reactive'][0].before is None
    assert policy.calls > 0
    # the held-out scores reported are the scenario's own model's
    assert res['bundle'].metadata['model_kind'] == short['model']['kind']
    assert res['evaluation'] == runner.train_model(short, 3)[1]


# -- trace scenarios ----------------------------------------------------------


def test_trace_sums_columns_filters_rows_and_fills_gaps(tmp_path):
    path = tmp_path / 'long.csv'
    path.write_text('machine,t,cpu,other\n'
                    'a,0,10,1\nb,0,50,1\na,300,20,2\n'
                    'a,900,40,3\nb,300,60,1\n')
    v = loads.read_trace(str(path), 'cpu', 2.0, 't', {'machine': 'a'})
    # t = 600 missing: it repeats t = 300
    np.testing.assert_allclose(v, [20, 40, 40, 80])
    s = loads.read_trace(str(path), ['cpu', 'other'], 1.0, 't',
                         {'machine': 'b'})
    np.testing.assert_allclose(s, [51, 61])
    with pytest.raises(ValueError, match="no column 'nope'"):
        loads.read_trace(str(path), ['cpu', 'nope'])
    with pytest.raises(ValueError, match='has no value'):
        loads.read_trace(str(path), 'cpu', where={'machine': 'z'})


def test_trace_pattern_validation_names_the_bad_key(tmp_path, monkeypatch):
    (tmp_path / 'vms.csv').write_text('t_sec,vm_1,vm_2\n0,10,20\n300,30,40\n')
    data = copy.deepcopy(SHORT)
    bg = {'kind': 'trace', 'file': 'vms.csv', 'columns': ['vm_1', 'vm_3'],
          'time_column': 't_sec'}
    data['servers']['background'] = [bg]
    with pytest.raises(scenario.ScenarioError,
                       match=r"background\[0\]\.columns: .* no column 'vm_3'"):
        scenario.validate(data, str(tmp_path))
    bg['columns'] = ['vm_1', 'vm_2']
    bg['column'] = 'vm_1'
    with pytest.raises(scenario.ScenarioError, match='not both'):
        scenario.validate(data, str(tmp_path))
    del bg['column']
    bg['time_column'] = 'when'
    with pytest.raises(scenario.ScenarioError, match=r'time_column: .*when'):
        scenario.validate(data, str(tmp_path))
    bg['time_column'] = 't_sec'
    scn = scenario.validate(data, str(tmp_path))
    tb = cluster.Testbed(scn, 1, 'train')
    # step 10 s per trace value: 30 then 70 % of the cores, repeated
    np.testing.assert_allclose(tb.bg[0, :4] * 100 / tb.cores,
                               [30, 30, 70, 70])
    # traces: files come from $FAILPREDICT_TRACES; absent: a clear error
    # naming the file, the directory, the rule that chose it and what to do
    bg['file'] = 'traces:vms.csv'
    monkeypatch.setenv(traces.TRACES_ENV, str(tmp_path))
    assert scenario.validate(data)['servers']['background'][0]['file'] == \
        str(tmp_path / 'vms.csv')
    monkeypatch.setenv(traces.TRACES_ENV, str(tmp_path / 'missing'))
    with pytest.raises(scenario.ScenarioError,
                       match=r'background\[0\]\.file: traces:vms\.csv: trace '
                             r'file vms\.csv not found in the traces '
                             r'directory .*missing \(from '
                             r'\$FAILPREDICT_TRACES\); put vms\.csv in the '
                             r'traces directory'):
        scenario.validate(data)
    # --traces DIR (the traces argument) wins over the environment
    assert scenario.validate(data, traces=str(tmp_path))['servers'][
        'background'][0]['file'] == str(tmp_path / 'vms.csv')


HAVE_ALIBABA = not catalog.missing_files(catalog.get('alibaba'))


@pytest.mark.parametrize('name', [
    pytest.param('alibaba', marks=pytest.mark.skipif(
        not HAVE_ALIBABA,
        reason=f'research-only Alibaba trace not in {traces.traces_dir()}; '
               f'{catalog.fetch_instruction("alibaba2018_machines")}')),
    'azure', 'azure-balanced'])  # shipped with the package: always run
def test_trace_scenarios_train_and_test_on_different_trace_days(name):
    scn = scenario.load(name)
    assert scn['trigger']['threshold'] == 90
    bg = scn['servers']['background']
    assert len(bg) == scn['servers']['count'] == 12
    spec = bg[0]
    values = loads.read_trace(spec['file'], spec['columns'] or
                              spec['column'], spec['scale'],
                              spec['time_column'], spec['where'])
    train_rows = scn['train_duration'] / spec['seconds_per_value']
    test_rows = scn['test_duration'] / spec['seconds_per_value']
    # no wrap-around: the test stretch replays later rows than training
    assert train_rows + test_rows <= values.size
    quiet = copy.deepcopy(scn)
    for p in quiet['servers']['background']:
        p['noise'] = 0.0
    tb = cluster.Testbed(quiet, 1, 'test')
    first = int(train_rows)
    assert tb.bg[0, 0] * 100 / tb.cores == pytest.approx(values[first])
    if name == 'azure':
        # server 0 sums VMs 0, 12, 24, ...: 6 of the 70
        assert len(spec['columns']) == 6
    elif name == 'azure-balanced':
        # every VM once, placed largest first on the least loaded server
        # by the training stretch's means: the servers' totals differ by
        # at most the largest VM's mean (list scheduling)
        placed = [c for p in bg for c in p['columns']]
        assert len(placed) == len(set(placed)) == 70
        rows = int(train_rows)

        def train_mean(columns):
            return loads.read_trace(spec['file'], columns, 1.0,
                                    spec['time_column'])[:rows].mean()
        totals = [train_mean(p['columns']) for p in bg]
        assert max(totals) - min(totals) <= max(
            train_mean(c) for c in placed) + 1e-9
        assert spec['scale'] == 1.1
    else:
        assert spec['where'] == {'machine_id': 'm_1934'}


# -- seeds and confidence intervals -------------------------------------------


def test_aggregate_mean_and_95_ci_on_known_numbers():
    per_seed = {
        'no-mig': [dict.fromkeys(report.METRICS, 0.0) for _ in range(5)],
        'oracle': [dict.fromkeys(report.METRICS, 0.0) for _ in range(5)]}
    for i, v in enumerate([1.0, 2.0, 3.0, 4.0, 5.0]):
        per_seed['no-mig'][i].update(throughput=v, mean_rt=10.0)
        per_seed['oracle'][i].update(throughput=v + 1.0, mean_rt=8.0)
    agg = report.aggregate(per_seed)
    thr = agg['no-mig']['throughput']
    assert thr['mean'] == 3.0
    # t(0.975, 4) = 2.776445; s = sqrt(2.5); CI = t s / sqrt(5)
    assert thr['ci95'] == pytest.approx(2.776445 * math.sqrt(2.5) /
                                        math.sqrt(5), rel=1e-5)
    assert agg['no-mig']['mean_rt']['ci95'] == 0.0
    assert agg['oracle']['gain_throughput'] == pytest.approx(1 / 3)
    assert agg['oracle']['gain_rt'] == pytest.approx(0.2)
    assert agg['oracle']['oracle_share_rt'] == pytest.approx(1.0)
    one = report.aggregate({'no-mig': per_seed['no-mig'][:1]})
    assert one['no-mig']['throughput']['ci95'] == 0.0
    assert '±' in report.table(agg, 5) and '±' not in report.table(one, 1)


def test_n_seeds_run_and_are_aggregated(short):
    scn = copy.deepcopy(short)
    scn['test_duration'] = 900
    res = runner.evaluate(scn, ['no-mig', 'least-cpu'], seeds=3)
    runs = res['per_seed']['no-mig']
    assert [r['seed'] for r in runs] == [scn['seed'], scn['seed'] + 1,
                                         scn['seed'] + 2]
    thr = [r['throughput'] for r in runs]
    assert len(set(thr)) == 3                    # fresh noise per seed
    agg = res['aggregate']['no-mig']['throughput']
    assert agg['mean'] == pytest.approx(np.mean(thr))
    assert agg['ci95'] > 0
    assert len(res['per_seed']['least-cpu']) == 3


# -- metrics through a real InfluxDB (--influxdb) -----------------------------


def test_metrics_through_real_influxdb_same_decisions(short, influxdb_server):
    # the testbed writes collectd points into a real influxd, the strategy
    # reads them back through InfluxDBDataSource: same moves as in memory
    from watcher_failpredict.datasources import influxdb as influx_ds
    conf = {'url': influxdb_server.url, 'prefix': 'tbtest'}
    tb_i, pol_i = runner.run_policy(short, 'least-cpu', 1, influxdb=conf)
    tb_m, pol_m = runner.run_policy(short, 'least-cpu', 1)
    sink = pol_i.metrics
    assert sink.database == 'tbtest_short_least_cpu_1'
    assert sink.lines_written > 1000
    assert isinstance(pol_i.strategy.datasource_backend,
                      influx_ds.InfluxDBDataSource)
    assert pol_i.strategy.datasource_backend.request_count >= pol_i.calls
    assert pol_i.calls == pol_m.calls > 0
    assert tb_i.migrations, 'least-cpu never migrated'
    assert [(m.vnf, m.dst, m.start) for m in tb_i.migrations] == \
        [(m.vnf, m.dst, m.start) for m in tb_m.migrations]
    # what the database holds is what the testbed measured
    rows = influxdb_server.query(
        'SELECT mean("value") FROM "cpu_value" WHERE "host" = '
        "'compute-00' AND \"type_instance\" = 'idle'", db=sink.database)
    import json
    series = json.loads(rows)['results'][0]['series'][0]
    idle = series['values'][0][1]
    _, host, _ = tb_i.metric_samples(0, sink.written_k)
    assert 100.0 - idle == pytest.approx(
        np.minimum(host['cpu'][0], 100.0).mean(), abs=1e-6)


def test_metrics_through_real_prometheus_same_decisions(short):
    # the testbed writes exporter series into a real prometheus through its
    # remote-write receiver, the strategy reads them back through
    # PrometheusDataSource: same moves as in memory
    from watcher_failpredict.datasources.prometheus import datasource
    from watcher_failpredict.datasources.prometheus import local_server
    from watcher_failpredict.datasources.prometheus import query
    server = local_server.PrometheusServer(remote_write_receiver=True)
    with server:
        conf = {'backend': 'prometheus', 'url': server.url,
                'prefix': 'tbtest'}
        tb_p, pol_p = runner.run_policy(short, 'least-cpu', 1,
                                        influxdb=conf)
        tb_m, pol_m = runner.run_policy(short, 'least-cpu', 1)
        sink = pol_p.metrics
        assert (sink.host_label, sink.instance_label) == (
            'tbtest_short_least_cpu_1_host', 'tbtest_short_least_cpu_1_uuid')
        assert sink.samples_written > 1000
        backend = pol_p.strategy.datasource_backend
        assert isinstance(backend, datasource.PrometheusDataSource)
        assert backend.request_count >= pol_p.calls
        assert pol_p.calls == pol_m.calls > 0
        assert tb_p.migrations, 'least-cpu never migrated'
        assert [(m.vnf, m.dst, m.start) for m in tb_p.migrations] == \
            [(m.vnf, m.dst, m.start) for m in tb_m.migrations]
        # what prometheus holds is what the testbed measured: one counter
        # over the whole run (no reset between writes), its rate the mean
        times, host, _ = tb_p.metric_samples(0, sink.written_k)
        client = server.client()
        sel = (f'{query.NODE_CPU}{{{sink.host_label}="compute-00",'
               f'mode="idle",cpu="0"}}')
        span = int(times[-1] - times[0])
        at = times[-1]
        resets = client.query(f'resets({sel}[{span + 1}s])', at=at)
        assert resets['result'][0]['value'][1] == '0'
        n = client.query(f'count_over_time({sel}[{span + 1}s])', at=at)
        assert int(n['result'][0]['value'][1]) == times.size
        busy = client.query(
            f'100 * (1 - (last_over_time({sel}[1s]) - '
            f'last_over_time({sel}[1s] offset {span}s)) / {span})', at=at)
        assert float(busy['result'][0]['value'][1]) == pytest.approx(
            np.minimum(host['cpu'][0], 100.0)[1:].mean(), abs=1e-6)
        client.close()


def short_scenario_file(tmp_path):
    """SHORT with a 15-minute test stretch, as a scenario file."""
    data = copy.deepcopy(SHORT)
    data['test_duration'] = 900
    path = tmp_path / 'short.yaml'
    path.write_text(yaml.safe_dump(data))
    return path


def test_evaluate_command_with_influxdb(short, tmp_path, influxdb_server):
    import io
    from watcher_failpredict.cmd import main as cli
    path = short_scenario_file(tmp_path)
    stdout, stderr = io.StringIO(), io.StringIO()
    rc = cli.main(['evaluate', '--scenario', str(path), '--policies',
                   'no-mig,least-cpu-wb', '--influxdb', influxdb_server.url,
                   '--database-prefix', 'clitest'], stdout=stdout,
                  stderr=stderr)
    assert rc == 0, stderr.getvalue()
    assert 'least-cpu-wb' in stdout.getvalue()
    dbs = influxdb_server.query('SHOW DATABASES')
    assert 'clitest_short_least_cpu_wb_3' in dbs
    assert 'clitest_short_no_mig' not in dbs      # no-mig reads nothing
    rc = cli.main(['evaluate', '--scenario', str(path), '--policies',
                   'least-cpu', '--influxdb', 'http://127.0.0.1:1'],
                  stdout=io.StringIO(), stderr=stderr)
    assert rc == 2 and '127.0.0.1:1' in stderr.getvalue()


def test_evaluate_command_with_prometheus(tmp_path, capsys):
    import io
    from watcher_failpredict.cmd import main as cli
    from watcher_failpredict.datasources.prometheus import local_server
    path = short_scenario_file(tmp_path)
    with local_server.PrometheusServer(remote_write_receiver=True) as server:
        stdout, stderr = io.StringIO(), io.StringIO()
        rc = cli.main(['evaluate', '--scenario', str(path), '--policies',
                       'no-mig,least-cpu-wb', '--prometheus', server.url,
                       '--database-prefix', 'clitest'], stdout=stdout,
                      stderr=stderr)
        assert rc == 0, stderr.getvalue()
        assert 'least-cpu-wb' in stdout.getvalue()
        client = server.client()
        # the testbed's samples are dated 2023: look back far enough
        names = client.query('count by (__name__) (last_over_time('
                             '{clitest_short_least_cpu_wb_3_uuid!=""}'
                             '[20y]))')['result']
        assert {r['metric']['__name__'] for r in names} >= {
            'libvirt_domain_info_cpu_time_seconds_total'}
        assert client.query('count(last_over_time({clitest_short_least_'
                            'cpu_wb_3_host!=""}[20y]))')['result']
        assert not client.query('count(last_over_time({clitest_short_no_'
                                'mig_3_host!=""}[20y]))')['result']
        client.close()
        # the same run again: Prometheus refuses its old samples
        stderr = io.StringIO()
        rc = cli.main(['evaluate', '--scenario', str(path), '--policies',
                       'least-cpu-wb', '--prometheus', server.url,
                       '--database-prefix', 'clitest'],
                      stdout=io.StringIO(), stderr=stderr)
        assert rc == 2
        assert 'out of order' in stderr.getvalue()
        assert 'another --database-prefix' in stderr.getvalue()
    with local_server.PrometheusServer() as plain:   # no receiver
        stderr = io.StringIO()
        rc = cli.main(['evaluate', '--scenario', str(path), '--policies',
                       'least-cpu', '--prometheus', plain.url],
                      stdout=io.StringIO(), stderr=stderr)
        assert rc == 2
        assert '--web.enable-remote-write-receiver' in stderr.getvalue()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.main(['evaluate', '--scenario', str(path), '--prometheus',
                  'http://127.0.0.1:1', '--influxdb', 'http://127.0.0.1:1'])
    assert exc.value.code == 2
    assert '--prometheus excludes --influxdb' in capsys.readouterr().err
