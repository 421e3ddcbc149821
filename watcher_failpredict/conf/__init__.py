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

"""Configuration options of watcher-failpredict (the ``[failpredict]`` group).

The options live in ``watcher.conf`` next to Watcher's own. ``list_opts()`` is
the ``oslo.config.opts`` entry point that ``oslo-config-generator`` uses to
render ``etc/watcher-failpredict.conf.sample``.
"""

import math
import urllib.parse

from oslo_config import cfg

GROUP = cfg.OptGroup(
    name='failpredict',
    title='watcher-failpredict options',
    help='Where the failure-prediction strategy reads its metrics '
         '(collectd in InfluxDB, or node_exporter and the libvirt exporter '
         'in Prometheus) and which trained model it scores hosts with.',
)


class URLWithoutCredentials(cfg.types.URI):
    """A URI option value that carries no ``user:password@``.

    Watcher logs every option at DEBUG when a service starts, and a URL is
    printed in errors and tool output: a password inside one would leak
    wherever it goes. Credentials belong in influxdb_username and the secret
    influxdb_password; a URL with them is refused when the option is read
    (at service start, oslo.config's log_opt_values reads every option).
    The error never repeats the value: the parent type's errors (invalid
    URI, too long) would, so the credentials are checked first.
    """

    def __init__(self, *args, hint='set influxdb_username and '
                 'influxdb_password', **kwargs):
        super().__init__(*args, **kwargs)
        self.hint = hint

    def __call__(self, value):
        try:
            parts = urllib.parse.urlsplit(str(value))
            embedded = parts.username is not None or parts.password is not None
        except ValueError:   # e.g. unbalanced [ in the host: the parent says
            embedded = '@' in str(value)
        if embedded:
            raise ValueError(
                'the URL embeds credentials (user:password@host); remove '
                f'them and {self.hint}')
        return super().__call__(value)


class FiniteFloat(cfg.types.Float):
    """A float option value that is finite: oslo.config's Float takes
    'nan' and 'inf', and a NaN passes any min/max check.
    """

    def __call__(self, value):
        value = super().__call__(value)
        if not math.isfinite(value):
            raise ValueError(f'{value} is not a finite number')
        return value


DATASOURCE_OPTS = [
    cfg.StrOpt(
        'datasource', default='influxdb', choices=[
            ('influxdb', 'collectd metrics in InfluxDB 1.x (the influxdb_* '
                         'options)'),
            ('prometheus', 'node_exporter and libvirt exporter metrics in '
                           'Prometheus (the prometheus_* options)'),
            ('aetos', 'the same metrics through Aetos, the Keystone-'
                      'authenticated proxy in front of Prometheus (the '
                      'prometheus_* options but the URL, and '
                      'aetos_endpoint)'),
        ],
        help='The metrics backend the strategy (and "watcher-failpredict '
             'train" without --influxdb / --prometheus) reads host and '
             'instance metrics from. record_risk writes into InfluxDB '
             'whatever this is.'),
]

PROMETHEUS_OPTS = [
    cfg.Opt(
        'prometheus_url', default='http://127.0.0.1:9090',
        type=URLWithoutCredentials(schemes=['http', 'https'],
                                   hint='use a proxy or token instead'),
        help='Base URL of the Prometheus HTTP API (the part before '
             '/api/v1), when datasource = prometheus. A URL with '
             'credentials (user:password@host) is refused.'),
    cfg.Opt(
        'aetos_endpoint', default=None,
        type=URLWithoutCredentials(schemes=['http', 'https'],
                                   hint='Aetos takes a Keystone token'),
        help='Base URL of Aetos (before /api/v1), when datasource = aetos. '
             'Default: the Keystone catalogue\'s metric-storage endpoint, '
             'with the interface and region of Watcher\'s [aetos_client]. '
             'Requests carry a token of Watcher\'s own Keystone session '
             '([watcher_clients_auth]).'),
    cfg.StrOpt(
        'prometheus_host_label', default='fqdn',
        regex=r'^[a-zA-Z_][a-zA-Z0-9_]*$',
        help='Label of the node_exporter series that carries the compute '
             'host\'s name (the same default as Watcher\'s own Prometheus '
             'datasource; add it with a relabelling rule or a static '
             'label). Its value must equal Watcher\'s node hostname or be '
             'mapped by host_name_map.'),
    cfg.StrOpt(
        'prometheus_instance_label', default='uuid',
        regex=r'^[a-zA-Z_][a-zA-Z0-9_]*$',
        help='Label of the libvirt exporter series that carries the Nova '
             'instance UUID (prometheus-libvirt-exporter: "uuid").'),
    cfg.StrOpt(
        'prometheus_schema', default='exporters', choices=[
            ('exporters', 'node_exporter for hosts, the libvirt exporter '
                          'for instances'),
            ('collectd', 'collectd\'s write_prometheus plugin: the cpu '
                         '(ValuesPercentage true), memory, load, disk and '
                         'interface plugins for hosts, the virt plugin '
                         '(HostnameFormat uuid) for instances'),
        ],
        help='Which exporters\' metrics Prometheus holds. With collectd, '
             'collectd names the host (and, for the virt plugin, the '
             'instance UUID) in its "instance" label: copy it into '
             'prometheus_host_label / prometheus_instance_label in the '
             'scrape job (etc/prometheus/scrape-config.yml) or set both '
             'options to "instance" with honor_labels: true.'),
    cfg.FloatOpt(
        'prometheus_scrape_interval', default=15.0, min=0.001,
        help='Seconds between two scrapes of the exporters (the jobs\' '
             'scrape_interval). Counter rates are taken over the window '
             'plus one scrape interval, so that every window has the '
             'sample before its first; the audit\'s granularity must be '
             'at least this for every window to hold a sample.'),
    cfg.FloatOpt(
        'prometheus_timeout', default=10.0, min=0.1,
        help='Seconds for one whole Prometheus HTTP request (connect, '
             'query, answer).'),
    cfg.IntOpt(
        'prometheus_retries', default=2, min=0,
        help='How many times a failed Prometheus request is retried before '
             'the audit fails.'),
    cfg.BoolOpt(
        'prometheus_verify_ssl', default=True,
        help='Verify the server certificate when prometheus_url is https.'),
    cfg.StrOpt(
        'prometheus_ca_file', default=None,
        help='CA bundle used to verify the Prometheus server certificate '
             '(default: the system bundle).'),
]

