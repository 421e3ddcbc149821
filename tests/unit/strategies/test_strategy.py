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

"""predicted_least_failure through its public execute().

Clusters are real Watcher ModelRoot objects; metrics live in the project's
InMemoryDataSource (the same windows code as the InfluxDB datasource); the
ranking tests use a model really trained by the project's training API.
Rule tests use a transparent stand-in model (risk = mean CPU / 100) so that
each rule's effect is visible in isolation.
"""

import logging
from unittest import mock

import jsonschema
import numpy as np
import pytest
from watcher.common import utils
from watcher.decision_engine.model import model_root

from watcher_failpredict import conf as fp_conf
from watcher_failpredict.datasources import memory
from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.prediction import training
from watcher_failpredict.strategies import errors
from watcher_failpredict.strategies import migrations
from watcher_failpredict.strategies import predicted_least_failure as plf
from watcher_failpredict.testbed import audit_cluster
from watcher_failpredict.testbed.audit_cluster import Cluster
from watcher_failpredict.testbed.audit_cluster import META
from watcher_failpredict.testbed.audit_cluster import NOW
from watcher_failpredict.testbed.audit_cluster import STEP

# the strategy and the modules of its modes (planned_mode, reactive_mode,
# proactive_mode) log under this package
LOGGER = 'watcher_failpredict.strategies'


def moves(solution):
    return [(a['input_parameters']['resource_id'],
             a['input_parameters']['source_node'],
             a['input_parameters']['destination_node'])
            for a in solution.actions]


def indicators(solution):
    return {i.name: i.value for i in solution.efficacy_indicators}


# -- schema -------------------------------------------------------------------


def test_schema_defaults_filled_like_watcher_api():
    params = {}
    utils.StrictDefaultValidatingDraft4Validator(
        plf.PredictedLeastFailure.get_schema()).validate(params)
    assert params == {'threshold': 90.0, 'period': 300, 'granularity': 10,
                      'horizon': None, 'max_migrations': 1, 'cooldown': 600,
                      'received_cooldown': 0,
                      'mode': 'planned', 'risk_threshold': 0.5,
                      'cost_weight': 1.0, 'move_rule': 'queueing',
                      'speed_floor': 0.85, 'starved_window': 60,
                      'instance_choice': 'most_relief',
                      'look_ahead': None, 'planner_history': 21600,
                      'planner_granularity': None,
                      'forecast_tolerance': 0.2,
                      'planner_forecast': 'seasonal_or_analog',
                      'forecast_timing_margin': None,
                      'fallback_ranking': 'current_cpu',
                      'ranking_check': True}
    for spec in plf.PredictedLeastFailure.get_schema()['properties'].values():
        assert spec['description']


@pytest.mark.parametrize('bad', [
    {'threshold': 150}, {'threshold': 'high'}, {'period': 0},
    {'granularity': 2.5}, {'horizon': 'soon'}, {'horizon': 0},
    {'max_migrations': 0}, {'cooldown': -1},
    {'instance_choice': 'biggest'}, {'instance_choice': 'Most_Relief'}])
def test_schema_rejects_invalid_parameters(bad):
    with pytest.raises(jsonschema.ValidationError):
        utils.StrictDefaultValidatingDraft4Validator(
            plf.PredictedLeastFailure.get_schema()).validate(bad)


def test_schema_rejects_unknown_parameters():
    from watcher.common import exception
    schema = plf.PredictedLeastFailure.get_schema()
    with pytest.raises(exception.AuditParameterNotAllowed):
        utils.StrictDefaultValidatingDraft4Validator(schema).validate(
            {'colldown': 60})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate({'colldown': 60})


def test_names_and_config_opts():
    cls = plf.PredictedLeastFailure
    assert cls.get_name() == 'predicted_least_failure'
    assert cls.get_goal_name() == 'failure_mitigation'
    opts = {o.name: o for o in cls.get_config_opts()}
    # any datasource name is accepted (Watcher's own option has choices)
    opts['datasources'].type('failpredict_influxdb')
    assert opts['check_optimize_metadata'].default is False


# -- trigger ------------------------------------------------------------------


