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

"""The testbed end to end on a short scenario, and scenario validation."""

import copy
import json

import numpy as np
import pytest
import yaml

from watcher_failpredict.cmd import main as cli
from watcher_failpredict.strategies import predicted_least_failure as plf
from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import loads
from watcher_failpredict.testbed import policies
from watcher_failpredict.testbed import runner
from watcher_failpredict.testbed import scenario

SHORT = {
    'name': 'short', 'seed': 3, 'train_duration': 3600,
    'test_duration': 1800, 'decision_interval': 60,
    'servers': {'count': 4, 'background': [
        {'kind': 'square', 'base': 20, 'amplitude': 120, 'period': 1200,
         'duty': 0.4, 'noise': 3},
        {'kind': 'sine', 'base': 10, 'amplitude': 60, 'period': 900,
         'phase': 300, 'noise': 3},
        {'kind': 'spikes', 'base': 30, 'amplitude': 110, 'period': 1000,
         'width': 0.3, 'phase': 500, 'noise': 3},
        {'kind': 'sawtooth', 'base': 10, 'amplitude': 60, 'period': 800,
         'noise': 3}]},
    'chains': {'count': 3, 'hops': [
        {'name': 'firewall', 'cost': 0.002}, {'name': 'ips', 'cost': 0.004},
        {'name': 'dpi', 'cost': 0.006}, {'name': 'web', 'cost': 0.003}],
        'rate': {'kind': 'sine', 'base': 60, 'amplitude': 40,
                 'period': 1800, 'noise': 3}},
}


@pytest.fixture(scope='module')
def short():
    return scenario.validate(SHORT)


@pytest.fixture(scope='module')
def evaluated(short):
    return runner.evaluate(short, list(policies.POLICIES), seeds=1)


# -- scenarios ----------------------------------------------------------------


@pytest.mark.parametrize('name', ['paper', 'paper-drift', 'paper-v1',
                                  'paper-drift-v1', 'paper-phases'])
def test_builtin_scenarios_load_with_paper_defaults(name):
    scn = scenario.load(name)
    assert scn['servers']['cores'] == 12
    assert scn['servers']['memory_mb'] == 24576
    assert scn['chains']['vcpus'] == 1 and scn['chains']['memory_mb'] == 1024
    assert [h['name'] for h in scn['chains']['hops']] == [
        'firewall', 'ips', 'dpi', 'web']
    assert scn['trigger']['threshold'] == 90
    assert (scn['drift']['period_scale'] != 1.0) == name.startswith(
        'paper-drift')
    assert scn['name'] == name


def test_paper_v2_is_v1_with_cycles_four_times_longer():
    v1, v2 = scenario.load('paper-v1'), scenario.load('paper')
    for a, b in zip(v1['servers']['background'], v2['servers']['background']):
        assert b['period'] == 4 * a['period'] and b['phase'] == 4 * a['phase']
        assert (b['kind'], b['amplitude'], b['base']) == (
            a['kind'], a['amplitude'], a['base'])
    assert (v2['train_duration'], v2['test_duration']) == (21600, 10800)


def test_paper_phases_is_paper_with_phases_drawn_per_seed():
    paper, phases = scenario.load('paper'), scenario.load('paper-phases')
    assert phases['random_phases'] and not paper['random_phases']
    assert {k: v for k, v in phases.items()
            if k not in ('name', 'description', 'random_phases')} == {
        k: v for k, v in paper.items()
        if k not in ('name', 'description', 'random_phases')}


