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

"""The PromQL of the Prometheus datasource.

One query per metric, over **all** hosts (or all instances) at once,
aggregated ``by`` the host label (or the instance label): a read costs the
same requests at 10 hosts and at 10,000. The queries are evaluated as
range queries whose evaluation times are the **ends** of the datasource's
windows minus one millisecond, so that each window ``[s, s + step)`` of
:class:`~watcher_failpredict.datasources.windows.ClusterWindows` is exactly
the range selector's ``(s - 1 ms, s + step - 1 ms]``, i.e. the samples at
``s`` included and those at ``s + step`` not, as the InfluxDB datasource
buckets them:

* gauges: ``avg_over_time(m[step])``, the mean of the window's samples;
* counters: ``rate(m[step + scrape_interval])``: the range reaches one
  scrape back, to the predecessor of the window's first sample, so that
  with one sample per window (step = scrape interval) there still are two
  samples to derive from, and with evenly spaced samples ``rate`` (which
  extrapolates to the range's edges) equals the mean of the per-sample
  rates the InfluxDB datasource computes. Counter resets are ``rate``'s
  (the drop is added back); a window without two samples has no value.

The metrics and their PromQL (``L``: the host label, ``fqdn`` by default;
``U``: the instance label, ``uuid``; every selector also requires ``L``
(``U``) to be non-empty and, for reads of at most
:data:`~watcher_failpredict.datasources.base.NAME_FILTER_LIMIT` names,
matches it against the names' regex):

============  ================================================================
host cpu      ``100 * (1 - avg by (L) (rate(node_cpu_seconds_total{mode=
              "idle"})))``, clamped to 0-100: as Watcher's own
              Prometheus datasource, only the idle series are read (a
              CPU's modes add up to one second per second)
host memory   ``100 * (1 - MemAvailable / MemTotal)`` (node_exporter's
              ``node_memory_MemAvailable_bytes``, ``..._MemTotal_bytes``)
memory_kib    ``(MemTotal - MemAvailable) / 1024``
host load     ``node_load1``
host disk     ``rate(node_disk_read_bytes_total) +
              rate(node_disk_written_bytes_total)``, summed per host
host net      ``rate(node_network_receive_bytes_total) +
              rate(node_network_transmit_bytes_total)``, ``device!="lo"``
instance cpu  ``100 * rate(libvirt_domain_info_cpu_time_seconds_total)``:
              percent of ONE vCPU, as collectd's virt plugin
instance      ``(libvirt_domain_memory_stats_available_bytes -
memory        libvirt_domain_memory_stats_unused_bytes) / 2^20`` (the
              guest's view, with the balloon driver's stats), else
              ``libvirt_domain_info_memory_usage_bytes / 2^20``
============  ================================================================

Names (host label values, UUIDs) only reach the text inside a regex
matcher, regex-escaped and then quoted as a PromQL string
(:func:`string_literal`).
"""

import json

from watcher_failpredict.datasources import windows as metric_windows

#: Evaluation times are the windows' ends minus this (seconds): Prometheus
#: timestamps are milliseconds, so ``(s - 1 ms, s + step - 1 ms]`` holds
#: exactly the samples of ``[s, s + step)``.
EPSILON = 0.001

NODE_CPU = 'node_cpu_seconds_total'
NODE_MEM_AVAILABLE = 'node_memory_MemAvailable_bytes'
NODE_MEM_TOTAL = 'node_memory_MemTotal_bytes'
NODE_LOAD1 = 'node_load1'
NODE_DISK_READ = 'node_disk_read_bytes_total'
NODE_DISK_WRITTEN = 'node_disk_written_bytes_total'
NODE_NET_RX = 'node_network_receive_bytes_total'
NODE_NET_TX = 'node_network_transmit_bytes_total'
LIBVIRT_CPU = 'libvirt_domain_info_cpu_time_seconds_total'
LIBVIRT_MEM_AVAILABLE = 'libvirt_domain_memory_stats_available_bytes'
LIBVIRT_MEM_UNUSED = 'libvirt_domain_memory_stats_unused_bytes'
LIBVIRT_MEM_USAGE = 'libvirt_domain_info_memory_usage_bytes'

#: The Prometheus metric names each of our metrics needs, as alternatives:
#: a metric can be read if every name of one alternative has series.
NEEDS = {
    metric_windows.COMPUTE_NODE: {
        'cpu': ((NODE_CPU,),),
        'memory': ((NODE_MEM_AVAILABLE, NODE_MEM_TOTAL),),
        'memory_kib': ((NODE_MEM_AVAILABLE, NODE_MEM_TOTAL),),
        'load': ((NODE_LOAD1,),),
        'disk': ((NODE_DISK_READ, NODE_DISK_WRITTEN),),
        'net': ((NODE_NET_RX, NODE_NET_TX),),
    },
    metric_windows.INSTANCE: {
        'cpu': ((LIBVIRT_CPU,),),
        'memory': ((LIBVIRT_MEM_AVAILABLE, LIBVIRT_MEM_UNUSED),
                   (LIBVIRT_MEM_USAGE,)),
    },
}

_REGEX_SPECIAL = set('\\.+*?()|[]{}^$')


def string_literal(text):
    """``text`` as a double-quoted PromQL string (Go escapes)."""
    return json.dumps(str(text))