INFLUXDB_OPTS = [
    cfg.Opt(
        'influxdb_url', default='http://127.0.0.1:8086',
        type=URLWithoutCredentials(schemes=['http', 'https']),
        help='Base URL of the InfluxDB 1.x HTTP API that collectd writes '
             'into (InfluxDB native collectd input). A URL with '
             'credentials (user:password@host) is refused: set '
             'influxdb_username and influxdb_password.'),
    cfg.StrOpt(
        'influxdb_database', default='collectd',
        help='InfluxDB database holding the collectd measurements.'),
    cfg.StrOpt(
        'influxdb_username', default=None,
        help='InfluxDB user. Leave unset when authentication is disabled.'),
    cfg.StrOpt(
        'influxdb_password', default=None, secret=True,
        help='Password of influxdb_username.'),
    cfg.BoolOpt(
        'influxdb_verify_ssl', default=True,
        help='Verify the server certificate when influxdb_url is https.'),
    cfg.StrOpt(
        'influxdb_ca_file', default=None,
        help='CA bundle used to verify the InfluxDB server certificate '
             '(default: the system bundle).'),
    cfg.FloatOpt(
        'influxdb_timeout', default=10.0, min=0.1,
        help='Seconds each blocking operation of an InfluxDB HTTP request '
             '(connecting, sending, each read of the answer) may wait. It '
             'does not bound a whole request: a server that trickles its '
             'answer never lets it expire; metrics_read_deadline does.'),
    cfg.IntOpt(
        'influxdb_retries', default=2, min=0,
        help='How many times a failed InfluxDB request is retried before '
             'the audit fails (within metrics_read_deadline).'),
    cfg.Opt(
        'metrics_read_deadline', default=60.0,
        type=FiniteFloat(min=1.0, max=1800.0),
        help='Wall-clock seconds all the metric reads of one audit may '
             'take together: connecting, sending, every byte of every '
             'answer and every retry, however slowly the server answers. '
             'When it passes, the read in progress is abandoned and the '
             'audit FAILS with a message naming that read. Reads outside '
             'an audit (Watcher\'s per-resource helpers) get this many '
             'seconds each. Keep it well under the audit\'s interval and well '
             'above the audit\'s normal read time.'),
    cfg.StrOpt(
        'cpu_form', default='percent', choices=[
            ('percent', "collectd cpu plugin with 'ValuesPercentage true' "
                        "and 'ReportByCpu false'"),
            ('jiffies', 'collectd cpu plugin default: per-CPU jiffies '
                        'counters'),
        ],
        help='How collectd reports CPU into InfluxDB.'),
    cfg.StrOpt(
        'instance_metrics', default='guest', choices=[
            ('guest', 'collectd inside each VNF image, its Hostname set to '
                      'the instance UUID'),
            ('virt', "collectd virt plugin on the compute host with "
                     "'HostnameFormat uuid'"),
        ],
        help='Where instance (VNF) metrics come from. In both forms the '
             'InfluxDB "host" tag is the Nova instance UUID.'),
    cfg.StrOpt(
        'memory_form', default='percent', choices=[
            ('percent', "collectd memory plugin with 'ValuesPercentage "
                        "true' (as in etc/collectd/compute-host.conf)"),
            ('absolute', "memory plugin with 'ValuesAbsolute true' only: "
                         "percent is computed from the byte counts"),
        ],
        help='Which memory plugin form host memory percent is read from; '
             'only that one is queried. Hosts whose collectd does not '
             'report it have no memory metric. Watcher\'s host_ram_usage '
             '(bytes) always reads the absolute form\'s "used".'),
    cfg.FloatOpt(
        'collectd_interval', default=10.0, min=0.001,
        help='Seconds between two collectd samples (collectd\'s Interval, '
             '10 by default). When a read\'s granularity is less than 3 '
             'times this, the raw samples are read and averaged into '
             'windows (and counter rates derived) locally, which is much '
             'cheaper for InfluxDB than GROUP BY time; coarser windows are '
             'aggregated by the server.'),
    cfg.DictOpt(
        'host_name_map', default={},
        help='Map of Watcher compute node hostname to collectd Hostname '
             '(datasource = influxdb) or to the value of '
             'prometheus_host_label (datasource = prometheus), for nodes '
             'whose metrics name them differently, e.g. '
             '"compute-1.example.org:compute-1,compute-2.example.org:'
             'compute-2". Unmapped nodes use their hostname as is.'),
    cfg.IntOpt(
        'metrics_max_age', default=120, min=1,
        help='Seconds after which a host\'s latest sample is stale. A host '
             'with stale or missing metrics is never chosen as a '
             'destination.'),
    cfg.BoolOpt(
        'record_risk', default=False,
        help='Write, at each audit, every evaluated host\'s predicted risk, '
             'ranking score, CPU and failure state (measurement '
             'failpredict_risk, tagged with the model) and the planned '
             'moves (failpredict_move) into influxdb_database, for the '
             'Grafana dashboard in etc/grafana/; in reactive mode the '
             'ranking check reads a model\'s recent audits back from it '
             'after a decision-engine restart (one request more, only '
             'then). Needs write access; a '
             'failed write is logged and never fails the audit.'),
]