@pytest.mark.parametrize('cpu,expect_moves', [(90.0, 1), (89.9, 0)])
def test_trigger_at_and_below_threshold(cpu, expect_moves):
    c = Cluster()
    c.host('src', cpu)
    c.host('dst', 20.0)
    c.instance('vm1', 'src', cpu=100.0, vcpus=2)
    # the paper's trigger alone: at 89.9 % src's consumers starve all the
    # same (starved_window, tests/unit/strategies/test_queueing.py)
    solution = c.strategy(mode='reactive', starved_window=0).execute()
    assert len(moves(solution)) == expect_moves
    assert indicators(solution)['hosts_in_failure'] == expect_moves


def test_trigger_uses_mean_over_period_only():
    c = Cluster()
    # the first half of the history is saturated, the last 300 s calm
    c.host('src', np.r_[np.full(30, 100.0), np.full(30, 50.0)])
    c.host('dst', 20.0)
    c.instance('vm1', 'src', cpu=100.0, vcpus=2)
    assert moves(c.strategy().execute()) == []


# -- which VNF ----------------------------------------------------------------


def _choice_cluster():
    """A failing host whose cheapest eligible instances are ineligible."""
    c = Cluster()
    c.host('src', 95.0)
    c.host('dst', 10.0, vcpus=48, memory=262144)
    # Ineligible ones are the cheapest relieving instances: never chosen.
    c.instance('excluded', 'src', cpu=100, vcpus=2, memory=512,
               watcher_exclude=True)
    c.instance('locked', 'src', cpu=100, vcpus=2, memory=512, locked=True)
    c.instance('stopped', 'src', cpu=100, vcpus=2, memory=512,
               state='stopped')
    c.instance('nometrics', 'src', vcpus=2, memory=512, metrics=False)
    # Eligible: 'tiny' does not end the overload (95 - 100*1/12 >= 90),
    # 'big' and 'small' do; 'small' costs less.
    c.instance('tiny', 'src', cpu=60, vcpus=1, memory=256)
    c.instance('big', 'src', cpu=100, vcpus=2, memory=8192)
    c.instance('small', 'src', cpu=100, vcpus=2, memory=2048)
    return c


def test_instance_choice_skips_ineligible_and_picks_cheapest_relieving():
    c = _choice_cluster()
    solution = c.strategy(move_rule='speed_floor',
                          instance_choice='cheapest_ending').execute()
    assert moves(solution) == [('small', 'src', 'dst')]
    assert c.model.get_node_by_instance_uuid('small').hostname == 'dst'


def test_instance_choice_by_default_moves_the_largest_eligible_consumer():
    # (the speed_floor rule's choice; the queueing rule's is in
    # test_queueing.py) 'big' and 'small' relieve the same (2 vCPUs at
    # 100 %); the ineligible ones relieve as much but are never chosen;
    # 'small' is the cheaper of the two
    c = _choice_cluster()
    c.instance('busiest', 'src', cpu=100, vcpus=4, memory=8192)
    assert moves(c.strategy(move_rule='speed_floor').execute()) == [
        ('busiest', 'src', 'dst')]
    c = _choice_cluster()
    assert moves(c.strategy(move_rule='speed_floor').execute()) == [
        ('small', 'src', 'dst')]


def _came_back_from(host, ago, hosts=('dst',)):
    """'src', failing, and vm1 on it, which came from ``host``."""
    c = Cluster()
    c.host('src', 95.0)
    for name in hosts:
        c.host(name, 10.0)
    c.instance('vm1', 'src', cpu=100, vcpus=2)
    c.history.append(migrations.Migration('vm1', host, 'src', NOW - ago))
    return c


def test_an_instance_goes_back_only_once_the_cooldown_is_over():
    assert moves(_came_back_from('dst', 700).strategy().execute()) == [
        ('vm1', 'src', 'dst')]
    assert moves(_came_back_from('dst', 700).strategy(cooldown=800)
                 .execute()) == []


def test_an_instance_whose_migration_is_under_way_is_not_moved(caplog):
    # Watcher dates a migration under way now; Nova has not moved vm1 yet
    caplog.set_level(logging.DEBUG)
    c = Cluster()
    c.host('src', 95.0)
    c.host('dst', 10.0)
    c.host('other', 10.0)
    c.instance('vm1', 'src', cpu=100, vcpus=2)
    c.history.append(migrations.Migration('vm1', 'src', 'dst', NOW))
    assert moves(c.strategy().execute()) == []
    assert 'Instance vm1 on src not a candidate: its migration to dst is ' \
        'under way' in caplog.text


