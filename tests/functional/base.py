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

"""The end-to-end scenario: a cluster, its collectd history, a trained model.

:class:`FailpredictFunctionalTestCase` runs python-watcher's own functional
harness (real API, decision engine, applier, SQLite, the Nova and Placement
emulators) against a real ``influxd`` holding collectd-shaped history, and a
model trained, in the test, through the project's own training API on that
history as :class:`InfluxDBDataSource` reads it back. Nothing between the
audit request and the Nova emulator's live migration is mocked.

The scenario (all times relative to *now*, the end of the history):

========== ========================= ===================================
host       CPU (percent of 12 cores)  role
========== ========================= ===================================
compute-1  ~95 % flat, load average   saturated now, its VNFs starved:
           1.3x its cores             the only source
compute-2  square wave, 20 min cycle  least CPU now (~12 %), but its
           (13 min ~12 %, 7 min       pattern rises to ~99 % in about a
           ~99 %), rises ~1.5 min     minute: a least-CPU policy sends
           after now                  the VNF into the next saturation
compute-3  ~35 % flat                 calm: the right destination
compute-4  ~60 % flat                 no free vCPU (12 VNFs of 1 vCPU)
compute-5  ~87 % flat                 busy: the VNF would tip it over
compute-6  ~84 % flat                 busy
========== ========================= ===================================

On compute-1, ``vm-1`` runs at 90 % of its vCPU (7.5 host points) with the
least memory; the other VNFs idle at 30 %. Moving ``vm-1`` alone ends the
overload (95 - 7.5 < 90) at the least migration cost, so the one expected
action is: live-migrate vm-1 from compute-1 to compute-3.

The history is written and the model trained once per test class (a couple
of seconds), so every test of the class sees the same model; the phase of
compute-2 leaves a minute and a half of slack between the class set-up and
the last audit.
"""

import dataclasses
import os
import shutil
import tempfile
import time

import numpy as np
from oslo_utils import uuidutils
from watcher.tests.functional import base as wf_base
from watcher.tests.functional import topology

from watcher_failpredict import conf  # noqa: F401  ([failpredict] options)
from watcher_failpredict.datasources import collectd_schema as schema
from watcher_failpredict.datasources import influxdb as influx_ds
from watcher_failpredict.datasources.influxdb import local_server
from watcher_failpredict.datasources.prometheus import (
    local_server as prom_local_server)
from watcher_failpredict.datasources.prometheus import exporter_schema
from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.prediction import bundle as bundle_mod
from watcher_failpredict.prediction import training

STEP = 10                    # s, collectd interval and window granularity
HISTORY = 2 * 3600           # s of host history (training data)
INSTANCE_HISTORY = 1800      # s of guest metrics (the strategy reads less)
NODE_VCPUS = 12
NODE_MEMORY_MB = 24 * 1024
NODE_MEMORY_BYTES = NODE_MEMORY_MB * 2 ** 20
VNF_VCPUS = 1
VNF_MEMORY_MB = 1024

# Failure definition and model shape, used for training and the audits.
THRESHOLD = 90.0
PERIOD = 60                  # s, trigger period (rolling mean CPU)
HORIZON = 300                # s, how far ahead a failure is predicted
WINDOW = 600                 # s, feature window

# compute-2's cycle: low then high; the next rise is RISE_AFTER s after now.
CYCLE = 1200
HIGH_LEN = 420
LOW_CPU = 12.0
HIGH_CPU = 99.0
RISE_AFTER = 90

AUDIT_PARAMETERS = {
    'threshold': THRESHOLD,
    'period': PERIOD,
    'granularity': STEP,
    'horizon': HORIZON,
}
# compute-5 and compute-6 would cross the threshold with vm-1's 7.5 points
# (the strategy rejects them before asking the model); compute-4 has no free
# vCPU. The model alone decides between compute-2 and compute-3.


@dataclasses.dataclass(frozen=True)
class VNF:
    name: str
    cpu: float        # percent of its own vCPU
    memory_mib: float  # used by the guest


@dataclasses.dataclass(frozen=True)
class Host:
    hostname: str
    role: str
    level: float      # flat CPU level (ignored for the periodic host)
    vnfs: tuple


def _vnfs(prefix_index, loads):
    return tuple(VNF(f'vm-{prefix_index + i}', cpu, mem)
                 for i, (cpu, mem) in enumerate(loads))


