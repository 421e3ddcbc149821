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

"""End to end: audit -> strategy -> action plan -> applier -> Nova.

Everything is real except Nova and Placement, which are python-watcher's own
in-process emulators: Watcher's API (wsgi-intercept), decision engine,
planner and applier, a real ``influxd`` with collectd-shaped history, and a
model trained on that history in the test class's set-up. See
:mod:`tests.functional.base` for the scenario. The end-to-end audit runs
once per backend: :class:`TestAuditEndToEndOnPrometheus` reads the same
history from a real ``prometheus`` (``[failpredict] datasource =
prometheus``).
"""

import os
import re
import shutil

from oslo_serialization import jsonutils

from tests.functional import base
from watcher_failpredict.datasources.influxdb import local_server
from watcher_failpredict.datasources import prometheus
from watcher_failpredict.datasources.prometheus import (
    local_server as prom_local_server)
from watcher_failpredict.prediction import bundle as bundle_mod


def _indicators(action_plan):
    return {i['name']: i['value'] for i in action_plan['efficacy_indicators']}


class TestAuditEndToEnd(base.FailpredictFunctionalTestCase):
    """The plan moves the saturated host's VNF to the calm host."""

    def test_plan_moves_vnf_to_calm_host_and_applier_executes_it(self):
        # The scenario as InfluxDB holds it: compute-1 is the one failing
        # host and compute-2 is the least loaded host right now.
        cpu = self.cpu_now()
        self.assertEqual([base.SOURCE],
                         [n for n, c in cpu.items() if c >= base.THRESHOLD])
        self.assertEqual(base.LEAST_CPU_NOW, min(cpu, key=cpu.get), cpu)
        # The model, trained in set-up on that history, learned the pattern
        # on the held-out (later) stretch, where CPU-now alone does not.
        self.assertEqual(sorted(h.hostname for h in base.HOSTS),
                         sorted(self.bundle.metadata['hosts_seen']))
        self.assertTrue(self.evaluation['beats_baseline'], self.evaluation)
        self.assertGreater(self.evaluation['model']['roc_auc'], 0.95)

        audit_uuid = self.create_audit()
        audit = self.wait_for_audit_end(audit_uuid)
        self.assertEqual('SUCCEEDED', audit['state'], self.log_output())
        self.assertEqual('failure_mitigation', audit['goal_name'])
        self.assertEqual('predicted_least_failure', audit['strategy_name'])
        # the defaults Watcher's API filled in: planned mode, whose half
        # hour of guest history cannot check a forecast (a new
        # deployment), so its reactive fallback decides, the trained model
        # ranking, as in the paper
        self.assertEqual('planned', audit['parameters']['mode'])
        self.assertEqual(60, audit['parameters']['starved_window'])
        self.assertIn('The fallback ranks destinations by the trained '
                      'model: no forecast was checked to say its cycles '
                      'changed', self.log_output())

        plans = self.action_plans(audit_uuid)
        self.assertEqual(1, len(plans))
        ap_uuid = plans[0]['uuid']
        plan = self.admin_api.get('/action_plans/%s' % ap_uuid).json()
        self.assertEqual('RECOMMENDED', plan['state'])

        actions = self.actions(ap_uuid)
        self.assertEqual(
            1, len(actions),
            'expected exactly one action, got %s'
            % [(a['action_type'], a['input_parameters']) for a in actions])
        vnf_uuid = base.instance_uuid(base.MOVED_VNF)
        action = self._assert_action(
            actions, 'migrate', resource_id=vnf_uuid,
            migration_type='live', source_node=base.SOURCE,
            destination_node=base.CALM)
        self.assertNotEqual(base.LEAST_CPU_NOW,
                            action['input_parameters']['destination_node'])
        # compute-2 was a feasible destination: the model, not a capacity or
        # threshold rule, ranked it behind compute-3.
        ranking = re.search(
            r'Destinations of %s by predicted risk: (.*)' % vnf_uuid,
            self.log_output())
        self.assertIsNotNone(ranking, self.log_output())
        risks = dict((name, float(risk)) for name, risk in re.findall(
            r'(compute-\d+) ([0-9.]+)', ranking.group(1)))
        self.assertEqual({base.CALM, base.LEAST_CPU_NOW}, set(risks))
        self.assertGreater(risks[base.LEAST_CPU_NOW], 0.5)
        self.assertLess(risks[base.CALM], 0.1)

        # Efficacy indicators, as Watcher's API shows them on the plan.
        indicators = _indicators(plan)
        self.assertEqual(0, indicators['planned_on_forecast'])
        self.assertEqual(0, indicators['hosts_starved'])
        self.assertEqual(1, indicators['hosts_in_failure'])
        self.assertEqual(1, indicators['hosts_relieved'])
        self.assertEqual(1, indicators['migrations_planned'])
        self.assertEqual(0, indicators['hosts_skipped'])
        # compute-1 fails now and compute-2 is about to: the model's
        # expected number of failing hosts is well above one before the
        # plan, and the plan lowers it (vm-1 leaves compute-1, compute-3
        # stays calm with it).
        self.assertGreater(indicators['cluster_risk_before'], 1.0)
        self.assertLess(indicators['cluster_risk_after'],
                        indicators['cluster_risk_before'])
        self.assertEqual(
            [{'name': 'relieved_ratio', 'value': 100.0}],
            [{'name': g['name'], 'value': g['value']}
             for g in plan['global_efficacy']])

        # Start the plan; the applier live-migrates through the Nova API.
        resp = self.admin_api.patch(
            '/action_plans/%s' % ap_uuid,
            [{'op': 'replace', 'path': '/state', 'value': 'PENDING'}])
        self.assertEqual(200, resp.status_code, resp.text)
        self._wait_for_action_plan_state(ap_uuid, 'SUCCEEDED')
        for act in self.admin_api.get(
                '/actions?action_plan_uuid=%s' % ap_uuid).json()['actions']:
            self.assertEqual('SUCCEEDED', act['state'])

        servers = self.env.nova_fixture.nova_emulator.servers
        self.assertEqual(base.CALM,
                         servers[vnf_uuid]['OS-EXT-SRV-ATTR:host'])
        # Nothing else moved.
        for inst in base.TOPOLOGY.instances:
            if inst.uuid != vnf_uuid:
                self.assertEqual(inst.host,
                                 servers[inst.uuid]['OS-EXT-SRV-ATTR:host'])