def test_an_instance_moves_on_within_the_cooldown_but_not_back(caplog):
    # it came from dst a minute ago: src turned out overloaded, so it
    # moves on to other, not back to dst (the least loaded)
    caplog.set_level(logging.DEBUG)
    c = _came_back_from('dst', 60, hosts=('dst', 'other'))
    solution = c.strategy().execute()
    assert moves(solution) == [('vm1', 'src', 'other')]
    assert 'Host dst rejected as destination of vm1: the instance left ' \
        'it 60 s ago (cooldown)' in caplog.text


def _just_received():
    """'src', failing, received 'other' a minute ago; vm1 can leave."""
    c = Cluster()
    c.host('src', 95.0)
    c.host('dst', 10.0)
    c.instance('vm1', 'src', cpu=100, vcpus=2)
    c.instance('other', 'src', cpu=10, vcpus=1)
    c.history.append(migrations.Migration('other', 'dst', 'src', NOW - 60))
    return c


def test_host_that_just_received_an_instance_is_relieved_of_another():
    # a destination that turns out overloaded is not left to its fate for
    # the cooldown: only the instance that arrived waits (cooldown)
    solution = _just_received().strategy().execute()
    assert moves(solution) == [('vm1', 'src', 'dst')]
    assert indicators(solution)['hosts_relieved'] == 1


def test_received_cooldown_keeps_a_host_that_just_received_from_sources():
    solution = _just_received().strategy(received_cooldown=120).execute()
    assert moves(solution) == []
    assert indicators(solution)['hosts_in_failure'] == 1
    assert indicators(solution)['hosts_relieved'] == 0
    # once it has passed, the host is a source again
    solution = _just_received().strategy(received_cooldown=60).execute()
    assert moves(solution) == [('vm1', 'src', 'dst')]


def test_audit_tag_filter_when_configured():
    c = Cluster()
    c.host('src', 95.0)
    c.host('dst', 10.0)
    c.instance('cheap', 'src', cpu=100, vcpus=2, memory=512,
               metadata={'optimize': 'false'})
    c.instance('dear', 'src', cpu=100, vcpus=2, memory=4096, metadata={})
    # (speed_floor: the queueing rule would not move a VM whose live
    # migration does not converge, test_queueing.py)
    strategy = c.strategy(move_rule='speed_floor')
    strategy.config['check_optimize_metadata'] = True
    assert moves(strategy.execute()) == [('dear', 'src', 'dst')]


# -- where --------------------------------------------------------------------


def test_each_destination_rejection_reason(caplog):
    c = Cluster()
    c.host('src', 95.0)
    # every rejected host is calmer than 'ok', so only the rule stops it
    c.host('disabled', 5.0, status='disabled')
    c.host('down', 5.0, state='down')
    c.host('fullcpu', 5.0, vcpus=4)
    c.instance('hog', 'fullcpu', vcpus=3, metrics=False)
    c.host('fullram', 5.0, memory=1024)
    c.host('fulldisk', 5.0, disk=5)
    c.host('stale', 5.0, age=250)
    c.host('nometrics', 5.0, metrics=False)
    c.host('wouldfail', 80.0)
    c.host('ok', 60.0)
    c.instance('vm1', 'src', cpu=100, vcpus=2, memory=2048, disk=10)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        solution = c.strategy(move_rule='speed_floor').execute()
    assert moves(solution) == [('vm1', 'src', 'ok')]
    text = caplog.text
    for host, reason in [('src', 'it is the source'),
                         ('disabled', 'compute service disabled'),
                         ('down', 'compute service down'),
                         ('fullcpu', 'not enough vCPU'),
                         ('fullram', 'not enough MB RAM'),
                         ('fulldisk', 'not enough GB disk'),
                         ('stale', 'stale metrics'),
                         ('nometrics', 'no metrics'),
                         ('wouldfail', 'would be in failure state')]:
        assert f'Host {host} rejected as destination of vm1: {reason}' in \
            text, host
    assert indicators(solution)['hosts_skipped'] == 2


