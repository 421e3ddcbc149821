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

"""The testbed's metrics through a real InfluxDB (``evaluate --influxdb``).

By default the strategy reads the testbed's metrics from an
InMemoryDataSource. With an InfluxDB URL, every run (one policy, one
seed) gets its own database; before each decision the samples collectd
would have sent since the last one are written there as collectd's
InfluxDB input stores them (``datasources.collectd_schema``: CPU and
memory in the percent forms, load, disk and interface byte counters;
VNFs in the ``guest`` form, ``host`` tag = instance UUID), and the
strategy reads them back through the plugin's own
``InfluxDBDataSource``: the whole production read path, queries included.
"""

import re

import numpy as np

from watcher_failpredict.datasources import collectd_schema as cs
from watcher_failpredict.datasources import influxdb
from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import metrics_sink

MIB = 2.0 ** 20


def database_name(prefix, scenario_name, policy, seed):
    """An InfluxDB database name for one run (letters, digits, ``_``)."""
    raw = f'{prefix}_{scenario_name}_{policy}_{seed}'
    return re.sub(r'[^A-Za-z0-9_]', '_', raw)


class InfluxMetrics(metrics_sink.RunMetrics):
    """Writes one testbed run's metrics into InfluxDB and reads them back.

    :param url: ``http://127.0.0.1:8086`` (credentials in the URL or
        ``username``/``password``)
    :param database: the run's database; dropped and created anew
    """

    def __init__(self, url, database, username=None, password=None):
        self.url = url
        self.database = database
        self.username = username
        self.password = password
        self.lines_written = 0
        self._counters = None
        self._reader = None

    def reader(self, tb):
        """The run's InfluxDBDataSource (created, with its database, once)."""
        if self._reader is None:
            self._reader = influxdb.InfluxDBDataSource(
                url=self.url, database=self.database,
                username=self.username, password=self.password,
                cpu_form='percent', instance_metrics='guest',
                memory_form='percent',
                collectd_interval=tb.scn['metrics_interval'],
                host_name_map={})
            client = self._reader.client
            try:
                client.drop_database(self.database)
                client.create_database(self.database)
            except Exception as exc:
                self._reader = None
                raise metric_windows.MetricsUnavailable(
                    f'testbed: cannot create database {self.database!r} on '
                    f'InfluxDB {client.url}: '
                    f'{type(exc).__name__}: {exc}') from None
        return self._reader

    def lines(self, tb, start_k, end_k):
        """Line protocol of the collectd samples of steps [start_k, end_k)."""
        times, host, inst = tb.metric_samples(start_k, end_k)
        if not times.size:
            return []
        interval = tb.scn['metrics_interval']
        if self._counters is None:
            self._counters = {'disk': np.zeros(tb.n_servers),
                              'net': np.zeros(tb.n_servers)}
        out = []
        for j, t in enumerate(times):
            ts = int(round(t))
            self._counters['disk'] += host['disk'][:, j] * interval
            self._counters['net'] += host['net'][:, j] * interval
            for s in range(tb.n_servers):
                net = self._counters['net'][s] / 2.0
                out += cs.host_lines(
                    cluster.host_name(s), ts, cpu_pct=min(
                        host['cpu'][s, j], 100.0),
                    mem_pct=min(host['memory'][s, j], 100.0),
                    load=host['load'][s, j],
                    disk_read_bytes_total=self._counters['disk'][s] / 2.0,
                    disk_write_bytes_total=self._counters['disk'][s] / 2.0,
                    net_rx_bytes_total=net, net_tx_bytes_total=net,
                    mem_forms=('percent',), loopback=False, full=False)
            for v in range(tb.n_vnfs):
                out += cs.instance_lines(
                    cluster.vnf_uuid(v), ts, min(inst['cpu'][v, j], 100.0),
                    inst['memory'][v, j] * MIB, form='guest',
                    vcpus=int(tb.vcpus),
                    mem_total_bytes=tb.scn['chains']['memory_mb'] * MIB,
                    full=False)
        return out

    def write(self, tb, start_k, end_k):
        lines = self.lines(tb, start_k, end_k)
        if lines:
            self.lines_written += self.reader(tb).client.write(lines)