MODEL_OPTS = [
    cfg.StrOpt(
        'model_path', default=None,
        help='Model bundle written by "watcher-failpredict train". The '
             'file is a pickle, i.e. code: point this only at bundles you '
             'trained, and set model_sha256.'),
    cfg.StrOpt(
        'model_sha256', default=None,
        regex=r'^[0-9a-fA-F]{64}$',
        help='Expected SHA-256 of model_path, as printed by '
             '"watcher-failpredict train" and "watcher-failpredict '
             'show-model PATH". A bundle whose digest differs is refused '
             'before it is unpickled. Without it the model is refused '
             'unless allow_unverified_model is true.'),
    cfg.BoolOpt(
        'allow_unverified_model', default=False, secret=False,
        help='Load model_path without a model_sha256 to check it against. '
             'A model file is a pickle, i.e. code: whoever can replace the '
             'file runs code in the decision engine (at start-up too, '
             'through the failpredict_risk scoring engine). Leave false and '
             'set model_sha256; when true, a WARNING is logged at every '
             'load.'),
]

MIGRATION_OPTS = [
    cfg.FloatOpt(
        'migration_bandwidth_mbps', default=1000.0, min=1.0,
        help='Bandwidth (megabits per second) a live migration gets on the '
             'migration network; with an instance\'s memory size and dirty '
             'rate it gives the estimated migration time (pre-copy model).'),
    cfg.FloatOpt(
        'migration_dirty_fraction', default=0.094, min=0.0,
        help='Share of an instance\'s used memory it dirties per second at '
             '100 % CPU (the dirty-rate proxy scales it by the instance\'s '
             'recent CPU fraction). 0.094 makes a 1 GB VNF at full CPU take '
             'about 45 s on 1 GbE, as the paper measured.'),
    cfg.FloatOpt(
        'migration_max_downtime', default=0.5, min=0.01,
        help='Seconds of switch-over outage at which pre-copy stops '
             'iterating (Nova\'s live_migration_downtime, 500 ms by '
             'default).'),
    cfg.FloatOpt(
        'migration_setup_time', default=2.0, min=0.0,
        help='Fixed seconds a live migration spends before copying memory '
             '(connection, destination domain set-up).'),
    cfg.FloatOpt(
        'migration_margin', default=60.0, min=0.0,
        help='Seconds added to the estimated migration time to get the '
             'horizon a destination must stay healthy for: what matters is '
             'the destination\'s state when the migration completes. The '
             'strategy warns when the model\'s horizon is shorter.'),
]


ALL_OPTS = (DATASOURCE_OPTS + INFLUXDB_OPTS + PROMETHEUS_OPTS + MODEL_OPTS
            + MIGRATION_OPTS)


def register_opts(conf=cfg.CONF):
    conf.register_group(GROUP)
    conf.register_opts(ALL_OPTS, group=GROUP)


def list_opts():
    return [(GROUP, ALL_OPTS)]


register_opts()
CONF = cfg.CONF