def test_no_feasible_destination_plans_nothing():
    c = Cluster()
    c.host('src', 95.0)
    c.host('busy', 85.0)
    c.instance('vm1', 'src', cpu=100, vcpus=2)
    solution = c.strategy().execute()
    assert moves(solution) == []
    assert indicators(solution)['hosts_relieved'] == 0


def test_working_state_updated_between_moves():
    c = Cluster()
    c.host('s1', 97.0)
    c.host('s2', 95.0)
    c.host('d1', 60.0)
    c.host('d2', 62.0)
    # each VNF adds 25 points: d1 first (lowest risk); then d1 would be
    # at 110 %, so the second goes to d2
    c.instance('a', 's1', cpu=100, vcpus=3)
    c.instance('b', 's2', cpu=100, vcpus=3)
    solution = c.strategy(max_migrations=2).execute()
    assert moves(solution) == [('a', 's1', 'd1'), ('b', 's2', 'd2')]
    assert c.model.get_node_by_instance_uuid('a').hostname == 'd1'
    assert c.model.get_node_by_instance_uuid('b').hostname == 'd2'
    ind = indicators(solution)
    assert ind['hosts_in_failure'] == 2
    assert ind['hosts_relieved'] == 2


def test_resources_of_planned_moves_are_accounted():
    c = Cluster()
    c.host('s1', 97.0)
    c.host('s2', 95.0)
    # 'small' is the calmer host but has room for one 3-vCPU VNF only
    c.host('small', 10.0, vcpus=24)
    c.instance('hog', 'small', vcpus=19, metrics=False)
    c.host('large', 30.0)
    c.instance('a', 's1', cpu=100, vcpus=3)
    c.instance('b', 's2', cpu=100, vcpus=3)
    bundle = audit_cluster.MeanCpuRisk()
    solution = c.strategy(bundle=bundle, max_migrations=2).execute()
    assert moves(solution) == [('a', 's1', 'small'), ('b', 's2', 'large')]


@pytest.mark.parametrize('max_migrations,expected', [(1, 1), (2, 2), (5, 3)])
def test_max_migrations_respected(max_migrations, expected):
    c = Cluster()
    for i, cpu in enumerate((99.0, 97.0, 95.0)):
        c.host(f's{i}', cpu)
        c.instance(f'vm{i}', f's{i}', cpu=100, vcpus=2)
    c.host('d', 0.0, vcpus=64, memory=262144)
    solution = c.strategy(max_migrations=max_migrations).execute()
    planned = moves(solution)
    assert len(planned) == expected
    # the most loaded host first
    assert planned[0] == ('vm0', 's0', 'd')
    assert indicators(solution)['migrations_planned'] == expected


# -- ranking with a really trained model --------------------------------------


