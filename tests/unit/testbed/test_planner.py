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

"""``planner-seasonal``: plans on the forecast while it holds, reads
only the past, and leaves the decision to its fallback when it does not.
"""

import numpy as np
import pytest

from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.strategies import load_forecast
from watcher_failpredict.strategies import move_gate
from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import lookahead
from watcher_failpredict.testbed import planner
from watcher_failpredict.testbed import policies
from watcher_failpredict.testbed import runner

from tests.unit.testbed import test_lookahead


class Recorder:
    """A fallback that records when it is asked and moves nothing."""

    def __init__(self):
        self.asked = []

    def decide(self, tb):
        self.asked.append(tb.k)
        return []


def run(scn, policy, seed=3):
    """Decide every minute over the test stretch; the moves by step."""
    tb = cluster.Testbed(scn, seed)
    out = {}
    for k in range(120, tb.n_steps - 1, 12):
        tb.run_until(k)
        moves = policy.decide(tb)
        out[k] = moves
        for vnf, dst in moves:
            tb.start_migration(vnf, dst)
    return tb, out


def test_it_plans_on_a_forecast_that_holds_and_moves_ahead_of_the_load():
    scn = test_lookahead.exact_cycles()
    fallback = Recorder()
    plan = planner.SeasonalQueueingPlanner(
        scn, runner.simulate_history(scn, 3), fallback)
    _, moves = run(scn, plan)
    # the loads repeat: every backtest within the tolerance, no fallback
    assert fallback.asked == [] and plan.fell_back == 0
    assert plan.planned == len(moves)
    assert max(plan.errors) <= load_forecast.TOLERANCE
    assert sum(len(m) for m in moves.values()) >= 1
    budget = scn['strategy']['max_migrations']
    assert all(len(m) <= budget for m in moves.values())


def test_it_reads_only_the_past():
    scn = test_lookahead.exact_cycles()
    plan = planner.SeasonalQueueingPlanner(
        scn, runner.simulate_history(scn, 3), Recorder())
    tb = test_lookahead.busy_testbed(scn, 240)
    moves = plan.decide(tb)
    assert moves
    tb.bg[:, tb.k:] = tb.bg[:, tb.k:][::-1]
    tb.rate[:, tb.k:] = tb.rate[:, tb.k:][::-1]
    assert plan.decide(tb) == moves


def drifted():
    """exact_cycles() whose test stretch runs its cycles 0.8 times as
    long, shifted by 300 s: the cycles learnt before no longer hold.
    """
    return test_lookahead.exact_cycles(
        {'period_scale': 0.8, 'phase_shift': 300.0})


def test_a_forecast_that_stopped_holding_leaves_the_decision_to_the_fallback():
    scn = drifted()
    fallback = Recorder()
    plan = planner.SeasonalQueueingPlanner(
        scn, runner.simulate_history(scn, 3), fallback)
    _, moves = run(scn, plan)
    assert plan.fell_back > 0 and plan.fell_back == len(fallback.asked)
    assert plan.fell_back + plan.planned == len(moves)
    # it fell back exactly when the backtest was off by more than allowed
    errors = np.array(plan.errors)
    assert (errors > load_forecast.TOLERANCE).sum() == plan.fell_back
    # and the fallback's decision is the one taken: none, here
    assert all(moves[k] == [] for k in fallback.asked)


def test_the_policy_falls_back_on_the_strategy_with_its_reactive_rule():
    scn = test_lookahead.exact_cycles()
    tb = cluster.Testbed(scn, 3)
    before = runner.simulate_history(scn, 3)
    policy = policies.make_policy('planner-seasonal', scn, tb, 3,
                                  before=before)
    assert isinstance(policy, planner.SeasonalQueueingPlanner)
    assert isinstance(policy.fallback, policies.StrategyPolicy)
    # the strategy's reactive rules (policies.REACTIVE), no rule of the
    # simple baselines
    assert policy.fallback.extra_params == {
        'mode': 'reactive', 'starved_window': 0, 'ranking_check': False}