def test_random_phases_shift_each_server_per_seed_for_every_stretch():
    data = copy.deepcopy(SHORT)
    data['random_phases'] = True
    scn = scenario.validate(data)
    train = cluster.Testbed(scn, 4, 'train')
    test = cluster.Testbed(scn, 4, 'test')
    other = cluster.Testbed(scn, 5, 'train')
    off = train.phase_offsets()
    # the same cluster over time: one draw per server and seed
    np.testing.assert_array_equal(off, test.phase_offsets())
    assert not np.allclose(off, other.phase_offsets())
    bg = scn['servers']['background']
    periods = np.array([bg[s % len(bg)]['period']
                        for s in range(train.n_servers)])
    assert np.all((off >= 0) & (off < periods)) and np.ptp(off) > 0
    # server 0's background is its pattern with that phase added (its noise
    # is the first draw of the training stretch's generator)

    def server0(shift):
        return loads.pattern(bg[0], train.t_abs, np.random.default_rng(
            [4, 0]), 1.0, shift) * train.cores / 100
    np.testing.assert_allclose(train.bg[0], server0(off[0]))
    assert np.abs(train.bg[0] - server0(0.0)).max() > 1.0
    # off by default: the seeds change the noise only
    plain = cluster.Testbed(scenario.validate(SHORT), 4, 'train')
    assert not plain.phase_offsets().any()


@pytest.mark.parametrize('change,message', [
    (lambda d: d.update(colour='red'), r'unknown key\(s\) colour'),
    (lambda d: d['servers'].update(cpus=4), r'servers\.cpus'),
    (lambda d: d['chains']['rate'].update(base=-5),
     r'chains\.rate\.base: must be >= 0, got -5'),
    (lambda d: d['chains']['rate'].update(noise=-1), r'chains\.rate\.noise'),
    (lambda d: d['chains']['hops'][0].update(cost=0),
     r'chains\.hops\[0\]\.cost: must be positive'),
    (lambda d: d['servers']['background'][0].update(kind='wobble'),
     r"servers\.background\[0\]\.kind: unknown pattern 'wobble'"),
    (lambda d: d.update(step='fast'), r'step: must be a number'),
    (lambda d: d.update(random_phases=1), r'random_phases: must be bool'),
    (lambda d: d.update(decision_interval=7), r'decision_interval'),
])
def test_scenario_validation_names_the_bad_key(change, message):
    data = copy.deepcopy(SHORT)
    change(data)
    with pytest.raises(scenario.ScenarioError, match=message):
        scenario.validate(data)


def test_trace_scenario_missing_column_and_file(tmp_path):
    csv_file = tmp_path / 'trace.csv'
    csv_file.write_text('time,cpu_util\n0,50\n')
    data = copy.deepcopy(SHORT)
    data['servers']['background'] = [
        {'kind': 'trace', 'file': 'trace.csv', 'column': 'cpu'}]
    path = tmp_path / 's.yaml'
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(scenario.ScenarioError,
                       match=r"background\[0\]\.column: .* no column 'cpu'"):
        scenario.load(str(path))
    data['servers']['background'][0]['column'] = 'cpu_util'
    path.write_text(yaml.safe_dump(data))
    assert scenario.load(str(path))['servers']['background'][0][
        'file'] == str(csv_file)
    data['servers']['background'][0]['file'] = 'nope.csv'
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(scenario.ScenarioError, match='cannot read'):
        scenario.load(str(path))


def test_unknown_scenario_name():
    with pytest.raises(scenario.ScenarioError, match='neither a built-in'):
        scenario.load('no-such-scenario')


# -- the simulation -----------------------------------------------------------


def test_same_seed_same_run_other_seed_other_run(short):
    a = runner.run_policy(short, 'random', 5)[0]
    b = runner.run_policy(short, 'random', 5)[0]
    c = runner.run_policy(short, 'random', 6)[0]
    np.testing.assert_array_equal(a.rec_completed, b.rec_completed)
    np.testing.assert_array_equal(a.rec_samples, b.rec_samples)
    assert [(m.vnf, m.dst, m.start) for m in a.migrations] == \
        [(m.vnf, m.dst, m.start) for m in b.migrations]
    assert not np.array_equal(a.rec_completed, c.rec_completed)