# Instance names are numbered in order over the hosts (ComputeTopology's
# add_instances numbers them vm-1, vm-2, ... in call order).
HOSTS = (
    Host('compute-1', 'saturated', 95.0,
         _vnfs(1, [(90.0, 300.0), (30.0, 700.0), (30.0, 700.0),
                   (30.0, 700.0)])),
    Host('compute-2', 'periodic', np.nan,
         _vnfs(5, [(20.0, 500.0), (20.0, 500.0)])),
    Host('compute-3', 'calm', 35.0,
         _vnfs(7, [(40.0, 600.0), (40.0, 600.0)])),
    Host('compute-4', 'full', 60.0,
         _vnfs(9, [(50.0, 600.0)] * 12)),
    Host('compute-5', 'busy', 87.0,
         _vnfs(21, [(60.0, 600.0)] * 3)),
    Host('compute-6', 'busy', 84.0,
         _vnfs(24, [(60.0, 600.0)] * 3)),
)
SOURCE = 'compute-1'
LEAST_CPU_NOW = 'compute-2'
CALM = 'compute-3'
MOVED_VNF = 'vm-1'


def build_topology():
    """The Nova/Placement emulators' cluster: 6 nodes, 1 vCPU / 1 GB VNFs."""
    topo = topology.ComputeTopology().add_computes(
        count=len(HOSTS), vcpus=NODE_VCPUS, memory=NODE_MEMORY_MB, disk=500)
    for host in HOSTS:
        topo.add_instances(computes=[host.hostname], count=len(host.vnfs),
                           vcpus=VNF_VCPUS, memory=VNF_MEMORY_MB, disk=10)
    names = {i.name: i for i in topo.instances}
    for host in HOSTS:
        for vnf in host.vnfs:
            assert names[vnf.name].host == host.hostname, vnf
    return topo


TOPOLOGY = build_topology()


def instance_uuid(name):
    for inst in TOPOLOGY.instances:
        if inst.name == name:
            return inst.uuid
    raise KeyError(name)


def node_uuid(hostname):
    for node in TOPOLOGY.compute_nodes:
        if node.hostname == hostname:
            return node.uuid
    raise KeyError(hostname)


# -- synthetic collectd history ---------------------------------------------


def periodic_cpu(t, end):
    """compute-2's square wave; its next rise is RISE_AFTER s after ``end``."""
    phase = np.mod(t - (end + RISE_AFTER), CYCLE)
    return np.where(phase < HIGH_LEN, HIGH_CPU, LOW_CPU)


def host_cpu(host, t, end, rng):
    """CPU percent of ``host`` at times ``t`` (noisy, clipped to 0..100)."""
    if host.role == 'periodic':
        base = periodic_cpu(t, end)
    else:
        base = np.full(t.shape, host.level)
    return np.clip(base + rng.normal(0.0, 1.5, t.shape), 0.0, 100.0)


#: Runnable demand of the saturated host beyond its busy cores (cores).
SATURATED_EXTRA_DEMAND = 0.35 * NODE_VCPUS