class TestAuditEndToEndOnPrometheus(TestAuditEndToEnd):
    """The same audit, its metrics read from a real prometheus.

    The scenario's history (same seed, same values) is loaded into
    Prometheus as node_exporter and libvirt exporter series; the model is
    the one trained on it in the base class's set-up; the decision engine
    builds the Prometheus datasource from ``[failpredict]``.
    """

    prometheus_server = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.prometheus_server = prom_local_server.PrometheusServer()
            cls.prometheus_server.load(
                base.scenario_openmetrics(cls.history_end))
            cls.prometheus_server.start()
        except BaseException:
            cls._tear_down_class()
            raise

    @classmethod
    def _tear_down_class(cls):
        if cls.prometheus_server is not None:
            cls.prometheus_server.stop()
        super()._tear_down_class()

    @classmethod
    def _datasource(cls):
        if cls.prometheus_server is None or not cls.prometheus_server.running:
            return super()._datasource()   # training, in the set-up
        return prometheus.PrometheusDataSource(
            url=cls.prometheus_server.url, scrape_interval=base.STEP)

    def setUp(self):
        super().setUp()
        self.flags(group='failpredict', datasource='prometheus',
                   prometheus_url=self.prometheus_server.url,
                   prometheus_scrape_interval=base.STEP,
                   prometheus_retries=0, prometheus_timeout=5.0)
        # InfluxDB is not read: an audit reaching it would fail
        self.use_influxdb('http://127.0.0.1:9')

    def test_the_datasource_is_prometheus(self):
        cpu = self.cpu_now()
        self.assertEqual([base.SOURCE],
                         [n for n, c in cpu.items() if c >= base.THRESHOLD])
        self.assertIsInstance(self._datasource(),
                              prometheus.PrometheusDataSource)


class TestPlannedAuditEndToEnd(base.FailpredictFunctionalTestCase):
    """``mode=planned`` through Watcher's API (issue 11).

    compute-2's square wave repeats every 20 minutes, so its background's
    seasonal forecast over the next 10 minutes sees the rise a minute and
    a half away, and the forecast it would have made 10 minutes ago held.
    The planner moves vm-1 off the starved compute-1 to the calm
    compute-3, not into compute-2's next saturation.
    """

    #: an hour of guest history: three of compute-2's cycles
    INSTANCE_HISTORY = 3600
    PARAMETERS = dict(base.AUDIT_PARAMETERS, mode='planned', look_ahead=600,
                      planner_history=INSTANCE_HISTORY)

    def test_planned_audit_plans_on_the_forecast(self):
        audit_uuid = self.create_audit(self.PARAMETERS)
        audit = self.wait_for_audit_end(audit_uuid)
        self.assertEqual('SUCCEEDED', audit['state'], self.log_output())
        self.assertEqual('planned', audit['parameters']['mode'])
        (plan,) = self.action_plans(audit_uuid)
        plan = self.admin_api.get('/action_plans/%s' % plan['uuid']).json()
        actions = self.actions(plan['uuid'])
        self.assertEqual(1, len(actions), actions)
        self._assert_action(
            actions, 'migrate', resource_id=base.instance_uuid(
                base.MOVED_VNF), migration_type='live',
            source_node=base.SOURCE, destination_node=base.CALM)
        indicators = _indicators(plan)
        self.assertEqual(1, indicators['planned_on_forecast'])
        self.assertGreaterEqual(indicators['forecast_error'], 0.0)
        self.assertLess(indicators['forecast_error'], 20.0)
        self.assertEqual(1, indicators['migrations_planned'])
        log = self.log_output()
        self.assertIn('Planning on the seasonal forecast of the next 600 s',
                      log)
        self.assertRegex(log, r'Move %s from %s to %s: over the next 600 s '
                         r'it spares its hosts\' VNFs \d+ request-seconds'
                         % (base.instance_uuid(base.MOVED_VNF), base.SOURCE,
                            base.CALM))