def test_migration_moves_vnf_after_duration_with_outage(short):
    quiet = copy.deepcopy(short)
    quiet['servers']['background'] = [scenario.check_pattern(
        'bg', {'kind': 'constant', 'base': 20})]
    tb = cluster.Testbed(quiet, 1)
    tb.run_until(20)
    m = tb.start_migration(2, 3)
    assert tb.start_migration(2, 0) is None      # already migrating
    assert 30 < m.end - m.start < 50
    before = tb.demand(tb.k).copy()
    tb.run_until(20 + int(m.end - m.start) // 5 - 1)
    assert tb.host_of[2] == m.src                  # serves from the source
    assert before[m.dst] == pytest.approx(
        tb.bg[m.dst, 20] + np.sum(tb.offered_cores(20)[tb.host_of == m.dst])
        + quiet['migration']['overhead_cores'])
    k_end = int(m.end // tb.dt)
    tb.run_until(k_end + 4)
    assert tb.host_of[2] == m.dst and not tb.active
    chain = 2 // tb.n_hops
    # requests caught by the switch-over outage wait for its end
    rt = np.nanmean(tb.rec_samples[:, chain], axis=1)
    assert rt[k_end] > rt[k_end - 2] + 0.05
    assert rt[k_end + 3] < rt[k_end - 2] + 0.02


def test_compute_model_mirrors_placement(short):
    tb = cluster.Testbed(short, 1)
    model = tb.compute_model()
    assert len(model.get_all_compute_nodes()) == 4
    node = model.get_node_by_instance_uuid(cluster.vnf_uuid(5))
    assert node.hostname == cluster.host_name(int(tb.host_of[5]))


def test_compute_model_holds_destination_claim_during_migration(short):
    # Placement holds the destination's allocation during a live
    # migration; without it a later audit could over-subscribe that host
    tb = cluster.Testbed(short, 1)
    tb.run_until(20)
    dst = int((tb.host_of[2] + 1) % tb.n_servers)
    on_dst = int(np.sum(tb.host_of == dst))
    m = tb.start_migration(2, dst)
    model = tb.compute_model()
    node = model.get_node_by_uuid(f'node-{dst:02d}')
    free = model.get_node_free_resources(node)
    assert free['vcpu'] == short['servers']['cores'] - on_dst - 1
    assert free['memory'] == short['servers']['memory_mb'] - \
        (on_dst + 1) * short['chains']['memory_mb']
    # the VNF itself is still on its source
    src = model.get_node_by_instance_uuid(cluster.vnf_uuid(2))
    assert src.hostname == cluster.host_name(m.src)
    tb.run_until(int(m.end // tb.dt) + 2)
    model = tb.compute_model()
    node = model.get_node_by_uuid(f'node-{dst:02d}')
    assert node.vcpu_reserved == 0
    assert model.get_node_free_resources(node)['vcpu'] == \
        short['servers']['cores'] - on_dst - 1


def test_migration_history_dates_like_watchers_action_table(short):
    # Watcher dates an ongoing migration "now" and a finished one by its
    # completion (updated_at), so cooldowns run from the end of a move
    tb = cluster.Testbed(short, 1)
    tb.run_until(20)
    m = tb.start_migration(2, int((tb.host_of[2] + 1) % tb.n_servers))
    tb.run_until(24)
    (ongoing,) = tb.migration_history(0)
    assert ongoing.at == tb.now()
    assert ongoing.instance_uuid == cluster.vnf_uuid(2)
    assert ongoing.destination_node == cluster.host_name(m.dst)
    tb.run_until(int(m.end // tb.dt) + 10)
    (done,) = tb.migration_history(0)
    assert done.at == pytest.approx(cluster.EPOCH + tb.offset + m.end)
    assert tb.migration_history(done.at + 1) == []


# -- policies -----------------------------------------------------------------


def test_strategy_in_the_loop_is_the_one_watcher_loads(short, monkeypatch):
    from watcher.decision_engine.loading import default
    loaded = []
    real_load = default.DefaultStrategyLoader.load

    def spy(self, name, **kwargs):
        obj = real_load(self, name, **kwargs)
        loaded.append(obj)
        return obj

    monkeypatch.setattr(default.DefaultStrategyLoader, 'load', spy)
    executed = []
    real_execute = plf.PredictedLeastFailure.execute

    def count(self, audit=None):
        executed.append(self)
        return real_execute(self, audit)

    monkeypatch.setattr(plf.PredictedLeastFailure, 'execute', count)
    tb, policy = runner.run_policy(short, 'least-cpu', 1)
    assert len(loaded) == 1
    assert type(loaded[0]) is plf.PredictedLeastFailure
    assert policy.strategy is loaded[0]
    ticks = (tb.n_steps - 600 // 5) // 12
    assert policy.calls == len(executed) >= ticks
    assert all(s is loaded[0] for s in executed)
    assert tb.migrations, 'the strategy never migrated'


def test_no_mig_never_migrates(evaluated):
    res = evaluated['per_seed']['no-mig'][0]
    assert res['migrations'] == 0
    assert not evaluated['runs']['no-mig'].migrations


def test_proposed_uses_a_model_trained_on_the_training_stretch(evaluated):
    ev = evaluated['evaluations'][0]
    assert ev['n_train'] > 0
    assert ev['model']['roc_auc'] > 0.5
    assert evaluated['per_seed']['proposed'][0]['audits'] > 0


def test_oracle_peak_at_least_as_good_as_every_policy(evaluated):
    # the failure-state oracle (ranking by the realised peak) keeps its
    # property on the failure state; the QoS bound is the look-ahead
    # oracle's (test_lookahead)
    agg = evaluated['aggregate']
    oracle = agg['oracle-peak']
    for name in ('random', 'least-cpu', 'proposed'):
        assert oracle['failure_server_s']['mean'] <= \
            agg[name]['failure_server_s']['mean'] + 1e-9, name


def test_report_figures_are_consistent(evaluated):
    for name, runs in evaluated['per_seed'].items():
        r = runs[0]
        assert r['p50'] <= r['p99'] <= r['p100'] <= 2000.0 + 1e-6
        assert r['throughput'] > 0 and r['mean_rt'] > 0
    assert evaluated['aggregate']['no-mig']['gain_throughput'] == 0.0


def test_evaluate_command_writes_table_json_and_plots(tmp_path, capsys):
    path = tmp_path / 'short.yaml'
    data = copy.deepcopy(SHORT)
    data['test_duration'] = 900
    path.write_text(yaml.safe_dump(data))
    out_json = tmp_path / 'r.json'
    import io
    stdout, stderr = io.StringIO(), io.StringIO()
    rc = cli.main(['evaluate', '--scenario', str(path), '--policies',
                   'no-mig,least-cpu', '--json', str(out_json), '--plots',
                   str(tmp_path / 'plots')], stdout=stdout, stderr=stderr)
    assert rc == 0, stderr.getvalue()
    text = stdout.getvalue()
    assert 'no-mig' in text and 'least-cpu' in text and 'req/s' in text
    assert 'evaluate short [' in stderr.getvalue()
    doc = json.loads(out_json.read_text())
    assert set(doc['results']) == {'no-mig', 'least-cpu'}
    # the headline and the objective are named in the file
    assert doc['headline'] == 'mean_rt_all'
    assert doc['slo_ms'] == pytest.approx(77.0)
    for key in ('gain', 'oracle_share', 'gain_rt', 'gain_slo_goodput'):
        assert key in doc['results']['least-cpu']
    assert len(list((tmp_path / 'plots').glob('*.png'))) == 4
    rc = cli.main(['evaluate', '--scenario', str(path), '--policies',
                   'bogus'], stdout=io.StringIO(), stderr=stderr)
    assert rc == 2 and 'bogus' in stderr.getvalue()


def test_evaluate_help_names_every_policy_and_built_in_scenario(capsys):
    from watcher_failpredict.testbed import scenario
    with pytest.raises(SystemExit) as exc:
        cli.main(['evaluate', '--help'])
    assert exc.value.code == 0
    text = ' '.join(capsys.readouterr().out.split())
    for name in policies.POLICIES:
        assert name in text
    for name in scenario.builtin_names():
        assert name in text


def test_host_and_vnf_names_map_back_to_their_indexes():
    assert cluster.host_name(7) == 'compute-07'
    assert cluster.host_index(cluster.host_name(7)) == 7
    assert cluster.host_index('compute-123') == 123
    assert cluster.vnf_index(cluster.vnf_uuid(42)) == 42
    with pytest.raises(ValueError, match="'node-07' is not a testbed "
                       "hostname"):
        cluster.host_index('node-07')
    with pytest.raises(ValueError, match='not a testbed VNF UUID'):
        cluster.vnf_index('compute-01')