def _training_history(n_steps=1080, seed=0):
    """3 h of 10 s steps: hosts with a repeating ramp to saturation and
    hosts that stay flat at various levels (calm).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for phase in (0, 60, 120, 180):
        k = (np.arange(n_steps) + phase) % 240
        rows.append(np.where(k < 90, 20.0, np.where(
            k < 138, 20 + (k - 90) * (80 / 48),
            np.where(k < 198, 100.0, 20.0))))
    for level in (20, 35, 50, 65):
        rows.append(np.full(n_steps, float(level)))
    cpu = np.clip(np.array(rows) + rng.normal(0, 2, (len(rows), n_steps)),
                  0, 100)
    names = tuple(f'h{i}' for i in range(len(rows)))
    times = STEP * np.arange(n_steps, dtype=float)
    data = {'cpu': cpu, 'memory': np.full_like(cpu, 40.0),
            'load': cpu * 0.12, 'disk': np.full_like(cpu, 1e5),
            'net': np.full_like(cpu, 1e6)}
    return metric_windows.ClusterWindows(
        names=names, times=times, step=STEP, data=data,
        last_seen=np.full(len(names), times[-1]))


@pytest.fixture(scope='module', params=['svm', 'gbt_peak'])
def trained(request):
    bundle, evaluation = training.train(
        _training_history(), threshold=90.0, period=300, horizon=600,
        window=300, stride=2, model_kind=request.param)
    assert bundle.metadata['model_kind'] == request.param
    assert evaluation['beats_baseline']
    return bundle


def _rising_vs_calm_cluster():
    c = Cluster()
    c.host('src', 95.0)
    # 'rising': lowest CPU now (mean ~25 % over the period) but ramping
    # to saturation; 'calm': higher CPU now, flat.
    c.host('rising', np.r_[np.full(30, 5.0), np.linspace(0, 50, 30)])
    c.host('calm', 45.0)
    c.instance('vnf', 'src', cpu=90, vcpus=2, memory=1024)
    return c


def test_trained_model_ranks_by_risk_not_by_current_cpu(trained):
    solution = _rising_vs_calm_cluster().strategy(bundle=trained).execute()
    assert moves(solution) == [('vnf', 'src', 'calm')]
    ind = indicators(solution)
    assert ind['hosts_relieved'] == 1
    assert ind['cluster_risk_before'] > ind['cluster_risk_after']
    assert 1.5 < ind['cluster_risk_before'] <= 3.0   # src and rising
    # the same cluster ranked by CPU now would have picked 'rising'
    least_cpu = _rising_vs_calm_cluster().strategy(
        bundle=audit_cluster.MeanCpuRisk())
    assert moves(least_cpu.execute()) == [('vnf', 'src', 'rising')]


def test_trained_model_loaded_from_file_through_conf(trained, tmp_path):
    from watcher_failpredict.prediction import bundle as bundle_mod
    path = str(tmp_path / 'model.joblib')
    digest = bundle_mod.save_bundle(trained, path)
    c = _rising_vs_calm_cluster()
    strategy = c.strategy()
    strategy.model_bundle = None
    fp_conf.CONF.set_override('model_path', path, group='failpredict')
    fp_conf.CONF.set_override('model_sha256', digest, group='failpredict')
    try:
        assert moves(strategy.execute()) == [('vnf', 'src', 'calm')]
        with open(path, 'ab') as f:      # tamper with it
            f.write(b'x')
        c2 = _rising_vs_calm_cluster()
        s2 = c2.strategy()
        s2.model_bundle = None
        with pytest.raises(errors.ModelUnavailable) as err:
            s2.execute()
        assert path in str(err.value) and 'sha256' in str(err.value)
        assert s2.solution.actions == []
    finally:
        fp_conf.CONF.clear_override('model_path', group='failpredict')
        fp_conf.CONF.clear_override('model_sha256', group='failpredict')


# -- failures are loud --------------------------------------------------------


def _simple():
    c = Cluster()
    c.host('src', 95.0)
    c.host('dst', 10.0)
    c.instance('vm1', 'src', cpu=100, vcpus=2)
    return c


def test_no_model_configured_fails_the_audit():
    strategy = _simple().strategy()
    strategy.model_bundle = None
    fp_conf.CONF.clear_override('model_path', group='failpredict')
    with pytest.raises(errors.ModelUnavailable, match='model_path'):
        strategy.execute()


def test_missing_model_file_fails_naming_it(tmp_path):
    path = str(tmp_path / 'absent.joblib')
    strategy = _simple().strategy()
    strategy.model_bundle = None
    fp_conf.CONF.set_override('model_path', path, group='failpredict')
    try:
        with pytest.raises(errors.ModelUnavailable) as err:
            strategy.execute()
    finally:
        fp_conf.CONF.clear_override('model_path', group='failpredict')
    assert path in str(err.value)
    assert 'no such file' in str(err.value)


def _execute_with_model_file(path, sha256=None, allow_unverified=False):
    """Run an audit on _simple() scoring with the model file at ``path``."""
    strategy = _simple().strategy()
    strategy.model_bundle = None
    overrides = {'model_path': str(path), 'model_sha256': sha256,
                 'allow_unverified_model': allow_unverified}
    for name, value in overrides.items():
        fp_conf.CONF.set_override(name, value, group='failpredict')
    try:
        return strategy, strategy.execute()
    finally:
        for name in overrides:
            fp_conf.CONF.clear_override(name, group='failpredict')


def test_garbage_model_file_fails(tmp_path):
    from watcher_failpredict.prediction import bundle as bundle_mod
    path = tmp_path / 'garbage.joblib'
    path.write_bytes(b'not a pickle')
    with pytest.raises(errors.ModelUnavailable, match='not a model bundle'):
        _execute_with_model_file(path, bundle_mod.file_sha256(path))


def test_model_without_digest_fails_unless_opted_in(trained, tmp_path):
    from watcher_failpredict.prediction import bundle as bundle_mod
    path = tmp_path / 'model.joblib'
    bundle_mod.save_bundle(trained, path)
    with pytest.raises(errors.ModelUnavailable) as err:
        _execute_with_model_file(path)
    assert f'model bundle {path}: no sha256 to check it against' in \
        str(err.value)
    strategy, _ = _execute_with_model_file(path, allow_unverified=True)
    assert strategy.bundle.metadata == trained.metadata


def test_bad_model_file_fails_the_audit_at_load(trained, tmp_path):
    """Issue 14.6: a model of another width or without class 1 is an
    unusable model, not a raw scikit-learn error while scoring.
    """
    import joblib
    from sklearn import linear_model
    from watcher_failpredict.prediction import bundle as bundle_mod
    rng = np.random.RandomState(0)
    md = trained.metadata
    n = len(md['feature_names'])
    for width, classes, reason in [
            (42, [0, 1], f"model expects 42 features, the bundle's feature "
                         f"set '{md['feature_set']}' gives {n}"),
            (n, [0, 2], 'lack 1 (failure)')]:
        model = linear_model.LogisticRegression().fit(
            rng.normal(size=(20, width)), classes * 10)
        path = tmp_path / f'bad-{width}.joblib'
        joblib.dump({'format': bundle_mod.FORMAT,
                     'format_version': bundle_mod.FORMAT_VERSION,
                     'metadata': trained.metadata, 'model': model}, path)
        with pytest.raises(errors.ModelUnavailable) as err:
            _execute_with_model_file(path, bundle_mod.file_sha256(path))
        assert str(err.value).startswith(
            f'unusable failure-prediction model: model bundle {path}: ')
        assert reason in str(err.value)


def test_model_error_is_a_watcher_exception():
    from watcher.common import exception
    assert issubclass(errors.ModelUnavailable, exception.WatcherException)
    assert str(errors.ModelUnavailable('boom /x')) == 'boom /x'


def test_no_evaluable_host_fails_naming_hosts():
    c = Cluster()
    c.host('gone', 95.0, metrics=False)
    c.host('old', 95.0, age=250)
    c.instance('vm1', 'gone', cpu=100, vcpus=2)
    with pytest.raises(errors.NoEvaluableHost) as err:
        c.strategy().execute()
    msg = str(err.value)
    assert 'gone (no metrics at all in the window)' in msg
    assert 'old (stale metrics' in msg


def test_model_unable_to_score_counts_as_skipped(caplog):
    class PartialBundle(audit_cluster.MeanCpuRisk):
        def predict_risk(self, windows):
            risk = super().predict_risk(windows)
            risk[[i for i, n in enumerate(windows.names) if n == 'dst']] = \
                np.nan
            return risk

    c = _simple()
    c.host('other', 30.0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        solution = c.strategy(bundle=PartialBundle()).execute()
    assert moves(solution) == [('vm1', 'src', 'other')]
    assert indicators(solution)['hosts_skipped'] == 1
    assert 'dst (the model could not score it)' in caplog.text


def test_metrics_backend_down_fails_the_audit():
    c = _simple()
    c.ds.available = False
    with pytest.raises(errors.MetricsReadFailed, match='switched off'):
        c.strategy().execute()


def test_incompatible_granularity_and_horizon_fail():
    with pytest.raises(errors.IncompatibleParameters, match='granularity'):
        _simple().strategy(granularity=60).execute()
    with pytest.raises(errors.IncompatibleParameters, match='horizon'):
        _simple().strategy(horizon=120).execute()
    # the model's own horizon is accepted
    assert len(moves(_simple().strategy(horizon=600).execute())) == 1


def test_fixed_hosts_model_is_refused_for_audits():
    """The paper's which-server classifier cannot rank a subset of hosts."""
    bundle = audit_cluster.MeanCpuRisk()
    bundle.metadata = dict(META, model_kind='fixed_hosts')
    with pytest.raises(errors.IncompatibleParameters, match='fixed_hosts'):
        _simple().strategy(bundle=bundle).execute()
    assert bundle.calls == 0