def host_history_values(end, rng, history=HISTORY):
    """Every host's metrics, ``history`` s to end: ``(t, {host: {...}})``.

    CPU follows the host's role; memory, load, disk and network follow the
    CPU loosely, as on a real server (rates in bytes per second).
    """
    t = end - STEP * np.arange(history // STEP)[::-1]
    values = {}
    for host in HOSTS:
        cpu = host_cpu(host, t, end, rng)
        mem = np.clip(35.0 + 0.2 * cpu + rng.normal(0, 1.0, t.shape), 1, 99)
        load = NODE_VCPUS * cpu / 100.0 + rng.normal(0, 0.2, t.shape).clip(0)
        if host.role == 'saturated':
            # its VNFs ask for more CPU than its cores give (the strategy's
            # whether-to-move rule relieves only a host whose VNFs starve)
            load = load + SATURATED_EXTRA_DEMAND
        disk_rate = 2e6 + 3e4 * cpu + rng.normal(0, 1e5, t.shape).clip(0)
        net_rate = 5e6 + 1e5 * cpu + rng.normal(0, 1e5, t.shape).clip(0)
        values[host.hostname] = dict(cpu=cpu, mem=mem, load=load,
                                     disk=disk_rate, net=net_rate)
    return t, values


def host_history_lines(end, rng, history=HISTORY):
    """Line protocol of every host's collectd metrics, ``history`` s to end
    (counters accumulate bytes).
    """
    t, values = host_history_values(end, rng, history)
    lines = []
    for hostname, v in values.items():
        disk_total = 1e9 + np.cumsum(v['disk'] * STEP)
        net_total = 1e9 + np.cumsum(v['net'] * STEP)
        for i, ts in enumerate(t):
            lines.extend(schema.host_lines(
                hostname, int(ts), cpu_pct=v['cpu'][i], mem_pct=v['mem'][i],
                mem_total_bytes=NODE_MEMORY_BYTES, load=v['load'][i],
                disk_read_bytes_total=0.4 * disk_total[i],
                disk_write_bytes_total=0.6 * disk_total[i],
                net_rx_bytes_total=0.5 * net_total[i],
                net_tx_bytes_total=0.5 * net_total[i], full=False))
    return lines


def instance_history_values(end, rng, history=INSTANCE_HISTORY):
    """Every VNF's CPU (percent of its vCPU) and memory (MiB) to end:
    ``(t, {uuid: (cpu, mem)})``.
    """
    t = end - STEP * np.arange(history // STEP)[::-1]
    values = {}
    for host in HOSTS:
        for vnf in host.vnfs:
            cpu = np.clip(vnf.cpu + rng.normal(0, 1.0, t.shape), 0, 100)
            mem = vnf.memory_mib + rng.normal(0, 5.0, t.shape)
            values[instance_uuid(vnf.name)] = (cpu, mem)
    return t, values


def instance_history_lines(end, rng, history=INSTANCE_HISTORY):
    """Guest metrics of every VNF (collectd in the guest, host = UUID)."""
    t, values = instance_history_values(end, rng, history)
    lines = []
    for uuid, (cpu, mem) in values.items():
        for i, ts in enumerate(t):
            lines.extend(schema.instance_lines(
                uuid, int(ts), cpu_pct=cpu[i],
                mem_used_bytes=mem[i] * 2 ** 20,
                mem_total_bytes=VNF_MEMORY_MB * 2 ** 20,
                vcpus=VNF_VCPUS, full=False))
    return lines


def scenario_lines(end, seed=0, instance_history=INSTANCE_HISTORY):
    rng = np.random.default_rng(seed)
    return host_history_lines(end, rng) + instance_history_lines(
        end, rng, instance_history)


def scenario_openmetrics(end, seed=0):
    """The same scenario (same seed, same values) as node_exporter and
    libvirt exporter series, in OpenMetrics text for ``promtool``.
    """
    rng = np.random.default_rng(seed)
    t, hosts = host_history_values(end, rng)
    series = []
    for hostname, v in hosts.items():
        series += exporter_schema.host_series(
            hostname, t, v['cpu'], v['mem'], v['load'], v['disk'], v['net'],
            mem_total_bytes=NODE_MEMORY_BYTES)
    t, instances = instance_history_values(end, rng)
    for uuid, (cpu, mem) in instances.items():
        series += exporter_schema.instance_series(
            uuid, t, cpu, mem * 2 ** 20, vcpus=VNF_VCPUS,
            mem_total_bytes=VNF_MEMORY_MB * 2 ** 20)
    return prom_local_server.openmetrics(series)


# -- the test case ------------------------------------------------------------


class FailpredictFunctionalTestCase(wf_base.WatcherFunctionalTestCase):
    """Watcher's functional harness + a real InfluxDB + a trained model.

    Class set-up (once): start ``influxd``, write the scenario's history
    ending now, read the hosts' history back through InfluxDBDataSource,
    train a model on it with :func:`training.train`, save the bundle.
    Per test: load the topology into the emulators and point
    ``[failpredict]`` at that InfluxDB and bundle.
    """

    COMPUTE_TOPOLOGY = topology.ComputeTopology()
    DATABASE = 'collectd'
    #: False for tests that never reach the decision engine (API
    #: validation): they skip InfluxDB, the history and the training.
    NEEDS_SCENARIO = True
    #: seconds of guest metrics written (planned mode reads more)
    INSTANCE_HISTORY = INSTANCE_HISTORY

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not cls.NEEDS_SCENARIO:
            return
        cls.influx = local_server.InfluxDBServer().start()
        cls.tmpdir = tempfile.mkdtemp(prefix='failpredict-e2e-')
        try:
            cls.influx.create_database(cls.DATABASE)
            cls.history_end = int(time.time()) // STEP * STEP
            cls.lines = scenario_lines(cls.history_end,
                                       instance_history=cls.INSTANCE_HISTORY)
            cls.influx.write_lines(cls.DATABASE, cls.lines, batch=20000)
            cls.bundle, cls.evaluation = cls._train()
            cls.model_path = os.path.join(cls.tmpdir, 'model.joblib')
            cls.model_sha256 = bundle_mod.save_bundle(cls.bundle,
                                                      cls.model_path)
        except BaseException:
            cls._tear_down_class()
            raise

    @classmethod
    def _tear_down_class(cls):
        cls.influx.stop()
        shutil.rmtree(cls.tmpdir, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        if cls.NEEDS_SCENARIO:
            cls._tear_down_class()
        super().tearDownClass()

    @classmethod
    def _datasource(cls):
        """An InfluxDBDataSource on this class's server (outside a test)."""
        return influx_ds.InfluxDBDataSource(url=cls.influx.url,
                                            database=cls.DATABASE)

    @classmethod
    def _train(cls):
        """Train on the hosts' history as the datasource reads it back."""
        ds = cls._datasource()
        windows = ds.cluster_windows(
            metric_windows.COMPUTE_NODE, [h.hostname for h in HOSTS],
            period=HISTORY, granularity=STEP)
        return training.train(windows, threshold=THRESHOLD, period=PERIOD,
                              horizon=HORIZON, window=WINDOW)

    def setUp(self):
        super().setUp()
        self.load_topology(TOPOLOGY)
        if self.NEEDS_SCENARIO:
            self.use_model(self.model_path, self.model_sha256)
            self.use_influxdb(self.influx.url)

    # -- helpers --------------------------------------------------------------

    def use_influxdb(self, url, database=None):
        self.flags(group='failpredict', influxdb_url=url,
                   influxdb_database=database or self.DATABASE,
                   influxdb_retries=0, influxdb_timeout=5.0)

    def use_model(self, path, sha256=None):
        self.flags(group='failpredict', model_path=path,
                   model_sha256=sha256)

    def create_audit_template(self):
        resp = self.admin_api.post('/audit_templates', {
            'name': 'failpredict-e2e-%s' % uuidutils.generate_uuid(),
            'goal': 'failure_mitigation',
            'strategy': 'predicted_least_failure',
        })
        self.assertEqual(201, resp.status_code, resp.text)
        return resp.json()['uuid']

    def post_audit(self, parameters=None, template_uuid=None):
        """POST /audits (ONESHOT) from an audit template; the response."""
        template_uuid = template_uuid or self.create_audit_template()
        body = {'audit_type': 'ONESHOT',
                'audit_template_uuid': template_uuid}
        if parameters is not None:
            body['parameters'] = parameters
        return self.admin_api.post('/audits', body)

    def create_audit(self, parameters=None):
        resp = self.post_audit(
            AUDIT_PARAMETERS if parameters is None else parameters)
        self.assertEqual(201, resp.status_code, resp.text)
        return resp.json()['uuid']

    def wait_for_audit_end(self, audit_uuid, timeout=30):
        """Poll until the audit is SUCCEEDED/FAILED/CANCELLED; its JSON."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            resp = self.admin_api.get('/audits/%s' % audit_uuid)
            self.assertEqual(200, resp.status_code)
            audit = resp.json()
            if audit['state'] in ('SUCCEEDED', 'FAILED', 'CANCELLED'):
                return audit
            time.sleep(0.1)
        self.fail('audit %s still %s after %s s'
                  % (audit_uuid, audit['state'], timeout))

    def action_plans(self, audit_uuid):
        resp = self.admin_api.get('/action_plans?audit_uuid=%s' % audit_uuid)
        self.assertEqual(200, resp.status_code)
        return resp.json()['action_plans']

    def actions(self, ap_uuid):
        resp = self.admin_api.get('/actions?action_plan_uuid=%s' % ap_uuid)
        self.assertEqual(200, resp.status_code)
        return [self.admin_api.get('/actions/%s' % a['uuid']).json()
                for a in resp.json()['actions']]

    def cpu_now(self):
        """Each host's mean CPU over the trigger period, read back now."""
        windows = self._datasource().cluster_windows(
            metric_windows.COMPUTE_NODE, [h.hostname for h in HOSTS],
            period=PERIOD, granularity=STEP, metrics=('cpu',))
        return {name: float(np.nanmean(windows.series('cpu', name)[
            -(PERIOD // STEP):])) for name in windows.names}

    def log_output(self):
        """Everything logged (INFO and up) during this test so far."""
        return self.env.stdlog.logger.output
