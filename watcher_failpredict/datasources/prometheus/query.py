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

With ``schema='collectd'`` (collectd's ``write_prometheus`` plugin, whose
exposition names a value list ``collectd_<plugin>_<type>[_<ds>][_total]``
and labels its plugin instance and type instance, see
:data:`COLLECTD_NEEDS`) the same metrics, in the same units, come from:

============  ================================================================
host cpu      ``100 - collectd_cpu_percent`` of the ``idle`` state (cpu
              plugin with ``ValuesPercentage true``; ``ReportByCpu false``
              labels the state ``cpu``, ``true`` labels it ``type``: both
              are read, averaged over the CPUs), clamped to 0-100
host memory   ``100 * used / (used + free + buffered + cached + slab_recl
              + slab_unrecl)`` of ``collectd_memory`` (bytes, the memory
              plugin's ``ValuesAbsolute true``, its default)
memory_kib    ``collectd_memory{memory="used"} / 1024``
host load     ``collectd_load_shortterm``
host disk     ``rate(collectd_disk_disk_octets_read_total) +
              rate(collectd_disk_disk_octets_write_total)``, all disks
host net      ``rate(collectd_interface_if_octets_rx_total) +
              rate(collectd_interface_if_octets_tx_total)``,
              ``interface!="lo"``
instance cpu  ``100 * rate(collectd_virt_virt_cpu_total_total) / 1e9``
              (virt plugin, nanoseconds of CPU time): percent of ONE vCPU
instance      ``(available - unused) / 2^20`` of ``collectd_virt_memory``
memory        (type instance label ``virt``), else ``rss / 2^20``
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

#: collectd's write_prometheus plugin (collectd 5.12): the series of the
#: cpu, memory, load, disk, interface and virt plugins.
COLLECTD_CPU = 'collectd_cpu_percent'
COLLECTD_MEMORY = 'collectd_memory'
COLLECTD_LOAD = 'collectd_load_shortterm'
COLLECTD_DISK_READ = 'collectd_disk_disk_octets_read_total'
COLLECTD_DISK_WRITE = 'collectd_disk_disk_octets_write_total'
COLLECTD_NET_RX = 'collectd_interface_if_octets_rx_total'
COLLECTD_NET_TX = 'collectd_interface_if_octets_tx_total'
COLLECTD_VIRT_CPU = 'collectd_virt_virt_cpu_total_total'
COLLECTD_VIRT_MEMORY = 'collectd_virt_memory'
#: The memory plugin's states (Linux); their sum is the host's memory.
COLLECTD_MEMORY_STATES = ('used', 'buffered', 'cached', 'free', 'slab_recl',
                          'slab_unrecl')

COLLECTD_NEEDS = {
    metric_windows.COMPUTE_NODE: {
        'cpu': ((COLLECTD_CPU,),),
        'memory': ((COLLECTD_MEMORY,),),
        'memory_kib': ((COLLECTD_MEMORY,),),
        'load': ((COLLECTD_LOAD,),),
        'disk': ((COLLECTD_DISK_READ, COLLECTD_DISK_WRITE),),
        'net': ((COLLECTD_NET_RX, COLLECTD_NET_TX),),
    },
    metric_windows.INSTANCE: {
        'cpu': ((COLLECTD_VIRT_CPU,),),
        'memory': ((COLLECTD_VIRT_MEMORY,),),
    },
}

#: The metric schemas (``[failpredict] prometheus_schema``): the Prometheus
#: metrics each of ours needs, and the one whose series list the names.
SCHEMAS = ('exporters', 'collectd')
SCHEMA_NEEDS = {'exporters': NEEDS, 'collectd': COLLECTD_NEEDS}
LIST_METRIC = {
    'exporters': {metric_windows.COMPUTE_NODE: NODE_CPU,
                  metric_windows.INSTANCE: LIBVIRT_CPU},
    'collectd': {metric_windows.COMPUTE_NODE: COLLECTD_CPU,
                 metric_windows.INSTANCE: COLLECTD_VIRT_CPU},
}


def schema_name(schema):
    """``schema`` if it is one of :data:`SCHEMAS`, else ValueError."""
    if schema not in SCHEMAS:
        raise ValueError(f'prometheus_schema={schema!r} is not one of '
                         f'{", ".join(SCHEMAS)}')
    return schema


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


def subquery_offset_ms(first, step):
    """Milliseconds from ``first`` to the next multiple of ``step`` (0 if
    it is one): the offset of :meth:`QueryBuilder.subquery`.
    """
    first_ms = round(float(first) * 1000)
    return (-first_ms) % (int(step) * 1000)


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
    :param schema: ``'exporters'`` (node_exporter, libvirt exporter) or
        ``'collectd'`` (collectd's write_prometheus)
    """

    def __init__(self, label, names, step, scrape_interval,
                 schema='exporters'):
        self.label = label
        self.schema = schema_name(schema)
        self.step = int(step)
        self.rate_range = int(step) + int(-(-float(scrape_interval) // 1))
        matchers = [f'{label}!=""']
        if names is not None:
            regex = '|'.join(regex_escape(n) for n in names)
            matchers.append(f'{label}=~{string_literal(regex)}')
        self.matchers = matchers
        self.set_offset(0)

    def set_offset(self, offset_ms):
        """Shift every range selector of the window queries ``offset_ms``
        milliseconds back (``[10s] offset 1ms``): a subquery evaluates
        at multiples of its step only (:meth:`subquery`).
        """
        self.offset_ms = int(offset_ms)
        if self.offset_ms < 0:
            raise ValueError(f'offset {offset_ms} ms is negative')
        shift = f' offset {self.offset_ms}ms' if self.offset_ms else ''
        self.window = f'[{self.step}s]{shift}'
        self.rate_window = f'[{self.rate_range}s]{shift}'

    def subquery(self, promql, first, n_steps):
        """An instant query standing for the range query of ``promql``
        evaluated at ``first + k * step`` (k < n_steps), for servers that
        answer instant queries only (Aetos).

        Returns ``(promql, at, offset_s)``: ``promql`` as a subquery
        ``(promql)[n_steps * step s:step s]`` evaluated at ``at``, a
        multiple of the step (where Prometheus aligns a subquery's
        evaluations), whose range selectors are shifted back by
        ``offset_s`` so that the evaluation at ``first + k * step +
        offset_s`` reads the windows of the one at ``first + k * step``.
        Set the offset (:meth:`set_offset`) before building ``promql``
        with :func:`subquery_offset_ms`.
        """
        last_ms = round((float(first) + self.step * (n_steps - 1)) * 1000)
        at_ms = last_ms + self.offset_ms
        if at_ms % (self.step * 1000):
            raise ValueError(f'offset {self.offset_ms} ms does not align '
                             f'{first} to the {self.step} s step')
        return (f'({promql})[{self.step * int(n_steps)}s:{self.step}s]',
                at_ms / 1000.0, self.offset_ms / 1000.0)

    def selector(self, metric, *extra):
        return metric + '{' + ','.join(self.matchers + list(extra)) + '}'

    def gauge(self, metric, agg='sum', *extra):
        """``agg by (label)`` of each series' mean over the window."""
        return (f'{agg} by ({self.label}) (avg_over_time('
                f'{self.selector(metric, *extra)}{self.window}))')

    def counter(self, metric, *extra):
        """Per-second rate of a counter over the window, summed by label."""
        return (f'sum by ({self.label}) (rate('
                f'{self.selector(metric, *extra)}{self.rate_window}))')

    def host(self, metric):
        """PromQL of host ``metric``, or None if it is not one."""
        if self.schema == 'collectd':
            return self._collectd_host(metric)
        if metric == 'cpu':
            # idle seconds per second and CPU, averaged over the CPUs: only
            # the idle series are read (one of node_exporter's 8 modes)
            idle_sel = self.selector(NODE_CPU, 'mode="idle"')
            idle = (f'avg by ({self.label}) (rate({idle_sel}'
                    f'{self.rate_window}))')
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

    def _collectd_host(self, metric):
        if metric == 'cpu':
            # the idle state's percent, labelled "cpu" (ReportByCpu false)
            # or "type" (ReportByCpu true, one series per CPU)
            by_state = self.selector(COLLECTD_CPU, 'cpu="idle"')
            by_cpu = self.selector(COLLECTD_CPU, 'type="idle"')
            idle = (f'avg by ({self.label}) ('
                    f'avg_over_time({by_state}{self.window}) or '
                    f'avg_over_time({by_cpu}{self.window}))')
            return f'clamp(100 - {idle}, 0, 100)'
        used = self.gauge(COLLECTD_MEMORY, 'sum', 'memory="used"')
        if metric == 'memory':
            states = string_literal('|'.join(COLLECTD_MEMORY_STATES))
            total = self.gauge(COLLECTD_MEMORY, 'sum', f'memory=~{states}')
            return f'100 * {used} / {total}'
        if metric == 'memory_kib':
            return f'{used} / 1024'
        if metric == 'load':
            return self.gauge(COLLECTD_LOAD, 'avg')
        if metric == 'disk':
            return (f'{self.counter(COLLECTD_DISK_READ)} + '
                    f'{self.counter(COLLECTD_DISK_WRITE)}')
        if metric == 'net':
            not_lo = 'interface!="lo"'
            return (f'{self.counter(COLLECTD_NET_RX, not_lo)} + '
                    f'{self.counter(COLLECTD_NET_TX, not_lo)}')
        return None

    def _collectd_instance(self, metric):
        if metric == 'cpu':
            # nanoseconds of CPU time per second
            return f'100 * {self.counter(COLLECTD_VIRT_CPU)} / 1e9'
        if metric == 'memory':
            def part(name):
                return self.gauge(COLLECTD_VIRT_MEMORY, 'sum',
                                  f'virt="{name}"')
            return (f'({part("available")} - {part("unused")}) / 1048576 '
                    f'or {part("rss")} / 1048576')
        return None

    def instance(self, metric):
        """PromQL of instance ``metric``, or None if it is not one."""
        if self.schema == 'collectd':
            return self._collectd_instance(metric)
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
        if self.schema == 'collectd':
            disk = (COLLECTD_DISK_READ, COLLECTD_DISK_WRITE)
            net = (COLLECTD_NET_RX, COLLECTD_NET_TX)
            not_lo = 'interface!="lo"'
        else:
            disk = (NODE_DISK_READ, NODE_DISK_WRITTEN)
            net = (NODE_NET_RX, NODE_NET_TX)
            not_lo = 'device!="lo"'
        if metric == 'disk':
            return (f'{self.counter_mean(disk[0], period)} + '
                    f'{self.counter_mean(disk[1], period)}')
        if metric == 'net':
            return (f'{self.counter_mean(net[0], period, not_lo)} + '
                    f'{self.counter_mean(net[1], period, not_lo)}')
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
