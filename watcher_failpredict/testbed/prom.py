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

"""The testbed's metrics through a real Prometheus (``evaluate
--prometheus``).

The counterpart of :mod:`.influx`: before each decision, the samples the
exporters would have produced since the last one are written into
Prometheus through its remote-write receiver (:mod:`~watcher_failpredict.
datasources.prometheus.remote_write`; the server needs
``--web.enable-remote-write-receiver``) in node_exporter's and the libvirt
exporter's form (:mod:`~watcher_failpredict.datasources.prometheus.
exporter_schema`, counters continuing across writes), and the strategy
reads them back through the plugin's own ``PrometheusDataSource``: the
production read path, PromQL included.

Prometheus has no databases, and it takes each series' samples in time
order only, so two runs (policies, seeds) that write the same hosts at the
same times must not share series. Each run carries its own host and
instance label names (:func:`label_names`, e.g.
``tb_short_least_cpu_1_host``) and its reader is configured with them:
every selector of the datasource requires its label to be non-empty, so it
sees its run's series only.
"""

import re

import numpy as np

from watcher_failpredict.datasources.prometheus import datasource as prom_ds
from watcher_failpredict.datasources.prometheus import exporter_schema as es
from watcher_failpredict.datasources.prometheus import remote_write
from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import metrics_sink

MIB = 2.0 ** 20


def label_names(prefix, scenario_name, policy, seed):
    """The run's (host label, instance label): letters, digits, ``_``."""
    raw = re.sub(r'[^A-Za-z0-9_]', '_',
                 f'{prefix}_{scenario_name}_{policy}_{seed}')
    if not (raw[0].isalpha() or raw[0] == '_'):
        raw = '_' + raw
    return f'{raw}_host', f'{raw}_uuid'


class PrometheusMetrics(metrics_sink.RunMetrics):
    """Writes one testbed run's metrics into Prometheus and reads them back.

    :param url: the Prometheus URL (``http://127.0.0.1:9090``)
    :param host_label, instance_label: the run's label names
    """

    def __init__(self, url, host_label, instance_label):
        self.url = url
        self.host_label = host_label
        self.instance_label = instance_label
        self.writer = remote_write.RemoteWriter(url)
        self.samples_written = 0
        self._counters = {}
        self._reader = None

    def reader(self, tb):
        """The run's PrometheusDataSource (created once)."""
        if self._reader is None:
            self._reader = prom_ds.PrometheusDataSource(
                url=self.url, host_label=self.host_label,
                instance_label=self.instance_label, host_name_map={},
                scrape_interval=tb.scn['metrics_interval'])
        return self._reader

    def series(self, tb, start_k, end_k):
        """The exporters' series of steps [start_k, end_k)."""
        times, host, inst = tb.metric_samples(start_k, end_k)
        if not times.size:
            return []
        out = []
        for s in range(tb.n_servers):
            out += es.host_series(
                cluster.host_name(s), times,
                np.minimum(host['cpu'][s], 100.0),
                np.minimum(host['memory'][s], 100.0), host['load'][s],
                host['disk'][s], host['net'][s], label=self.host_label,
                loopback=False, counters=self._counters)
        mem_total = tb.scn['chains']['memory_mb'] * MIB
        for v in range(tb.n_vnfs):
            out += es.instance_series(
                cluster.vnf_uuid(v), times,
                np.minimum(inst['cpu'][v], 100.0), inst['memory'][v] * MIB,
                vcpus=int(tb.vcpus), label=self.instance_label,
                mem_total_bytes=mem_total, full=False,
                counters=self._counters)
        return out

    def write(self, tb, start_k, end_k):
        series = self.series(tb, start_k, end_k)
        if not series:
            return
        try:
            self.samples_written += self.writer.write(series)
        except (OSError, RuntimeError) as exc:
            hint = ''
            if 'out of order' in str(exc) or 'out of bounds' in str(exc):
                hint = (' (Prometheus takes each series\' samples in '
                        'time order only: was this run written there '
                        'before? use another --database-prefix or a '
                        'fresh server)')
            raise metric_windows.MetricsUnavailable(
                f'testbed: cannot write into Prometheus '
                f'{self.writer.url}: {type(exc).__name__}: {exc}{hint}'
            ) from None