def test_what_it_reads_is_what_collectd_reports_placed_where_it_ran():
    scn = test_lookahead.exact_cycles()
    plan = planner.SeasonalQueueingPlanner(
        scn, runner.simulate_history(scn, 3), Recorder())
    tb = cluster.Testbed(scn, 3)
    tb.run_until(100)
    vnf = 0
    src, dst = int(tb.host_of[vnf]), (int(tb.host_of[vnf]) + 2) % 4
    m = tb.start_migration(vnf, dst)
    tb.run_until(300)
    assert tb.host_of[vnf] == dst
    bg, demand = plan._measured(tb)
    _, host, inst = tb.metric_samples(0)
    # a VNF's demand is its CPU, in cores
    np.testing.assert_allclose(demand, inst['cpu'] / 100.0 * tb.vcpus)
    # a server's background is its load average less its VNFs' CPU: the
    # testbed's own background wherever no VNF queues and no migration
    # copies, the moved VNF counted on its source, then its destination
    per = int(scn['metrics_interval'] / tb.dt)
    true_bg = tb.bg[:, :bg.shape[1] * per].reshape(4, -1, per).mean(axis=2)
    every = scn['metrics_interval']
    copying = slice(int(m.start // every), int(np.ceil(m.end / every)) + 1)
    calm = np.ones(bg.shape[1], bool)
    calm[copying] = False
    calm &= host['cpu'].max(axis=0) < 99.0
    assert calm[:copying.start].any() and calm[copying.stop:].any()
    np.testing.assert_allclose(bg[:, calm], true_bg[:, calm], atol=0.05)
    # the placement before the move for every sample would be wrong after
    # it: the source's background short of the VNF's CPU
    first = cluster.initial_placement(tb.n_chains, tb.n_hops, tb.n_servers)
    wrong = host['load'][src] - demand[first == src].sum(axis=0)
    after = np.flatnonzero(calm)[np.flatnonzero(calm) >= copying.stop]
    assert np.abs(wrong[after] - true_bg[src, after]).min() > 0.05


def test_evaluate_reports_how_often_it_planned_and_fell_back():
    res = runner.evaluate(test_lookahead.exact_cycles(
        {'period_scale': 0.8, 'phase_shift': 300.0}),
        ['no-mig', 'planner-seasonal'])
    (seed,) = res['per_seed']['planner-seasonal']
    assert seed['fell_back'] > 0
    assert seed['planned'] + seed['fell_back'] == seed['audits']
    assert 'planned' not in res['per_seed']['no-mig'][0]


# -- the planner in the strategy: proposed-planned ---------------------------


def test_the_datasource_serves_the_instances_history_from_before_the_run():
    scn = test_lookahead.exact_cycles()
    before = runner.simulate_history(scn, 3)
    tb = cluster.Testbed(scn, 3)
    tb.before = before
    tb.run_until(120)           # 10 minutes into the run
    ds = tb.datasource(1800)
    uuids = tuple(cluster.vnf_uuid(v) for v in range(tb.n_vnfs))
    win = ds.cluster_windows(metric_windows.INSTANCE, uuids, 1800,
                             scn['metrics_interval'], metrics=('cpu',),
                             end=tb.now())
    _, _, b_inst = before.metric_samples(0)
    _, _, inst = tb.metric_samples(0)
    got = win.data['cpu']
    assert not np.isnan(got[:, :-1]).any()
    # the last 20 minutes before the run, then the run's 10
    np.testing.assert_allclose(got[:, -61:-1],
                               np.concatenate([b_inst['cpu'][:, -120:],
                                               inst['cpu']], axis=1)[:, -60:])


def test_proposed_planned_runs_the_strategy_in_planned_mode():
    scn = test_lookahead.exact_cycles()
    tb = cluster.Testbed(scn, 3)
    policy = policies.make_policy('proposed-planned', scn, tb, 3,
                                  trained_bundle=object())
    assert isinstance(policy, policies.StrategyPolicy)
    assert policy.extra_params == {
        # the look-ahead the oracle searches over, the stretch before the
        # run (an hour) as history
        'mode': 'planned', 'look_ahead': 300, 'planner_history': 3600,
        'starved_window': 0}
    assert policy.reach_back == 3600.0
    assert (policy.planned, policy.fell_back) == (0, 0)


def test_the_strategy_plans_as_the_testbed_planner_where_the_load_repeats():
    """The strategy reads collectd's samples through its datasource, the
    testbed's planner the testbed's record of them: the same plan, here
    to the bit, and most of the oracle's gain (36.99 -> 33.18 ms, the
    oracle 32.89).
    """
    res = runner.evaluate(test_lookahead.exact_cycles(),
                          ['no-mig', 'planner-seasonal', 'proposed-planned',
                           'least-cpu-gated'])
    (seed,) = res['per_seed']['proposed-planned']
    assert (seed['planned'], seed['fell_back']) == (seed['audits'], 0)
    assert seed['migrations'] >= 1
    rt = {p: f['mean_rt_all']['mean'] for p, f in res['aggregate'].items()}
    assert rt['proposed-planned'] == pytest.approx(rt['planner-seasonal'])
    assert rt['proposed-planned'] < 0.95 * rt['no-mig']
    # its reactive rules alone lose here
    assert rt['least-cpu-gated'] > rt['no-mig']


def test_the_strategy_falls_back_where_the_load_drifted():
    res = runner.evaluate(test_lookahead.exact_cycles(
        {'period_scale': 0.8, 'phase_shift': 300.0}), ['proposed-planned'])
    (seed,) = res['per_seed']['proposed-planned']
    assert seed['fell_back'] > 0
    assert seed['planned'] + seed['fell_back'] == seed['audits']


def _plans_as_in_memory(scn, backend):
    """``proposed-planned`` run through a real metrics ``backend`` (the
    ``influxdb`` argument of runner.evaluate) plans at every audit, as in
    memory, with the same moves and response times.
    """
    via = runner.evaluate(scn, ['proposed-planned'], influxdb=backend)
    mem = runner.evaluate(scn, ['proposed-planned'])
    (v_seed,), (m_seed,) = (via['per_seed']['proposed-planned'],
                            mem['per_seed']['proposed-planned'])
    assert (v_seed['planned'], v_seed['fell_back']) == \
        (m_seed['planned'], m_seed['fell_back']) == (m_seed['audits'], 0)
    assert v_seed['migrations'] == m_seed['migrations'] >= 1
    assert v_seed['mean_rt_all'] == pytest.approx(m_seed['mean_rt_all'])


def test_through_influxdb_the_plan_reads_the_history_before_the_run(
        influxdb_server):
    """``evaluate --influxdb``: the stretch before the run goes into the
    run's database too, as far back as the policy reads, so the strategy
    finds the history an operator's InfluxDB would hold and plans as it
    does in memory.
    """
    scn = test_lookahead.exact_cycles()
    _plans_as_in_memory(scn, {'url': influxdb_server.url,
                              'prefix': 'tbplan'})
    # the database holds the hour before the run (planner_history), no more
    import json
    start = cluster.Testbed(scn, scn['seed']).now()
    db = 'tbplan_' + scn['name'] + '_proposed_planned_' + str(scn['seed'])
    rows = json.loads(influxdb_server.query(
        'SELECT count("value") FROM "load_shortterm" WHERE "host" = '
        f"'compute-00' AND time < {int(start)}s", db=db))
    before = rows['results'][0]['series'][0]['values'][0][1]
    assert before == 3600 // scn['metrics_interval']


def test_through_prometheus_the_plan_reads_the_history_before_the_run():
    """The same through a real Prometheus (its remote-write receiver)."""
    from watcher_failpredict.datasources.prometheus import local_server
    server = local_server.PrometheusServer(remote_write_receiver=True)
    with server:
        _plans_as_in_memory(test_lookahead.exact_cycles(), {
            'backend': 'prometheus', 'url': server.url, 'prefix': 'tbplan'})


# -- the strategy's planner on the true future: planner-perfect --------------


def test_the_perfect_forecast_is_the_coming_load_at_collectds_interval():
    scn = test_lookahead.exact_cycles()
    plan = planner.PerfectForecastPlanner(scn, 0.85)
    tb = test_lookahead.busy_testbed(scn, 240)
    bg, demand = plan.forecast(tb)
    per = int(scn['metrics_interval'] / tb.dt)
    steps = int(lookahead.look_ahead_seconds(scn) / scn['metrics_interval'])
    assert bg.shape == (tb.n_servers, steps)
    assert demand.shape == (tb.n_vnfs, steps)
    # the first interval: the mean of the testbed's own coming steps
    np.testing.assert_allclose(bg[:, 0], tb.bg[:, 240:240 + per].mean(
        axis=1))
    np.testing.assert_allclose(demand[:, 1], np.mean(
        [tb.offered_cores(k) for k in range(240 + per, 240 + 2 * per)],
        axis=0))
    # it reads the future (planner-seasonal reads only the past)
    tb.bg[:, tb.k:] = tb.bg[:, tb.k:] + 1.0
    np.testing.assert_allclose(plan.forecast(tb)[0], bg + 1.0)


def test_the_perfect_forecast_ends_with_the_stretch():
    scn = test_lookahead.exact_cycles()
    plan = planner.PerfectForecastPlanner(scn, 0.85)
    tb = cluster.Testbed(scn, 3)
    tb.run_until(tb.n_steps)
    assert plan.forecast(tb) is None
    assert plan.decide(tb) == [] and plan.calls == 1


def _starve(tb, host, extra):
    """Load ``host``'s background with ``extra`` cores from now on."""
    tb.bg[host, tb.k:] = tb.bg[host, tb.k:] + extra


def test_a_vnf_leaves_only_a_host_the_future_sees_starved():
    scn = test_lookahead.exact_cycles()
    tb = cluster.Testbed(scn, 3)
    tb.run_until(240)
    calm = planner.PerfectForecastPlanner(scn, 0.85)
    # a floor no speed is under: no host is a source, whatever a move is
    # worth
    assert planner.PerfectForecastPlanner(scn, 0.0).decide(tb) == []

    def starved():
        bg, demand = calm.forecast(tb)
        np.add.at(bg, tb.host_of, demand)
        worst = move_gate.lowest_period_speed(
            bg, np.full(tb.n_servers, tb.cores),
            lookahead.trigger_steps(scn, scn['metrics_interval']))
        return set(np.flatnonzero(worst < 0.85).tolist())
    before = starved()
    assert len(before) < tb.n_servers
    host = min(set(range(tb.n_servers)) - before)
    # a host far over its cores from now on: its VNFs may leave; the
    # VNFs of a host the future sees getting what they ask for may not
    _starve(tb, host, 2.0 * tb.cores)
    assert starved() == before | {host}
    moves = calm.decide(tb)
    assert moves
    sources = {int(tb.host_of[v]) for v, _ in moves}
    assert host in sources and sources <= before | {host}
    assert all(d not in sources for _, d in moves)
    assert len(moves) <= scn['strategy']['max_migrations']
    # without the extra load the same host is never left
    tb.bg[host, tb.k:] -= 2.0 * tb.cores
    assert host not in {int(tb.host_of[v]) for v, _ in calm.decide(tb)}


def test_a_destination_must_stay_out_of_failure_state_with_the_vnf():
    scn = test_lookahead.exact_cycles()
    tb = cluster.Testbed(scn, 3)
    tb.run_until(240)
    _starve(tb, 1, 2.0 * tb.cores)
    plan = planner.PerfectForecastPlanner(scn, 0.85)
    keep = plan._out_of_failure(tb)([])
    vnf = int(np.flatnonzero(tb.host_of == 1)[0])
    _, host, inst = tb.metric_samples(0)
    n = lookahead.trigger_steps(scn, scn['metrics_interval'])
    cpu = host['cpu'][:, -n:].mean(axis=1)
    points = inst['cpu'][vnf, -n:].mean() * tb.vcpus / tb.cores
    threshold = scn['trigger']['threshold']
    for dest in range(tb.n_servers):
        assert keep(vnf, dest) == (cpu[dest] + points < threshold)
    # a move planned before adds its VNF's CPU to its destination and
    # takes it off its source
    other = int(np.flatnonzero(tb.host_of == 1)[1])
    first = int(np.argmin(cpu))
    heavy = inst['cpu'][other, -n:].mean() * tb.vcpus / tb.cores
    assert heavy > 0
    after = plan._out_of_failure(tb)([(other, first)])
    for dest in range(tb.n_servers):
        added = heavy if dest == first else -heavy if dest == 1 else 0.0
        assert after(vnf, dest) == (cpu[dest] + added + points < threshold)
    assert sum(keep(vnf, d) for d in range(tb.n_servers)) < tb.n_servers


def test_planner_perfect_gates_with_the_strategys_speed_floor():
    scn = test_lookahead.exact_cycles()
    tb = cluster.Testbed(scn, 3)
    policy = policies.make_policy('planner-perfect', scn, tb, 3)
    assert isinstance(policy, planner.PerfectForecastPlanner)
    strategy = type(policies.load_strategy())
    assert policy.speed_floor == strategy.get_schema()['properties'][
        'speed_floor']['default'] == 0.85
    assert 'planner-perfect' in policies.POLICIES
    assert 'planner-perfect' not in policies.NEEDS_HISTORY + policies.TRAINED


def test_planner_perfect_takes_the_gain_where_the_load_repeats():
    res = runner.evaluate(test_lookahead.exact_cycles(),
                          ['no-mig', 'planner-perfect', 'oracle'])
    rt = {p: f['mean_rt_all']['mean'] for p, f in res['aggregate'].items()}
    (seed,) = res['per_seed']['planner-perfect']
    assert seed['migrations'] >= 1
    assert rt['planner-perfect'] < 0.95 * rt['no-mig']
    assert rt['oracle'] <= rt['planner-perfect'] * 1.01