# -- reads, indicators, collaborators -----------------------------------------


def test_two_bulk_reads_for_hosts_and_one_for_instances():
    """Hosts: the windows of cpu, memory and load, and the window means of
    disk and net (cluster_means); instances: one read, whatever the number
    of failing hosts.
    """
    c = Cluster()
    for i in range(20):
        c.host(f'h{i}', 95.0 if i < 3 else 20.0 + i)
        for j in range(4):
            c.instance(f'vm{i}-{j}', f'h{i}', cpu=100, vcpus=2)
    # reactive mode's reads; planned mode's two more are counted on a real
    # InfluxDB (tests/unit/datasources/test_audit_requests.py)
    solution = c.strategy(mode='reactive', max_migrations=3).execute()
    assert len(moves(solution)) == 3
    assert c.ds.fetch_count == 3


def test_efficacy_indicators_values():
    c = Cluster()
    c.host('s1', 99.0)
    c.host('s2', 96.0)
    c.host('stale', 10.0, age=250)
    c.host('d', 20.0, vcpus=24)
    c.instance('big', 's1', cpu=100, vcpus=1)   # relieves 8.3: not enough
    c.instance('vm2', 's2', cpu=100, vcpus=2)   # relieves 16.7
    solution = c.strategy(max_migrations=2).execute()
    assert moves(solution) == [('big', 's1', 'd'), ('vm2', 's2', 'd')]
    ind = indicators(solution)
    assert ind['hosts_in_failure'] == 2
    assert ind['hosts_relieved'] == 1          # s1 stays at ~90.7 %
    assert ind['migrations_planned'] == 2
    assert ind['hosts_skipped'] == 1
    # stand-in risk = CPU/100 summed over s1, s2, d
    assert ind['cluster_risk_before'] == pytest.approx(
        0.99 + 0.96 + 0.20, abs=1e-6)
    assert ind['cluster_risk_after'] == pytest.approx(
        (99 - 100 / 12) / 100 + (96 - 200 / 12) / 100
        + (20 + 100 / 24 + 200 / 24) / 100, abs=1e-6)
    glob = {g.name: g.value for g in solution.global_efficacy}
    assert glob['relieved_ratio'] == pytest.approx(50.0)