class TestAuditParameters(base.FailpredictFunctionalTestCase):
    """Bad audit parameters are refused by the API, before any audit runs."""

    NEEDS_SCENARIO = False

    def _assert_refused(self, parameters, *fragments):
        resp = self.post_audit(parameters)
        self.assertEqual(400, resp.status_code, resp.text)
        message = jsonutils.loads(resp.json()['error_message'])[
            'faultstring']
        for fragment in fragments:
            self.assertIn(fragment, message)
        self.assertEqual([], self.admin_api.get('/audits').json()['audits'])

    def test_threshold_not_a_number(self):
        self._assert_refused({'threshold': 'high'}, 'Invalid parameters',
                             'high')

    def test_threshold_negative(self):
        self._assert_refused({'threshold': -5}, 'Invalid parameters', '-5')

    def test_unknown_parameter(self):
        self._assert_refused({'treshold': 90}, 'treshold')

    def test_threshold_nan(self):
        """NaN reaches the API (the client sends the JSON literal NaN, which
        Watcher's json.loads parses) and is refused by the schema.
        """
        self._assert_refused({'threshold': float('nan')}, 'Invalid parameters',
                             'nan', "instance['threshold']")

    def test_cost_weight_infinity(self):
        self._assert_refused({'cost_weight': float('inf')},
                             'Invalid parameters', 'inf',
                             'greater than the maximum of 1000')

    def test_period_above_one_day(self):
        self._assert_refused({'period': 86401}, 'Invalid parameters',
                             '86401', 'greater than the maximum of 86400')

    def test_mode_not_spelled_exactly(self):
        self._assert_refused({'mode': 'PROACTIVE'}, 'Invalid parameters',
                             "'PROACTIVE' is not one of")


class TestAuditFailures(base.FailpredictFunctionalTestCase):
    """An unusable model or metrics store fails the audit, with no plan."""

    def _assert_audit_fails(self, *fragments):
        """The audit ends FAILED, plans nothing, and says why in the log.

        Watcher 17.0.0 does not put the reason of a failed audit on the
        audit itself: its audit handler logs the strategy's exception at
        ERROR (``watcher.decision_engine.audit.base``) and sets FAILED. The
        reason is checked on that log record.
        """
        audit_uuid = self.create_audit()
        audit = self.wait_for_audit_end(audit_uuid)
        self.assertEqual('FAILED', audit['state'], self.log_output())
        self.assertEqual([], self.action_plans(audit_uuid))
        errors = [line for line in self.log_output().splitlines()
                  if ' ERROR [watcher.decision_engine.audit.base] ' in line]
        self.assertEqual(1, len(errors), self.log_output())
        for fragment in fragments:
            self.assertIn(fragment, errors[0])
        return errors[0]

    def test_missing_model_file(self):
        path = os.path.join(self.tmpdir, 'no-such-model.joblib')
        self.use_model(path)
        self._assert_audit_fails('unusable failure-prediction model',
                                 path, 'no such file')

    def test_tampered_model_file(self):
        path = os.path.join(self.tmpdir, 'tampered.joblib')
        shutil.copyfile(self.model_path, path)
        with open(path, 'ab') as f:
            f.write(b'\0')
        self.use_model(path, self.model_sha256)
        self._assert_audit_fails('unusable failure-prediction model',
                                 path, 'sha256',
                                 'expected %s' % self.model_sha256)

    def test_incompatible_model(self):
        """A bundle of another feature schema version is refused."""
        old = bundle_mod.ModelBundle(
            self.bundle.model,
            dict(self.bundle.metadata, feature_schema_version=99))
        path = os.path.join(self.tmpdir, 'schema-99.joblib')
        digest = bundle_mod.save_bundle(old, path)
        self.use_model(path, digest)
        self._assert_audit_fails(path, 'feature schema version 99')

    def test_influxdb_stopped(self):
        """InfluxDB dies after the history was written: no plan on zeros."""
        server = local_server.InfluxDBServer().start()
        self.addCleanup(server.stop)
        server.create_database(self.DATABASE)
        server.write_lines(self.DATABASE, self.lines, batch=20000)
        self.use_influxdb(server.url)
        url = server.url
        server.stop()
        self._assert_audit_fails('cannot read host metrics',
                                 'InfluxDB at %s' % url, 'could not be read')
