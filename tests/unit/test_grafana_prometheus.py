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

"""The Prometheus Grafana dashboard, run against a real prometheus.

``etc/grafana/failpredict-dashboard-prometheus.json`` must parse, read only
the exporter metrics the Prometheus datasource reads (``query.NEEDS``),
cover the InfluxDB dashboard's collectd panels, and each panel's PromQL,
with Grafana's variables substituted, must give the values an exporter
history rendered by ``exporter_schema`` was made of.
"""

import json
import os
import re

import numpy as np
import pytest

from watcher_failpredict.datasources.prometheus import exporter_schema
from watcher_failpredict.datasources.prometheus import local_server
from watcher_failpredict.datasources.prometheus import query

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GRAFANA = os.path.join(ROOT, 'etc', 'grafana')
PROM = os.path.join(GRAFANA, 'failpredict-dashboard-prometheus.json')
INFLUX = os.path.join(GRAFANA, 'failpredict-dashboard.json')

#: Every Prometheus metric name the datasource reads.
READ = {name for needs in query.NEEDS.values() for alts in needs.values()
        for alt in alts for name in alt}


def _dashboard():
    with open(PROM) as f:
        return json.load(f)


def _exprs(dash):
    return {p['title']: p['targets'][0]['expr'] for p in dash['panels']}


def _metric_names(expr):
    """Metric names in PromQL: identifiers before a selector's ``{``."""
    return set(re.findall(r'([A-Za-z_:][A-Za-z0-9_:]*)\{', expr))


def _grafana(expr, hosts='.+'):
    """Substitute the dashboard's variables as Grafana would."""
    return (expr.replace('$__rate_interval', '60s')
            .replace('$host_label', 'fqdn')
            .replace('$instance_label', 'uuid').replace('$host', hosts))


def test_dashboard_parses_and_reads_only_what_the_datasource_reads():
    dash = _dashboard()
    assert dash['uid'] != json.load(open(INFLUX))['uid']
    names = set()
    for panel in dash['panels']:
        assert panel['datasource'] == '${DS_PROMETHEUS}'
        for target in panel['targets']:
            found = _metric_names(target['expr'])
            assert found, target['expr']
            names |= found
    assert names <= READ, names - READ
    assert query.NODE_CPU in names and query.LIBVIRT_CPU in names
    variables = {v['name']: v for v in dash['templating']['list']}
    assert variables['host_label']['query'] == 'fqdn'   # option's default
    assert variables['instance_label']['query'] == 'uuid'
    # the InfluxDB dashboard's collectd panels have their PromQL twin
    with open(INFLUX) as f:
        influx = json.load(f)
    collectd = [p['title'] for p in influx['panels']
                if any('cpu_value' in t.get('query', '')
                       for t in p['targets'])]
    assert collectd and set(collectd) <= set(_exprs(dash))


def test_dashboard_queries_on_a_real_prometheus(prometheus_server):
    t = 1_700_000_000.0 + 10.0 * np.arange(120)
    ones = np.ones(t.size)
    series = []
    for host, cpu, mem, load, disk, net in (
            ('calm', 20.0, 30.0, 0.5, 1e5, 2e4),
            ('busy', 95.0, 80.0, 3.0, 4e5, 6e4)):
        series += exporter_schema.host_series(
            host, t, cpu * ones, mem * ones, load * ones, disk * ones,
            net * ones)
    series += exporter_schema.instance_series(
        'uuid-1', t, 55.0 * ones, 2 ** 30 * ones, vcpus=1,
        mem_total_bytes=2 ** 31)
    prometheus_server.load(local_server.openmetrics(series))
    prometheus_server.start()
    client = prometheus_server.client()
    at = t[-1] - 100.0
    want = {'Host CPU (%)': {'calm': 20.0, 'busy': 95.0},
            'Host memory (%)': {'calm': 30.0, 'busy': 80.0},
            'Host load (1 min)': {'calm': 0.5, 'busy': 3.0},
            'Host disk I/O (bytes/s)': {'calm': 1e5, 'busy': 4e5},
            # lo (busy in the history) is left out
            'Host network (bytes/s)': {'calm': 2e4, 'busy': 6e4},
            'Busiest instances: CPU (% of one vCPU)': {'uuid-1': 55.0}}
    exprs = _exprs(_dashboard())
    assert set(exprs) == set(want)
    try:
        for title, expr in exprs.items():
            rows = client.query(_grafana(expr), at=at)['result']
            got = {next(iter(r['metric'].values())): float(r['value'][1])
                   for r in rows}
            assert got == pytest.approx(want[title], rel=1e-6), title
        # the host variable selects
        rows = client.query(_grafana(exprs['Host CPU (%)'], 'busy'),
                            at=at)['result']
        assert [r['metric'] for r in rows] == [{'fqdn': 'busy'}]
        hosts = client.query('count by (fqdn) (node_load1)', at=at)
        assert len(hosts['result']) == 2
    finally:
        client.close()