@pytest.mark.parametrize('params, extra', [
    ({'mode': 'reactive', 'starved_window': 0}, {}),
    # the defaults: planned mode, whose history (an hour here) is too
    # short to check a forecast, and the starved trigger
    ({}, {'hosts_starved': 0, 'planned_on_forecast': 0})])
def test_indicators_when_nothing_fails(params, extra):
    c = Cluster()
    c.host('a', 20.0)
    c.host('b', 30.0)
    solution = c.strategy(**params).execute()
    ind = indicators(solution)
    assert ind == {'hosts_in_failure': 0, 'hosts_relieved': 0,
                   'migrations_planned': 0,
                   'cluster_risk_before': pytest.approx(0.5),
                   'cluster_risk_after': pytest.approx(0.5),
                   'hosts_skipped': 0, 'hosts_implausible_metrics': 0,
                   'moves_not_worth': 0, **extra}
    assert solution.global_efficacy[0].value == 100.0
    if not extra:
        assert c.ds.fetch_count == 2   # the hosts' windows and means only


def test_actions_are_live_migrations_watcher_accepts():
    from watcher.applier.actions import migration
    uuid = '0b0f8f3c-2f7e-4a53-9a43-3f4bd3c0a001'
    c = Cluster()
    c.host('src', 95.0)
    c.host('dst', 10.0)
    c.instance(uuid, 'src', cpu=100, vcpus=2)
    solution = c.strategy().execute()
    (action,) = solution.actions
    assert action['action_type'] == 'migrate'
    params = dict(action['input_parameters'])
    assert params == {'migration_type': 'live', 'source_node': 'src',
                      'destination_node': 'dst',
                      'resource_name': f'vnf-{uuid}', 'resource_id': uuid}
    # the applier's own schema for the migrate action (no extra keys)
    jsonschema.validate(params, migration.Migrate.schema.fget(None))


def test_default_datasource_is_influxdb_and_injectable():
    from watcher_failpredict.datasources import influxdb
    strategy = plf.PredictedLeastFailure(
        config=utils.Struct(datasources=None))
    assert isinstance(strategy.datasource_backend, influxdb.InfluxDBDataSource)
    ds = memory.InMemoryDataSource()
    strategy.datasource_backend = ds
    assert strategy.datasource_backend is ds