def regex_escape(text):
    """``text`` as an RE2 regex matching itself only.

    Only RE2's metacharacters are escaped (RE2 refuses ``\\`` before a
    letter, digit or space, which Python's ``re.escape`` may produce).
    """
    return ''.join('\\' + c if c in _REGEX_SPECIAL else c for c in str(text))


def label_name(name, option):
    """``name`` if it is a valid Prometheus label name, else ValueError."""
    ok = bool(name) and (name[0].isalpha() or name[0] == '_') and all(
        c.isascii() and (c.isalnum() or c == '_') for c in name)
    if not ok:
        raise ValueError(f'{option}={name!r} is not a Prometheus label name')
    return name


class QueryBuilder:
    """The PromQL of one read: a resource type's label and name filter.

    :param label: the label carrying the name (host label or instance
        label)
    :param names: names to match, or None for every series with the label
    :param step: the windows' width, seconds
    :param scrape_interval: seconds between two samples of a series
    """

    def __init__(self, label, names, step, scrape_interval):
        self.label = label
        self.step = int(step)
        self.rate_range = int(step) + int(-(-float(scrape_interval) // 1))
        matchers = [f'{label}!=""']
        if names is not None:
            regex = '|'.join(regex_escape(n) for n in names)
            matchers.append(f'{label}=~{string_literal(regex)}')
        self.matchers = matchers

    def selector(self, metric, *extra):
        return metric + '{' + ','.join(self.matchers + list(extra)) + '}'

    def gauge(self, metric, agg='sum', *extra):
        """``agg by (label)`` of each series' mean over the window."""
        return (f'{agg} by ({self.label}) (avg_over_time('
                f'{self.selector(metric, *extra)}[{self.step}s]))')

    def counter(self, metric, *extra):
        """Per-second rate of a counter over the window, summed by label."""
        return (f'sum by ({self.label}) (rate('
                f'{self.selector(metric, *extra)}[{self.rate_range}s]))')

    def host(self, metric):
        """PromQL of host ``metric``, or None if it is not one."""
        if metric == 'cpu':
            # idle seconds per second and CPU, averaged over the CPUs: only
            # the idle series are read (one of node_exporter's 8 modes)
            idle_sel = self.selector(NODE_CPU, 'mode="idle"')
            idle = (f'avg by ({self.label}) (rate({idle_sel}'
                    f'[{self.rate_range}s]))')
            return f'clamp(100 * (1 - {idle}), 0, 100)'
        if metric == 'memory':
            return (f'100 * (1 - {self.gauge(NODE_MEM_AVAILABLE)} / '
                    f'{self.gauge(NODE_MEM_TOTAL)})')
        if metric == 'memory_kib':
            return (f'({self.gauge(NODE_MEM_TOTAL)} - '
                    f'{self.gauge(NODE_MEM_AVAILABLE)}) / 1024')
        if metric == 'load':
            return self.gauge(NODE_LOAD1, 'avg')
        if metric == 'disk':
            return (f'{self.counter(NODE_DISK_READ)} + '
                    f'{self.counter(NODE_DISK_WRITTEN)}')
        if metric == 'net':
            not_lo = 'device!="lo"'
            return (f'{self.counter(NODE_NET_RX, not_lo)} + '
                    f'{self.counter(NODE_NET_TX, not_lo)}')
        return None

    def instance(self, metric):
        """PromQL of instance ``metric``, or None if it is not one."""
        if metric == 'cpu':
            return f'100 * {self.counter(LIBVIRT_CPU)}'
        if metric == 'memory':
            return (f'({self.gauge(LIBVIRT_MEM_AVAILABLE)} - '
                    f'{self.gauge(LIBVIRT_MEM_UNUSED)}) / 1048576 or '
                    f'{self.gauge(LIBVIRT_MEM_USAGE)} / 1048576')
        return None

    def counter_mean(self, metric, period, *extra):
        """Mean rate over the ``period`` seconds before the evaluation
        time, as the InfluxDB datasource's ``cluster_means`` computes it:
        (last sample of the period - last sample of the period before) /
        period per series (a negative step, i.e. a reset, gives none),
        summed by label. An instant query, evaluated at the period's end
        minus EPSILON.
        """
        sel = self.selector(metric, *extra)
        p = int(period)
        return (f'sum by ({self.label}) ((last_over_time({sel}[{p}s]) - '
                f'last_over_time({sel}[{p}s] offset {p}s)) >= 0) / {p}')

    def host_mean(self, metric, period):
        """PromQL of a host counter's mean rate over ``period``, or None
        for other metrics.
        """
        if metric == 'disk':
            return (f'{self.counter_mean(NODE_DISK_READ, period)} + '
                    f'{self.counter_mean(NODE_DISK_WRITTEN, period)}')
        if metric == 'net':
            not_lo = 'device!="lo"'
            return (f'{self.counter_mean(NODE_NET_RX, period, not_lo)} + '
                    f'{self.counter_mean(NODE_NET_TX, period, not_lo)}')
        return None

    def of(self, resource_type, metric):
        if resource_type == metric_windows.INSTANCE:
            return self.instance(metric)
        return self.host(metric)

    def presence(self, metric_names, range_s):
        """An instant query: which of ``metric_names`` have series with the
        label within the last ``range_s`` seconds (one row per name).
        """
        regex = '|'.join(regex_escape(n) for n in metric_names)
        sel = ('{__name__=~' + string_literal(regex) + ','
               + f'{self.label}!=""' + '}')
        return (f'count by (__name__) '
                f'(last_over_time({sel}[{int(range_s)}s]))')