def test_does_not_build_model_xml_when_debug_is_off():
    c = _simple()
    strategy = c.strategy()
    logging.getLogger(LOGGER).setLevel(logging.INFO)
    try:
        with mock.patch.object(model_root.ModelRoot, 'to_string') as xml:
            strategy.execute()
        xml.assert_not_called()
    finally:
        logging.getLogger(LOGGER).setLevel(logging.NOTSET)


def test_migration_history_from_watcher_actions():
    import datetime
    utc = datetime.timezone.utc

    def action(kind, uuid, dest, when):
        return mock.Mock(action_type=kind, updated_at=when, created_at=when,
                         input_parameters={'resource_id': uuid,
                                           'source_node': 'a',
                                           'destination_node': dest})

    recent = datetime.datetime.fromtimestamp(NOW - 100, utc)
    done = [action('migrate', 'vm1', 'h1', recent),
            action('change_nova_service_state', 'n', None, recent)]
    running = [action('migrate', 'vm2', 'h2',
                      datetime.datetime.fromtimestamp(NOW - 5000, utc))]
    from watcher import objects
    objects.register_all()
    strategy = _simple().strategy()
    with mock.patch('watcher.objects.action.Action.list',
                    side_effect=[done, running]) as listing:
        got = list(strategy._db_migrations(NOW - 600))
    assert got == [migrations.Migration('vm1', 'a', 'h1', NOW - 100),
                   migrations.Migration('vm2', 'a', 'h2', NOW)]
    filters = listing.call_args_list[0].kwargs['filters']
    assert filters['state'] == 'SUCCEEDED'
    assert filters['updated_at__gte'] == datetime.datetime(
        *datetime.datetime.fromtimestamp(NOW - 600, utc).timetuple()[:6])
    assert listing.call_args_list[1].kwargs['filters'] == {
        'state': 'ONGOING'}


def test_strategy_loads_through_watcher_entry_point():
    from watcher.decision_engine.loading import default
    # reload_config_files() needs a parsed CONF (Watcher's services have
    # one); registering our options is what is under test here.
    with mock.patch.object(default.DefaultStrategyLoader, '_reload_config'):
        strategy = default.DefaultStrategyLoader().load(
            'predicted_least_failure')
    assert isinstance(strategy, plf.PredictedLeastFailure)
    assert strategy.goal.name == 'failure_mitigation'
    assert strategy.config.check_optimize_metadata is False


def test_virt_form_cpu_per_vcpu_is_scaled_to_the_instance():
    """collectd's virt plugin reports percent of ONE vCPU: 200 % on a 4-vCPU
    VNF is 2 cores (17 % of a 12-core host), not 8 cores (67 %).
    """
    def cluster():
        c = Cluster()
        c.host('src', 95.0)
        c.host('dst', 50.0)
        c.instance('vm4', 'src', cpu=200.0, vcpus=4)
        return c

    # (speed_floor: the feasibility rule is what is checked here)
    per_vcpu = cluster()
    per_vcpu.ds.instance_cpu_per_vcpu = True
    assert moves(per_vcpu.strategy(move_rule='speed_floor').execute()) == [
        ('vm4', 'src', 'dst')]
    # read as percent of the instance, the same numbers would not fit on dst
    assert moves(cluster().strategy(move_rule='speed_floor').execute()) == []


def test_a_datasource_the_strategy_built_is_closed_with_the_audit():
    """Watcher builds a strategy per audit: its own datasource (connections,
    query thread) must not outlive it, even when the audit fails.
    """
    from watcher_failpredict.datasources import influxdb
    built = []

    class Recording(memory.InMemoryDataSource):
        def __init__(self):
            super().__init__()
            self.closed = 0
            built.append(self)

        def close(self):
            self.closed += 1

    c = _simple()
    strategy = c.strategy()
    strategy.datasource_backend = None   # as Watcher's loader leaves it
    with mock.patch.object(influxdb, 'InfluxDBDataSource', Recording):
        with pytest.raises(errors.NoEvaluableHost, match='no metrics'):
            strategy.execute()           # the new datasource is empty
    assert len(built) == 1 and built[0].closed == 1
    # An injected datasource belongs to its owner: never closed here.
    c.ds.close = mock.Mock()
    c.strategy().execute()
    c.ds.close.assert_not_called()
